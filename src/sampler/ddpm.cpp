// DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), written with the
// posterior of seed 002: for t = T−1 … 0,
//   x̂₀ = denoiser's estimate (optionally clamped),
//   μ  = c0(t)·x̂₀ + ct(t)·x_t           (mean of q(x_{t−1} | x_t, x̂₀))
//   x_{t−1} = μ + σ_t z,  σ_t² = β̃_t or β_t,  z ~ N(0, I),  no noise at t = 0.
// With unclamped x̂₀ this is μ = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t.
#include <torch/torch.h>

#include <cmath>

#include "diffuse/sampler.hpp"

namespace diffuse {

torch::Tensor sample_ddpm(const Denoiser& denoiser, torch::Tensor x, const SamplerConfig& cfg,
                          NoiseStream& noise, const StepCallback& callback,
                          const Conditioning& cond) {
  const NoiseSchedule& s = denoiser.schedule();
  const int64_t T = s.T(), B = x.size(0);
  const std::vector<int64_t> sample_shape(x.sizes().begin() + 1, x.sizes().end());
  for (int64_t t = T - 1; t >= 0; --t) {
    auto tt = torch::full({B}, t, torch::dtype(torch::kLong).device(x.device()));
    auto x0 = denoiser.predict(x, tt, cond).x0;
    if (cfg.clip_x0 > 0) x0 = x0.clamp(-cfg.clip_x0, cfg.clip_x0);
    auto mean = s.posterior_coef_x0(t) * x0 + s.posterior_coef_xt(t) * x;
    if (t > 0) {
      const double var = cfg.ddpm_variance == DdpmVariance::Beta ? s.beta(t) : s.posterior_variance(t);
      x = mean + std::sqrt(var) * noise.randn(sample_shape, x.options());
    } else {
      x = mean;
    }
    if (callback) callback({T - 1 - t, T, t, x, x0});
  }
  return x;
}

}  // namespace diffuse
