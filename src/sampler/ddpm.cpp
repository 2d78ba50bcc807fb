// DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), respaced to the grid
// (Nichol & Dhariwal 2021, §4): from grid point t to the next point t', with
// ᾱ = ᾱ_t, ᾱ' = ᾱ_t' (1 at the end) and the step's own β = 1 − ᾱ/ᾱ',
//   x̂₀ = the denoiser's estimate (optionally clamped),
//   μ  = β √ᾱ' / (1 − ᾱ) · x̂₀ + √(1 − β) (1 − ᾱ') / (1 − ᾱ) · x_t   (mean of q(x_t' | x_t, x̂₀), seed 002)
//   x_t' = μ + σ z,  σ² = β̃ = (1 − ᾱ')/(1 − ᾱ) β  or  σ² = β;  no noise on the last step.
// With all T timesteps this is exactly Algorithm 2; with unclamped x̂₀,
// μ = (x_t − β/√(1 − ᾱ) ε̂)/√(1 − β).
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_ddpm(Context& c, torch::Tensor x) {
  const bool beta_tilde = c.cfg.variance.value_or(DdpmVariance::BetaTilde) == DdpmVariance::BetaTilde;
  const int64_t S = c.steps();
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    const double ab = p.alpha_bar, ab_prev = c.grid[i + 1].alpha_bar;
    const double beta = 1.0 - ab / ab_prev;
    auto x0 = c.denoise(x, p).x0;
    const double c0 = beta * std::sqrt(ab_prev) / (1.0 - ab);
    const double ct = std::sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab);
    x = c0 * x0 + ct * x;
    if (i + 1 < S) {
      const double var = beta_tilde ? (1.0 - ab_prev) / (1.0 - ab) * beta : beta;
      x = x + std::sqrt(var) * c.randn_like(x);
    }
    c.report(i, p, x, x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
