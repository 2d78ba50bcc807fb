// diffuse — SiLU(GroupNorm(x + channel_bias)) as one operator (issue 18): the "GroupNorm → SiLU"
// that opens every residual block of the U-Net (nn/unet.hpp) and of the KL autoencoder
// (nn/autoencoder_kl.hpp), with the U-Net's time/class embedding add folded into the same pass.
// Group Normalization: Wu & He 2018; SiLU: Elfwing et al. 2018 (Swish, Ramachandran et al. 2017).
//
// x is (N, C, *) — (B, C, H, W) in the networks — split into G groups of D = C/G channels.
// For every image n and group g, over its M = D·H·W elements, with h = x + channel_bias[:, :, None, None]
// (h = x without channel_bias):
//
//   μ = (1/M) Σ h,   σ² = (1/M) Σ (h − μ)²,   r = 1/√(σ² + eps)      (biased variance, as GroupNorm)
//   x̂ = (h − μ)·r
//   z = γ_c·x̂ + β_c                                                    (c the element's channel)
//   y = z·σ(z),   σ(z) = 1/(1 + e^(−z))                                (SiLU)
//
// Why one operator: the unfused ops (add_, group_norm, silu) each read and write the whole
// activation, and autograd keeps both GroupNorm's input and its output (SiLU's input) for backward.
// The fused CPU kernel reads each group from memory once — its two statistics sweeps and the sweep
// that writes y find it in cache (a group of the presets' U-Nets holds 2-32 KB) — and writes y
// once; for backward it keeps only x, the (N, C) channel_bias and the (N, G) statistics, and
// recomputes x̂ and z: one activation less per norm.
//
// Where the fused kernel runs: CPU, float32, x contiguous (NCHW), weight/bias/channel_bias float32
// and contiguous, outside autocast, and only after set_fused_group_norm_silu(true). It is OFF by
// default: measured slower than ATen's ops on this machine (bench_train_throughput, fmnist-base,
// batch 128, 2 threads, fp32 NCHW, 2026-11-30: 45.4 images/s fused against 55.5 unfused). The
// likely reason: this file is compiled without AVX flags, so at::vec::Vectorized<float> is ATen's
// generic 8-lane array left to the compiler's SSE2 auto-vectorisation, while ATen's own GroupNorm
// and SiLU kernels are dispatched to AVX-512 at run time. Next step: build the kernels for AVX2 /
// AVX-512 with a run-time CPU check, then measure again. Everything else — CUDA,
// bf16/fp16/float64, channels-last or strided x, autocast, the switch off — runs ATen's unfused
// ops as the U-Net ran them before this operator existed (add, group_norm with γ, β cast to x's
// dtype, channels-last normalised in NCHW and converted back, silu), so those paths keep their
// values and CUDA works.
//
// Differentiable in x, weight, bias and channel_bias. First derivatives only: the fused kernel
// has no double backward (training and guidance need none); a backward with create_graph = true
// through it throws diffuse::Error.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace diffuse {

// y = SiLU(GroupNorm_G(x + channel_bias[:, :, None, None]; weight, bias, eps)).
//   x:            (N, C, *) float (in the networks (B, C, H, W))
//   groups:       G, a divisor of C
//   weight, bias: (C) — the GroupNorm's affine γ, β (may be undefined: γ = 1, β = 0, unfused path)
//   eps:          added to the variance, e.g. 1e-5 (torch::nn::GroupNorm's default) or 1e-6
//   channel_bias: (N, C) or undefined — a per-image, per-channel shift added before the norm
// Returns (N, C, *) in x's dtype and memory format. Throws diffuse::Error when the shapes disagree.
torch::Tensor group_norm_silu(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps,
                              const torch::Tensor& channel_bias = {});

// GroupNorm alone as the networks run it: γ, β cast to x's dtype (under bf16 autocast CPU
// group_norm is not autocast in LibTorch 1.13 and rejects a bf16 input with fp32 weights) and a
// channels-last x normalised in NCHW and converted back (LibTorch 1.13's CPU GroupNorm is ~9×
// slower on channels-last). The unfused path of group_norm_silu is this, then SiLU.
torch::Tensor group_norm_any_layout(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                    const torch::Tensor& bias, double eps);

// For tests and benchmarks: true runs the fused kernel where it applies (off by default, above). Process-wide; not meant to change while a network runs on another thread.
void set_fused_group_norm_silu(bool enabled);
bool fused_group_norm_silu();

}  // namespace diffuse
