// diffuse — the Denoiser: the only thing samplers see.
//
// A Denoiser maps (x_t, t) to estimates of ε and x₀ under its schedule. It hides
// the network's parameterization (ε, x₀ or v) and, for the analytic Gaussian
// denoiser, that there is no network at all.
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>

#include "diffuse/diffusion.hpp"
#include "diffuse/schedule.hpp"

namespace diffuse {

// What a model is conditioned on. labels: (B) int64 class ids, or undefined.
struct Conditioning {
  torch::Tensor labels;
};

struct Prediction {
  torch::Tensor eps;  // (B, ...) estimate of the noise in x_t
  torch::Tensor x0;   // (B, ...) estimate of the clean sample
};

class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // x_t: (B, ...) ; t: (B) timesteps in [0, T−1]: int64, or floating point when a
  // sampler works between the model's timesteps (σ grids); then ᾱ(t) is
  // NoiseSchedule::alpha_bar_at(t) and a network sees the fractional t.
  virtual Prediction predict(const torch::Tensor& x_t, const torch::Tensor& t,
                             const Conditioning& cond = {}) const = 0;
  virtual const NoiseSchedule& schedule() const = 0;
};

// Any model as a callable: (x_t (B,...), t (B), cond) → raw output of type
// `prediction`. This is how users plug their own networks into the samplers.
// t is int64 on the model's timesteps and float64 between them (Karras or
// exponential σ grids, linspace spacing for σ-space samplers).
using ModelFn = std::function<torch::Tensor(const torch::Tensor& x_t, const torch::Tensor& t,
                                            const Conditioning& cond)>;

class ModelDenoiser : public Denoiser {
 public:
  ModelDenoiser(ModelFn model, NoiseSchedule schedule, PredictionType prediction)
      : model_(std::move(model)), schedule_(std::move(schedule)), prediction_(prediction) {}

  Prediction predict(const torch::Tensor& x_t, const torch::Tensor& t,
                     const Conditioning& cond = {}) const override;
  const NoiseSchedule& schedule() const override { return schedule_; }
  PredictionType prediction_type() const { return prediction_; }

  // Training loss for clean x0 (B, ...), timesteps t (B) and noise ε (B, ...):
  //   x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε;  loss = mean_B w(t) · mean (model(x_t, t) − target)².
  torch::Tensor loss(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& noise,
                     const LossConfig& cfg, const Conditioning& cond = {}) const;

 private:
  ModelFn model_;
  NoiseSchedule schedule_;
  PredictionType prediction_;
};

// The exact denoiser for data x₀ ~ N(μ, Σ) in D dimensions. With x_t = a x₀ + s ε
// (a = √ᾱ_t, s = √(1−ᾱ_t)), x_t ~ N(aμ, a²Σ + s²I) and
//   E[x₀ | x_t] = μ + aΣ (a²Σ + s²I)⁻¹ (x_t − aμ),   E[ε | x_t] = (x_t − a E[x₀|x_t]) / s,
// computed in the eigenbasis Σ = U diag(λ) Uᵀ, in float64.
class GaussianDenoiser : public Denoiser {
 public:
  // mean: (D); cov: (D, D) symmetric positive semi-definite.
  GaussianDenoiser(torch::Tensor mean, torch::Tensor cov, NoiseSchedule schedule);
  Prediction predict(const torch::Tensor& x_t, const torch::Tensor& t,
                     const Conditioning& cond = {}) const override;
  const NoiseSchedule& schedule() const override { return schedule_; }
  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& cov() const { return cov_; }

 private:
  torch::Tensor mean_, cov_, eigval_, eigvec_;  // float64
  NoiseSchedule schedule_;
};

}  // namespace diffuse
