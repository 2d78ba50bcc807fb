// diffuse — the U-Net denoiser of Ho et al. 2020 for images, ε_θ(x_t, t[, y])
// (as in their diffusion repository and in improved-diffusion).
//
//   e = Linear(SiLU(Linear(sinusoidal(t)))) [+ Embedding(y)]         (B, 4·base)
//   h = Conv3×3(x)                                                   (B, base, H, W)
//   down:  per level i (base·mult[i] channels, resolution r_i):
//            blocks_per_level × [ResBlock → Attention if r_i ∈ attention_resolutions],
//            then Conv3×3 stride 2 (r_{i+1} = ⌈r_i/2⌉) except after the last level;
//          every output above (and the input conv's) is pushed on a skip stack
//   mid:   ResBlock → Attention → ResBlock
//   up:    per level, last to first: (blocks_per_level + 1) ×
//            [cat(h, pop()) → ResBlock → Attention if r_i ∈ attention_resolutions],
//            then nearest upsampling to the next skip's size → Conv3×3, except after level 0
//   out = Conv3×3(SiLU(GroupNorm(h)))                                (B, C, H, W), zero-initialised
//
// Works with fp32 or bf16 (autocast) and with contiguous or channels-last tensors.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

namespace diffuse {

struct UNetOptions {
  int64_t in_channels = 1;     // image channels C
  int64_t base_channels = 64;  // channels at the first level; the time embedding has 4× as many
  std::vector<int64_t> channel_mult = {1, 2, 2};  // per level; level i has base·mult[i] channels;
                                                  // a downsample between levels
  int64_t blocks_per_level = 2;  // residual blocks per level on the down path (the up path has
                                 // blocks_per_level + 1, as in Ho et al.)
  std::vector<int64_t> attention_resolutions = {14};  // spatial sizes H at which self-attention
                                                      // follows each res block; each must be the
                                                      // size of some level. The middle block always
                                                      // has attention
  int64_t head_channels = 32;  // channels per attention head (must divide the attended channels)
  double dropout = 0.1;        // dropout inside residual blocks, in [0, 1)
  int64_t num_classes = 0;     // > 0: class-conditional; label num_classes is the null class
                               // (classifier-free guidance); undefined labels mean null
  int64_t groups = 32;         // GroupNorm groups (gcd(groups, channels) when not a divisor)
  int64_t image_size = 28;     // H = W of the input, for the attention resolutions and checks
};

// GroupNorm → SiLU → Conv3×3, + Linear(SiLU(e)) as a per-channel bias,
// GroupNorm → SiLU → Dropout → Conv3×3 (zero-initialised), + skip (1×1 conv if channels change).
// Each GroupNorm → SiLU (with the bias add before the second) is one group_norm_silu
// (nn/group_norm_silu.hpp); the GroupNorm modules hold its parameters.
struct UNetResBlockImpl : torch::nn::Module {
  UNetResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t emb_dim, int64_t groups,
                   double dropout);
  // x: (B, in, H, W), emb: (B, emb_dim) — already SiLU'd — → (B, out, H, W).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  double dropout = 0.0;
};
TORCH_MODULE(UNetResBlock);

// x + proj(MultiHeadAttention(qkv(GroupNorm(x)))) over the H·W positions; proj zero-initialised.
struct UNetAttentionImpl : torch::nn::Module {
  UNetAttentionImpl(int64_t channels, int64_t head_channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, H, W) → (B, C, H, W)
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr}, proj{nullptr};
  int64_t heads = 1;
};
TORCH_MODULE(UNetAttention);

// One step of a level: ResBlock, then Attention when the level has it.
struct UNetBlockImpl : torch::nn::Module {
  UNetBlockImpl(int64_t in_channels, int64_t out_channels, bool attention, const UNetOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  UNetResBlock res{nullptr};
  UNetAttention attn{nullptr};  // null when the level has no attention
};
TORCH_MODULE(UNetBlock);

class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const UNetOptions& options);  // throws diffuse::Error on bad options
  // x: (B, in_channels, image_size, image_size) float, t: (B) int64,
  // labels: (B) int64 or undefined (→ null class; ignored when num_classes == 0).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& labels = {});
  const UNetOptions& options() const { return options_; }

 private:
  UNetOptions options_;
  torch::nn::Linear t1_{nullptr}, t2_{nullptr};
  torch::nn::Embedding label_emb_{nullptr};
  torch::nn::Conv2d in_{nullptr}, out_{nullptr};
  torch::nn::GroupNorm out_norm_{nullptr};
  torch::nn::ModuleList down_, downsample_, up_, upsample_;  // UNetBlock / Conv2d, in order
  UNetBlock mid1_{nullptr};                                  // ResBlock + Attention
  UNetResBlock mid2_{nullptr};
};
TORCH_MODULE(UNet);

// Throws diffuse::Error naming the field and its valid range when `o` is not a valid U-Net.
void validate(const UNetOptions& o);

// Forward FLOPs per image (2 × multiply-adds) of the convolutions, linear layers and attention
// matmuls, counted from the architecture for an image_size × image_size input. Norms,
// activations, softmax, upsampling and additions are not counted.
double unet_forward_flops(const UNetOptions& o);

}  // namespace diffuse
