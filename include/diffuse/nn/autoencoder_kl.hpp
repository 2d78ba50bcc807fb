// diffuse — the KL-regularised autoencoder of latent diffusion (Rombach et al. 2022, "High-Resolution
// Image Synthesis with Latent Diffusion Models", §3 and appendix G), layer for layer and name for
// name HuggingFace diffusers' AutoencoderKL (src/diffusers/models/autoencoders/autoencoder_kl.py,
// vae.py; blocks from unets/unet_2d_blocks.py, resnet.py, downsampling.py, upsampling.py,
// attention_processor.py): named_parameters() gives diffusers' state_dict keys, e.g.
// "encoder.down_blocks.0.resnets.0.conv1.weight", "encoder.mid_block.attentions.0.to_q.weight".
//
// With boc = block_out_channels (n levels), L = latent_channels, f = 2^(n−1), every GroupNorm
// with eps 1e-6, SiLU as the activation:
//
//   encoder   conv_in 3×3 (C → boc[0])                                          (B, boc[0], S, S)
//             down_blocks.i, i < n: layers_per_block × ResnetBlock2D (→ boc[i]),
//               then downsamplers.0 (pad right/bottom by 1, 3×3 stride 2: S → S/2) if i < n − 1
//             mid_block: resnets.0 → attentions.0 → resnets.1                 (B, boc[n−1], S/f, S/f)
//             conv_out(SiLU(conv_norm_out(h))) 3×3 → 2L
//   quant_conv 1×1 (2L → 2L); moments split in channels = (μ, log σ²), log σ² clamped to [−30, 20]
//   z = μ + σ ⊙ ε                                                             (B, L, S/f, S/f)
//   post_quant_conv 1×1 (L → L)
//   decoder   conv_in 3×3 (L → boc[n−1]), mid_block as the encoder's,
//             up_blocks.i over reversed(boc): (layers_per_block + 1) × ResnetBlock2D,
//               then upsamplers.0 (nearest ×2, 3×3) except for the last
//             conv_out(SiLU(conv_norm_out(h))) 3×3 → out_channels             (B, C_out, S, S)
//
//   ResnetBlock2D  h = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))); out = shortcut(x) + h,
//                  shortcut = conv_shortcut 1×1 when in ≠ out channels, else identity
//   Attention      one head of all C channels over the H·W positions:
//                  h = group_norm(x) as (B, HW, C); out = x + to_out.0(softmax(q kᵀ/√C) v),
//                  q, k, v = to_q(h), to_k(h), to_v(h)
//
// KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²) over the latent elements (closed form).
// Images are channels-first in [−1, 1]; any device; fp32. Every SiLU(GroupNorm(·)) above runs as one
// group_norm_silu (nn/group_norm_silu.hpp), fused on the CPU.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace diffuse {

// The fields of diffusers' AutoencoderKL config.json that shape the network (same names, except
// mid_block_attention for "mid_block_add_attention"). Defaults are diffuse's small ones, not
// diffusers' (which are 3 channels, block_out_channels (64,), scaling_factor 0.18215).
struct AutoencoderKLOptions {
  int64_t in_channels = 1;      // image channels C, 1 … 64
  int64_t out_channels = 1;     // decoded channels, 1 … 64; callers set it equal to in_channels
  int64_t latent_channels = 4;  // L, 1 … 64
  std::vector<int64_t> block_out_channels = {16, 32, 32};  // per level, 1 … 4 levels of 1 … 4096
                                                           // channels; f = 2^(levels − 1):
                                                           // 1 level f1, 2 f2, 3 f4, 4 f8. Sized by
                                                           // measurement (docs/latent.md): on 28×28
                                                           // Fashion-MNIST 8 min of training give
                                                           // PSNR 25.6 dB; {32, 64, 64} trains 4× slower
                                                           // (45 against 186 images/s on 1 thread)
  int64_t layers_per_block = 1;  // ResnetBlock2Ds per encoder level (the decoder has one more), 1 … 8
  int64_t norm_num_groups = 8;   // GroupNorm groups, >= 1; gcd(norm_num_groups, channels) where it
                                 // does not divide the channels (diffusers requires it to divide
                                 // them, and the two agree when it does)
  bool mid_block_attention = true;  // self-attention in both mid blocks (mid_block_add_attention)
  double scaling_factor = 1.0;  // finite > 0; latents for a diffusion model are z · scaling_factor
                                // (Rombach et al. §4.3.2: ≈ 1 / std of the trained latents).
                                // Stored only; encode/decode do not apply it
  int64_t sample_size = 32;     // S, the training image side, divisible by f
};

// Throws diffuse::Error naming the field and its valid values when `o` is not a valid model.
void validate(const AutoencoderKLOptions& o);
// f = 2^(len(block_out_channels) − 1), the side of an image over the side of its latent.
int64_t downsample_factor(const AutoencoderKLOptions& o);

// diffusers' config.json (keys sorted, 2-space indent): "_class_name": "AutoencoderKL", the fields
// above, "down_block_types": ["DownEncoderBlock2D", …], "up_block_types": ["UpDecoderBlock2D", …],
// "act_fn": "silu", "force_upcast": true.
std::string autoencoder_kl_config_json(const AutoencoderKLOptions& o);
// Reads that config (keys missing keep their defaults) and validates it. Accepted and ignored:
// "_class_name", "_diffusers_version", "down_block_types", "up_block_types", "act_fn",
// "force_upcast", "shift_factor", "latents_mean", "latents_std", "use_quant_conv",
// "use_post_quant_conv". Throws diffuse::Error for bad JSON, an unknown key (listing the valid
// ones) or a value of the wrong type (naming the key).
AutoencoderKLOptions autoencoder_kl_config_from_json(const std::string& text);

// ---------------------------------------------------------------- blocks (diffusers' classes)

// diffusers ResnetBlock2D without a time embedding (resnet.py).
struct KlResnetBlock2DImpl : torch::nn::Module {
  KlResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // (B, in, H, W) → (B, out, H, W)
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv2d conv_shortcut{nullptr};  // only when in ≠ out
};
TORCH_MODULE(KlResnetBlock2D);

// diffusers Attention as UNetMidBlock2D builds it (attention_processor.py): one head of all
// channels, biased projections, residual connection, rescale_output_factor 1.
struct KlAttentionImpl : torch::nn::Module {
  KlAttentionImpl(int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) → (B, C, H, W)
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // 0: Linear(C, C), 1: Dropout(0)
};
TORCH_MODULE(KlAttention);

// diffusers Downsample2D(use_conv, padding=0) (downsampling.py): F.pad(x, (0, 1, 0, 1)), then a
// 3×3 stride-2 conv without padding: S → ⌊(S + 1 − 3)/2⌋ + 1 = ⌊S/2⌋.
struct KlDownsample2DImpl : torch::nn::Module {
  explicit KlDownsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) → (B, C, H/2, W/2)
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(KlDownsample2D);

// diffusers Upsample2D(use_conv) (upsampling.py): nearest ×2, then a 3×3 conv.
struct KlUpsample2DImpl : torch::nn::Module {
  explicit KlUpsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) → (B, C, 2H, 2W)
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(KlUpsample2D);

// diffusers UNetMidBlock2D (num_layers 1): resnets.0 → attentions.0 (if any) → resnets.1.
struct KlMidBlock2DImpl : torch::nn::Module {
  KlMidBlock2DImpl(int64_t channels, int64_t groups, bool attention);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) → (B, C, H, W)
  torch::nn::ModuleList attentions, resnets;      // KlAttention (0 or 1), KlResnetBlock2D (2)
};
TORCH_MODULE(KlMidBlock2D);

// diffusers DownEncoderBlock2D: resnets (in → out, then out → out), then downsamplers.0.
struct KlDownEncoderBlock2DImpl : torch::nn::Module {
  KlDownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t layers,
                           int64_t groups, bool downsample);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList resnets;
  torch::nn::ModuleList downsamplers{nullptr};  // registered only with a downsample
};
TORCH_MODULE(KlDownEncoderBlock2D);

// diffusers UpDecoderBlock2D: resnets (in → out, then out → out), then upsamplers.0.
struct KlUpDecoderBlock2DImpl : torch::nn::Module {
  KlUpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t layers,
                         int64_t groups, bool upsample);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList resnets;
  torch::nn::ModuleList upsamplers{nullptr};  // registered only with an upsample
};
TORCH_MODULE(KlUpDecoderBlock2D);

// diffusers Encoder (vae.py, double_z): (B, C, S, S) → (B, 2L, S/f, S/f).
struct KlEncoderImpl : torch::nn::Module {
  explicit KlEncoderImpl(const AutoencoderKLOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;  // KlDownEncoderBlock2D per level
  KlMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(KlEncoder);

// diffusers Decoder (vae.py, norm_type "group"): (B, L, h, w) → (B, out_channels, f·h, f·w).
struct KlDecoderImpl : torch::nn::Module {
  explicit KlDecoderImpl(const AutoencoderKLOptions& o);
  torch::Tensor forward(const torch::Tensor& z);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  KlMidBlock2D mid_block{nullptr};
  torch::nn::ModuleList up_blocks;  // KlUpDecoderBlock2D per level, deepest first
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(KlDecoder);

// ---------------------------------------------------------------- the autoencoder

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const AutoencoderKLOptions& options);  // validates; throws diffuse::Error
  struct Posterior {
    torch::Tensor mean, logvar;  // (B, L, H/f, W/f); logvar = log σ² in [−30, 20]
  };
  // x: (B, in_channels, H, W), H and W divisible by f. moments = quant_conv(encoder(x)).
  Posterior encode(const torch::Tensor& x);
  // z: (B, L, h, w) → decoder(post_quant_conv(z)): (B, out_channels, f·h, f·w).
  torch::Tensor decode(const torch::Tensor& z);
  // The reconstruction decode(μ + exp(½ log σ²) ⊙ eps); eps: the posterior's shape (B, L, H/f, W/f).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& eps);
  const AutoencoderKLOptions& options() const { return options_; }

 private:
  AutoencoderKLOptions options_;
  KlEncoder encoder_{nullptr};
  KlDecoder decoder_{nullptr};
  torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
};
TORCH_MODULE(AutoencoderKL);

// KL(N(μ, e^v) ‖ N(0, I)) = ½ Σ (μ² + e^v − 1 − v) over every non-batch element, per sample:
// mean, logvar (B, …) → (B). (kl_to_standard_normal of vae.hpp on the flattened tensors.)
torch::Tensor kl_diagonal_gaussian(const torch::Tensor& mean, const torch::Tensor& logvar);

// The training objective, scalars:
//   reconstruction = mean over all B·C·H·W elements of (x̂ − x)², x̂ = forward(x, eps)
//   kl             = mean over the batch of kl_diagonal_gaussian / (C·H·W)
//   loss           = reconstruction + kl_weight · kl
// Both terms are per pixel element, so kl_weight is the ratio LDM uses between its per-image
// sums (its autoencoders train with kl_weight 1e-6). LDM's reconstruction term is L1 + LPIPS
// with a patch-GAN adversarial loss (Rombach et al. 2022 appendix G, after Esser et al. 2021);
// this one is plain MSE, with no perceptual and no adversarial term, so reconstructions are
// blurrier than theirs.
struct AutoencoderKLLoss {
  torch::Tensor loss;            // () reconstruction + kl_weight · kl, differentiable
  torch::Tensor reconstruction;  // () MSE per element
  torch::Tensor kl;              // () nats per pixel element
};
// x: (B, C, H, W) in [−1, 1]; eps: (B, L, H/f, W/f) standard normal noise of the reparameterization.
AutoencoderKLLoss autoencoder_kl_loss(AutoencoderKL& model, const torch::Tensor& x,
                                      const torch::Tensor& eps, double kl_weight);

}  // namespace diffuse
