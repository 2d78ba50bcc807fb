// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2; k-diffusion sample_dpmpp_2m),
// in the VE state x₀ + σ ε with λ = −log σ and h = λ_{i+1} − λ_i:
//   first step and last step (σ_{i+1} = 0):  x ← (σ_{i+1}/σ_i) x − (e^{−h} − 1) D_i
//   otherwise, r = h_{i−1}/h:  D' = (1 + 1/(2r)) D_i − 1/(2r) D_{i−1},
//                              x ← (σ_{i+1}/σ_i) x − (e^{−h} − 1) D'
// This is diffusers' DPMSolverMultistepScheduler with algorithm "dpmsolver++",
// solver_order 2, solver_type "midpoint" and the final step to σ = 0 of order 1.
#include "context.hpp"

namespace diffuse::sampler_detail {

torch::Tensor sample_dpmpp_2m(Context& c, torch::Tensor x) {
  const int64_t S = c.steps();
  x = Context::to_ve(x, c.grid[0].sigma);
  torch::Tensor old;
  double h_last = 0.0;
  for (int64_t i = 0; i < S; ++i) {
    const GridPoint& p = c.grid[i];
    const double s = p.sigma, next = c.grid[i + 1].sigma;
    auto x0 = c.denoise_ve(x, p);
    if (next == 0.0) {
      x = x0;  // σ_{i+1} = 0: h = ∞, the update is D_i
    } else {
      const double h = std::log(s) - std::log(next);
      auto D = x0;
      if (old.defined()) {
        const double r = h_last / h;
        D = (1.0 + 1.0 / (2.0 * r)) * x0 - (1.0 / (2.0 * r)) * old;
      }
      x = (next / s) * x - std::expm1(-h) * D;
      h_last = h;
    }
    old = x0;
    c.report(i, p, Context::to_vp(x, next), x0);
  }
  return x;
}

}  // namespace diffuse::sampler_detail
