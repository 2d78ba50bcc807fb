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
  torch::Tensor lambda = torch::ones({x_t.size(0)}, p.x0.options());
  if (A_.sigma_y > 0) {
    // DDNM+: λ_t = min(1, σ_t / (a_t σ_y)), σ_t² = β̃_t, a_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t), per sample's t.
    auto tc = t.to(torch::kFloat64).cpu();
    auto lam = lambda.cpu().to(torch::kFloat64);
    for (int64_t i = 0; i < tc.size(0); ++i) {
      const int64_t k = std::max<int64_t>(1, int64_t(std::llround(tc[i].item<double>())));
      const double ab = s.alpha_bar(k), ab_prev = s.alpha_bar(k - 1), beta = 1.0 - ab / ab_prev;
      const double sigma_t = std::sqrt((1.0 - ab_prev) / (1.0 - ab) * beta);
      const double a_t = std::sqrt(ab_prev) * beta / (1.0 - ab);
      lam[i] = std::min(1.0, sigma_t / (a_t * A_.sigma_y));
    }
    lambda = lam.to(p.x0.options());
  }
  std::vector<int64_t> shape(p.x0.dim(), 1);
  shape[0] = -1;
  // x̂₀' = x̂₀ − λ_t A⁺(A x̂₀ − y)
  p.x0 = p.x0 - lambda.view(shape) * A_.pinv(r);
  p.eps = eps_from_x0(s, x_t, t, p.x0);
  return p;
}

namespace restore_detail {

torch::Tensor run_ddnm(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                       const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond) {
  DdnmDenoiser ddnm(d, A, y);
  return sample(ddnm, x_T, cfg.sampler, noise, {}, cond);
}

}  // namespace restore_detail
}  // namespace diffuse
