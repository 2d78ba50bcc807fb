// Euler on the probability-flow ODE dx/dσ = (x − D(x; σ))/σ in the VE state
// x_σ = x₀ + σ ε (Karras et al. 2022, Algorithm 2 without the 2nd-order step):
//   γ = churn of σ_i,  σ̂ = σ_i (1 + γ),  x ← x + √(σ̂² − σ_i²) S_noise z   (if γ > 0)
//   d = (x − D(x; σ̂))/σ̂,   x ← x + (σ_{i+1} − σ̂) d
#include "context.hpp"

namespace diffuse::sampler_detail {

GridPoint churn(Context& c, torch::Tensor& x, const GridPoint& p) {
  const double amount = c.cfg.churn.value_or(0.0);
  if (amount <= 0.0) return p;
  const double lo = c.cfg.s_tmin.value_or(0.0), hi = c.cfg.s_tmax.value_or(INFINITY);
  if (p.sigma < lo || p.sigma > hi) return p;
  const double gamma = std::min(amount / double(c.steps()), std::sqrt(2.0) - 1.0);
  const double hat = p.sigma * (1.0 + gamma);
  x = x + std::sqrt(hat * hat - p.sigma * p.sigma) * c.cfg.s_noise.value_or(1.0) * c.randn_like(x);
  return {c.denoiser.schedule().t_at_sigma(hat), hat, 1.0 / (1.0 + hat * hat)};
}

torch::Tensor sample_euler(Context& c, torch::Tensor x) {
  const int64_t S = c.steps();
  x = Context::to_ve(x, c.grid[0].sigma);
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint p = churn(c, x, c.grid[i]);
    auto x0 = c.denoise_ve(x, p);
    auto d = (x - x0) / p.sigma;
    const double next = c.grid[i + 1].sigma;
    x = x + (next - p.sigma) * d;
    c.report(i, c.grid[i], Context::to_vp(x, next), x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
