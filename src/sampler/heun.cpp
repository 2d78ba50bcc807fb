// Heun's second-order method on the probability-flow ODE (Karras et al. 2022,
// Algorithm 2), in the VE state x₀ + σ ε, with churn as in euler.cpp:
//   d  = (x − D(x; σ̂))/σ̂,            x' = x + (σ_{i+1} − σ̂) d
//   d' = (x' − D(x'; σ_{i+1}))/σ_{i+1}, x ← x + (σ_{i+1} − σ̂)(d + d')/2
// The last step (σ_{i+1} = 0) is a plain Euler step: 2S − 1 network calls.
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_heun(Context& c, torch::Tensor x) {
  const int64_t S = c.steps();
  x = Context::to_ve(x, c.grid[0].sigma);
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint p = churn(c, x, c.grid[i]);
    const GridPoint& q = c.grid[i + 1];
    auto x0 = c.denoise_ve(x, p);
    auto d = (x - x0) / p.sigma;
    const double dt = q.sigma - p.sigma;
    if (q.sigma == 0.0) {
      x = x + dt * d;
    } else {
      auto x2 = x + dt * d;
      auto d2 = (x2 - c.denoise_ve(x2, q)) / q.sigma;
      x = x + dt * 0.5 * (d + d2);
    }
    c.report(i, c.grid[i], Context::to_vp(x, q.sigma), x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
