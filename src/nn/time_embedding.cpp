#include <torch/torch.h>

#include <cmath>

#include "diffuse/nn/mlp.hpp"

namespace diffuse {

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  auto freqs = torch::exp(-std::log(max_period) *
                          torch::arange(half, torch::dtype(torch::kFloat32).device(t.device())) /
                          double(half));                          // ω_i, (half)
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // (B, half)
  auto emb = torch::cat({torch::sin(args), torch::cos(args)}, 1);
  if (dim % 2) emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1}));
  return emb;
}

}  // namespace diffuse
