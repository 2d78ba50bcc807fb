// Euler ancestral (k-diffusion sample_euler_ancestral): an Euler step down to
// σ_down, then fresh noise back up to σ_{i+1}, in the VE state x₀ + σ ε:
//   σ_up = min(σ_{i+1}, η √(σ_{i+1}² (σ_i² − σ_{i+1}²) / σ_i²)),  σ_down = √(σ_{i+1}² − σ_up²)
//   d = (x − D(x; σ_i))/σ_i,   x ← x + (σ_down − σ_i) d + S_noise σ_up z
// η = 1 (the default) matches diffusers' EulerAncestralDiscreteScheduler, which
// draws z at every step, the last one included (where σ_up = 0).
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_euler_ancestral(Context& c, torch::Tensor x) {
  const double eta = c.cfg.eta.value_or(1.0), s_noise = c.cfg.s_noise.value_or(1.0);
  const int64_t S = c.steps();
  x = Context::to_ve(x, c.grid[0].sigma);
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    const double s = p.sigma, next = c.grid[i + 1].sigma;
    const double up = std::min(next, eta * std::sqrt(next * next * (s * s - next * next) / (s * s)));
    const double down = std::sqrt(next * next - up * up);
    auto x0 = c.denoise_ve(x, p);
    auto d = (x - x0) / s;
    x = x + (down - s) * d;
    auto z = c.randn_like(x);
    if (up > 0) x = x + s_noise * up * z;
    c.report(i, p, Context::to_vp(x, next), x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
