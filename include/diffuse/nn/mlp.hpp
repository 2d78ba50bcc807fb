// diffuse — an MLP denoiser for vectors, ε_θ(x_t, t[, y]).
//
//   h = Linear(x_t)                                  x_t: (B, D) → (B, H)
//   e = MLP(sinusoidal(t)) [+ Embedding(y)]          (B, H)
//   h = h + Linear(SiLU(Linear(LayerNorm(h)) + e))    × blocks (residual)
//   out = Linear(SiLU(LayerNorm(h)))                 (B, D), zero-initialised
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace diffuse {

// Sinusoidal embedding of integer timesteps (Vaswani et al. 2017; Ho et al. 2020):
//   emb[i] = sin(t·ω_i), emb[i + dim/2] = cos(t·ω_i), ω_i = 10000^(−i/(dim/2)).
// t: (B) → (B, dim).
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period = 10000.0);

struct MlpOptions {
  int64_t dim = 2;          // D: size of one data vector
  int64_t hidden = 256;     // H: width of every hidden layer
  int64_t blocks = 4;       // number of residual blocks
  int64_t time_dim = 128;   // size of the sinusoidal time embedding (even)
  int64_t num_classes = 0;  // > 0: class-conditional, with an extra null class = num_classes
};

struct MlpBlockImpl : torch::nn::Module {
  MlpBlockImpl(int64_t hidden);
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& emb);
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear fc1{nullptr}, emb_proj{nullptr}, fc2{nullptr};
};
TORCH_MODULE(MlpBlock);

class MlpDenoiserImpl : public torch::nn::Module {
 public:
  explicit MlpDenoiserImpl(const MlpOptions& options);
  // x: (B, D), t: (B) int64, labels: (B) int64 or undefined (→ null class).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& labels = {});
  const MlpOptions& options() const { return options_; }

 private:
  MlpOptions options_;
  torch::nn::Linear in_{nullptr}, t1_{nullptr}, t2_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm out_norm_{nullptr};
  torch::nn::Embedding label_emb_{nullptr};
  torch::nn::ModuleList blocks_;
};
TORCH_MODULE(MlpDenoiser);

}  // namespace diffuse
