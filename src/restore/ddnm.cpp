// DDNM and DDNM+ (Wang et al. 2023): the null-space correction of x̂₀ as a Denoiser, so
// that any sampler runs it (see restore.hpp for the formulas).
#include <torch/torch.h>

#include "diffuse/diffusion.hpp"
#include "methods.hpp"

namespace diffuse {

Prediction DdnmDenoiser::predict(const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning& cond) const {
  auto p = inner_.predict(x_t, t, cond);
  const auto& s = schedule();
  auto r = A_.apply(p.x0) - y_.to(p.x0.options());  // A x̂₀ − y
  // x̂₀' = x̂₀ − λ_t A⁺(A x̂₀ − y)
  if (A_.sigma_y > 0) {
    // DDNM+: λ_t = min(1, σ_t / (a_t σ_y)), σ_t² = β̃_t, a_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t), at each
    // sample's t rounded to the model's timesteps (≥ 1).
    const int64_t nd = p.x0.dim();
    auto k = t.to(torch::kFloat64).round().clamp_min(1).to(torch::kLong);
    auto ab = gather_coef(s.alphas_cumprod(), k, nd), ab_prev = gather_coef(s.alphas_cumprod(), k - 1, nd);
    auto beta = 1.0 - ab / ab_prev;
    auto sigma_t = ((1.0 - ab_prev) / (1.0 - ab) * beta).sqrt();
    auto a_t = ab_prev.sqrt() * beta / (1.0 - ab);
    auto lambda = (sigma_t / (a_t * A_.sigma_y)).clamp_max(1.0).to(p.x0.dtype());
    p.x0 = p.x0 - lambda * A_.pinv(r);
  } else {
    p.x0 = p.x0 - A_.pinv(r);
  }
  p.eps = eps_from_x0(s, x_t, t, p.x0);
  return p;
}

namespace restore_detail {

torch::Tensor run_ddnm(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                       const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
    const StepCallback& callback) {
  DdnmDenoiser ddnm(d, A, y);
  return sample(ddnm, x_T, cfg.sampler, noise, callback, cond);
}

}  // namespace restore_detail
}  // namespace diffuse
