#include <torch/torch.h>

#include "diffuse/denoiser.hpp"

namespace diffuse {

Prediction ModelDenoiser::predict(const torch::Tensor& x_t, const torch::Tensor& t,
                                  const Conditioning& cond) const {
  auto out = model_(x_t, t, cond).to(x_t.dtype());
  auto ex = to_eps_x0(schedule_, prediction_, x_t, t, out);
  return {ex.eps, ex.x0};
}

torch::Tensor ModelDenoiser::loss(const torch::Tensor& x0, const torch::Tensor& t,
                                  const torch::Tensor& noise, const LossConfig& cfg,
                                  const Conditioning& cond) const {
  auto x_t = q_sample(schedule_, x0, t, noise);
  auto out = model_(x_t, t, cond);
  return diffusion_loss(schedule_, prediction_, cfg, out, target_for(schedule_, prediction_, t, x0, noise), t);
}

}  // namespace diffuse
