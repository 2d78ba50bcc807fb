// RePaint (Lugmayr et al. 2022, Algorithm 1 with the jump schedule of its code) on the
// DDPM grid. With known-pixel mask m, from grid index i to i + 1:
//   x_known   = √ᾱ_{i+1} y + √(1 − ᾱ_{i+1}) z      (q(x_{i+1} | x₀ = y); exactly y at the end)
//   x_unknown = the ancestral DDPM step from x_i
//   x_{i+1}   = m ⊙ x_known + (1 − m) ⊙ x_unknown
// and every `jump_length` steps, `resample` − 1 times, the chain goes back up
// jump_length steps by the forward process, x_i = √(1 − β) x_{i+1} + √β z with
// β = 1 − ᾱ_i / ᾱ_{i+1}, and comes down again — harmonising the two regions.
#include <map>

#include "methods.hpp"

namespace diffuse::restore_detail {
namespace {

// Levels S−1 … −1 (−1 = the end) in the order RePaint visits them.
std::vector<int64_t> jump_schedule(int64_t S, int64_t j, int64_t r) {
  std::map<int64_t, int64_t> jumps;
  for (int64_t k = 0; k < S - j; k += j) jumps[k] = r - 1;
  std::vector<int64_t> ts;
  int64_t t = S;
  while (t >= 1) {
    ts.push_back(--t);
    if (jumps.count(t) && jumps[t] > 0) {
      --jumps[t];
      for (int64_t k = 0; k < j; ++k) ts.push_back(++t);
    }
  }
  ts.push_back(-1);
  return ts;
}

}  // namespace

torch::Tensor run_repaint(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                          const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
    const StepCallback& callback) {
  torch::NoGradGuard no_grad;
  const auto grid = sampling_grid(d.schedule(), cfg.sampler);  // S points + the end (ᾱ = 1)
  const int64_t S = int64_t(grid.size()) - 1;
  auto m = A.known().to(x_T.options());
  auto y0 = y.to(x_T.options());
  const std::vector<int64_t> shape(x_T.sizes().begin() + 1, x_T.sizes().end());
  auto x = x_T;
  const auto levels = jump_schedule(S, cfg.jump_length, cfg.resample);
  for (size_t k = 1; k < levels.size(); ++k) {
    const int64_t i = S - 1 - levels[k - 1], n = S - 1 - levels[k];  // grid indices: from i to n
    if (n > i) {  // down: denoise i → i + 1
      const double ab = grid[i].alpha_bar, ab_next = grid[n].alpha_bar;
      auto x0 = predict_at(d, x, grid[i], cond).x0;
      if (cfg.sampler.clip_x0 > 0) x0 = x0.clamp(-cfg.sampler.clip_x0, cfg.sampler.clip_x0);
      const bool last = n == S;
      auto unknown = ddpm_step(x, x0, ab, ab_next, last, noise);
      auto known = last ? y0 : std::sqrt(ab_next) * y0 + std::sqrt(1.0 - ab_next) * noise.randn(shape, x.options());
      x = m * known + (1 - m) * unknown;
      // One report per denoising move (the resampling jumps make more moves than S).
      if (callback) callback({int64_t(k) - 1, int64_t(levels.size()) - 1, grid[i].t, grid[i].sigma, x, x0});
    } else {  // up: re-noise i → i − 1 by q(x_{i−1} | x_i)
      const double beta = 1.0 - grid[n].alpha_bar / grid[i].alpha_bar;
      x = std::sqrt(1.0 - beta) * x + std::sqrt(beta) * noise.randn(shape, x.options());
      if (callback) callback({int64_t(k) - 1, int64_t(levels.size()) - 1, grid[n].t, grid[n].sigma, x, torch::Tensor()});
    }
  }
  return x;
}

}  // namespace diffuse::restore_detail
