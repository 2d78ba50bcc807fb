// DDIM (Song et al. 2021, eq. 12), from grid point t to the next point t':
//   x̂₀ = the denoiser's estimate (optionally clamped; ε̂ is kept as predicted, as diffusers does)
//   σ  = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ')
//   x_t' = √ᾱ' x̂₀ + √(1 − ᾱ' − σ²) ε̂ + σ z
// η = 0 is the deterministic DDIM, η = 1 has DDPM's β̃ variance. The end point
// is ᾱ' = 1 (diffusers' set_alpha_to_one) or ᾱ_0 with final_alpha_one = false.
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_ddim(Context& c, torch::Tensor x) {
  const double eta = c.cfg.eta.value_or(0.0);
  const bool to_one = c.cfg.final_alpha_one.value_or(true);
  const int64_t S = c.steps();
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    const double ab = p.alpha_bar;
    const double ab_prev = i + 1 < S || to_one ? c.grid[i + 1].alpha_bar : c.denoiser.schedule().alpha_bar(0);
    auto pred = c.denoise(x, p);
    // max: on a σ grid (karras, exponential) with final_alpha_one = false the last step goes
    // from σ_min to ᾱ_0, the same point; ᾱ/ᾱ' can round to 1 + 1e−16 and the root to NaN.
    const double sigma = eta * std::sqrt(std::max(0.0, (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)));
    x = std::sqrt(ab_prev) * pred.x0 + std::sqrt(std::max(0.0, 1.0 - ab_prev - sigma * sigma)) * pred.eps;
    if (eta > 0) x = x + sigma * c.randn_like(x);
    c.report(i, p, x, pred.x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
