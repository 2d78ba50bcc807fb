// Internal: what every sampler gets, and the helpers they share.
//
// State conventions: x_vp is the model's variance-preserving x_t = √ᾱ x₀ + √(1−ᾱ) ε;
// x_σ = x_vp / √ᾱ = x_vp √(1 + σ²) is the variance-exploding state x₀ + σ ε
// (Karras et al. 2022) that the σ-space samplers step.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "diffuse/sampler.hpp"

namespace diffuse::sampler_detail {

class Context {
 public:
  Context(const Denoiser& denoiser, const SamplerConfig& cfg, NoiseStream& noise,
          const StepCallback& callback, const Conditioning& cond, std::vector<GridPoint> grid,
          std::vector<int64_t> sample_shape)
      : denoiser(denoiser), cfg(cfg), grid(std::move(grid)), noise_(noise), callback_(callback),
        cond_(cond), sample_shape_(std::move(sample_shape)) {}

  const Denoiser& denoiser;
  const SamplerConfig& cfg;
  const std::vector<GridPoint> grid;  // S points, then the end point σ = 0

  int64_t steps() const { return int64_t(grid.size()) - 1; }

  // The denoiser at grid point p on the VP state; x₀ clamped when cfg.clip_x0 > 0
  // (ε is left as the model gave it, as diffusers does).
  Prediction denoise(const torch::Tensor& x_vp, const GridPoint& p) const {
    auto pred = predict_at(denoiser, x_vp, p, cond_);
    if (cfg.clip_x0 > 0) pred.x0 = pred.x0.clamp(-cfg.clip_x0, cfg.clip_x0);
    return pred;
  }
  // x₀ estimate from the VE state x_σ at grid point p.
  torch::Tensor denoise_ve(const torch::Tensor& x_ve, const GridPoint& p) const {
    return denoise(to_vp(x_ve, p.sigma), p).x0;
  }

  // Standard normal noise shaped like x (one draw from the stream per call).
  torch::Tensor randn_like(const torch::Tensor& x) { return noise_.randn(sample_shape_, x.options()); }

  void report(int64_t step, const GridPoint& p, const torch::Tensor& x_vp, const torch::Tensor& x0) const {
    if (callback_) callback_({step, steps(), p.t, p.sigma, x_vp, x0});
  }

  // x_σ = x_vp √(1 + σ²) and back.
  static torch::Tensor to_ve(const torch::Tensor& x_vp, double sigma) {
    return x_vp * std::sqrt(1.0 + sigma * sigma);
  }
  static torch::Tensor to_vp(const torch::Tensor& x_ve, double sigma) {
    return x_ve / std::sqrt(1.0 + sigma * sigma);
  }

 private:
  NoiseStream& noise_;
  const StepCallback& callback_;
  const Conditioning& cond_;
  std::vector<int64_t> sample_shape_;
};

// One sampler per file under src/sampler/. Each takes x_T (VP) and returns x₀.
torch::Tensor sample_ddpm(Context& c, torch::Tensor x);
torch::Tensor sample_ddim(Context& c, torch::Tensor x);
torch::Tensor sample_euler(Context& c, torch::Tensor x);
torch::Tensor sample_euler_ancestral(Context& c, torch::Tensor x);
torch::Tensor sample_heun(Context& c, torch::Tensor x);
torch::Tensor sample_dpmpp_2m(Context& c, torch::Tensor x);
torch::Tensor sample_dpmpp_2m_sde(Context& c, torch::Tensor x);
torch::Tensor sample_unipc(Context& c, torch::Tensor x);

// Karras et al. 2022, Alg. 2, the churn of euler and heun: γ = min(S_churn/S, √2 − 1)
// for σ_i in [s_tmin, s_tmax] (else 0), σ̂ = σ_i (1 + γ), x ← x + √(σ̂² − σ_i²) S_noise z.
// Returns the point to denoise at (p itself when γ = 0). x is the VE state.
GridPoint churn(Context& c, torch::Tensor& x, const GridPoint& p);

}  // namespace diffuse::sampler_detail
