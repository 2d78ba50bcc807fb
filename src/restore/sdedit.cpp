// SDEdit (Meng et al. 2022): noise the input to t₀ and denoise from there,
//   x_{t₀} = √ᾱ_{t₀} x_in + √(1 − ᾱ_{t₀}) z,
// on the last ⌈strength · S⌉ points of the sampler's grid (as diffusers' img2img does),
// with any sampler.
#include <cmath>

#include "diffuse/error.hpp"
#include "methods.hpp"

namespace diffuse::restore_detail {

torch::Tensor run_sdedit(const Denoiser& d, const torch::Tensor& image, const torch::Tensor& x_T,
                         const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
    const StepCallback& callback) {
  const auto grid = sampling_grid(d.schedule(), cfg.sampler);
  const int64_t S = int64_t(grid.size()) - 1;
  const int64_t keep = std::max<int64_t>(1, int64_t(std::ceil(cfg.strength * double(S) - 1e-9)));
  SamplerConfig sc = cfg.sampler;
  sc.steps = 0;
  for (int64_t i = S - keep; i < S; ++i) {
    const int64_t t = std::llround(grid[i].t);
    if (sc.timesteps.empty() || t < sc.timesteps.back()) sc.timesteps.push_back(t);
  }
  const double ab = d.schedule().alpha_bar(sc.timesteps.front());
  auto x = std::sqrt(ab) * image.to(x_T.options()) + std::sqrt(1.0 - ab) * x_T;
  return sample(d, x, sc, noise, callback, cond);
}

}  // namespace diffuse::restore_detail
