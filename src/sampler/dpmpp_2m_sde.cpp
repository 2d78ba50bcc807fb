// DPM-Solver++(2M) SDE, midpoint (Lu et al. 2022; k-diffusion sample_dpmpp_2m_sde),
// in the VE state x₀ + σ ε with λ = −log σ, h = λ_{i+1} − λ_i and η h:
//   x ← (σ_{i+1}/σ_i) e^{−ηh} x + (1 − e^{−h−ηh}) D_i
//       + ½ (1 − e^{−h−ηh}) (D_i − D_{i−1}) / r      (from the 2nd step on, r = h_{i−1}/h)
//       + σ_{i+1} √(1 − e^{−2ηh}) S_noise z
// η = 1 (the default) is diffusers' "sde-dpmsolver++"; η = 0 is the ODE solver.
// The last step (σ_{i+1} = 0) returns D_i.
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_dpmpp_2m_sde(Context& c, torch::Tensor x) {
  const double eta = c.cfg.eta.value_or(1.0), s_noise = c.cfg.s_noise.value_or(1.0);
  const int64_t S = c.steps();
  x = Context::to_ve(x, c.grid[0].sigma);
  torch::Tensor old;
  double h_last = 0.0;
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    const double s = p.sigma, next = c.grid[i + 1].sigma;
    auto x0 = c.denoise_ve(x, p);
    if (next == 0.0) {
      x = x0;
    } else {
      const double h = std::log(s) - std::log(next), eta_h = eta * h;
      const double k = -std::expm1(-h - eta_h);  // 1 − e^{−h−ηh}
      x = (next / s) * std::exp(-eta_h) * x + k * x0;
      if (old.defined()) x = x + (0.5 * k * h / h_last) * (x0 - old);
      if (eta > 0) x = x + next * std::sqrt(-std::expm1(-2.0 * eta_h)) * s_noise * c.randn_like(x);
      h_last = h;
    }
    old = x0;
    c.report(i, p, Context::to_vp(x, next), x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
