// Diffusion posterior sampling (Chung et al. 2023, Algorithm 1) on the DDPM grid:
//   x̂₀ = D(x_i),  x' = ancestral DDPM step(x_i, x̂₀),
//   x_{i+1} = x' − ζ_i ∇_{x_i} ‖y − A x̂₀(x_i)‖²₂,   ζ_i = ζ / ‖y − A x̂₀(x_i)‖₂ (per sample, App. C.4),
// the gradient taken through the network by autograd. A latent run (Rombach et al. 2022)
// measures the decoded estimate, ‖y − A D(x̂₀)‖², the gradient flowing through the decoder
// too (as latent DPS / PSLD's first term, Rout et al. 2023).
#include "methods.hpp"

namespace diffuse::restore_detail {

torch::Tensor run_dps(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                      const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                      const StepCallback& callback, const LatentCodec* latent) {
  const auto grid = sampling_grid(d.schedule(), cfg.sampler);
  const int64_t S = int64_t(grid.size()) - 1;
  auto y0 = y.to(x_T.options());
  std::vector<int64_t> bshape(x_T.dim(), 1);
  bshape[0] = -1;
  auto x = x_T.detach();
  for (int64_t i = 0; i < S; ++i) {
    torch::Tensor x0, grad, norm;
    {
      torch::AutoGradMode grad_mode(true);
      auto xi = x.detach().requires_grad_(true);
      x0 = predict_at(d, xi, grid[i], cond).x0;
      const auto image = latent ? latent->decode(x0) : x0;
      auto sq = (y0 - A.apply(image)).flatten(1).pow(2).sum(1);  // ‖y − A x̂₀‖² per sample
      grad = torch::autograd::grad({sq.sum()}, {xi})[0];
      norm = sq.detach().sqrt();
    }
    torch::NoGradGuard no_grad;
    x0 = x0.detach();
    if (cfg.sampler.clip_x0 > 0) x0 = x0.clamp(-cfg.sampler.clip_x0, cfg.sampler.clip_x0);
    x = ddpm_step(x, x0, grid[i].alpha_bar, grid[i + 1].alpha_bar, i + 1 == S, noise);
    x = x - (cfg.dps_scale / norm.detach().clamp_min(1e-12)).view(bshape) * grad;
    if (callback) callback({i, S, grid[i].t, grid[i].sigma, x, x0});
  }
  return x.detach();
}

}  // namespace diffuse::restore_detail
