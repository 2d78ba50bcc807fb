// diffuse — the forward process, parameterizations and training losses.
//
// Shapes: x is (B, ...) — (B, D) for vectors, (B, C, H, W) for images;
// t is (B) int64 with values in [0, T). Coefficients are computed in float64
// from the NoiseSchedule and cast to x's dtype at the last moment.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "diffuse/schedule.hpp"

namespace diffuse {

// The table `values` (length T) gathered at t (B) and shaped (B, 1, …, 1) to
// broadcast against a tensor of `ndim` dimensions, as float64 on t's device.
torch::Tensor gather_coef(const std::vector<double>& values, const torch::Tensor& t, int64_t ndim);

// ᾱ at timesteps t (B), shaped (B, 1, …, 1) for `ndim` dimensions, float64 on t's
// device. Integer t (any dtype) reads the table; fractional t (samplers on σ
// grids) uses NoiseSchedule::alpha_bar_at.
torch::Tensor alpha_bar_of(const NoiseSchedule& s, const torch::Tensor& t, int64_t ndim);

// q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I):  x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε.
torch::Tensor q_sample(const NoiseSchedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                       const torch::Tensor& noise);

// One Markov step q(x_t | x_{t−1}) = N(√(1 − β_t) x_{t−1}, β_t I):
//   x_t = √(1 − β_t) x_{t−1} + √β_t ε   (x_prev is x_{t−1}; for t = 0 it is x_0).
torch::Tensor q_step(const NoiseSchedule& s, const torch::Tensor& x_prev, const torch::Tensor& t,
                     const torch::Tensor& noise);

// Mean of q(x_{t−1} | x_t, x_0) = c0·x_0 + ct·x_t (seed 002); its variance is β̃_t.
torch::Tensor q_posterior_mean(const NoiseSchedule& s, const torch::Tensor& x0,
                               const torch::Tensor& x_t, const torch::Tensor& t);

// What the network predicts.
enum class PredictionType { Epsilon, Sample, V };  // ε, x₀, v = √ᾱ ε − √(1−ᾱ) x₀
std::string to_string(PredictionType p);
PredictionType parse_prediction_type(const std::string& name);  // "eps", "x0", "v"
std::vector<std::string> prediction_type_names();

// Conversions, with a = √ᾱ_t and s = √(1 − ᾱ_t) (Salimans & Ho 2022):
//   x₀ = (x_t − s ε)/a      ε = (x_t − a x₀)/s
//   x₀ = a x_t − s v        ε = s x_t + a v        v = a ε − s x₀
torch::Tensor eps_from_x0(const NoiseSchedule& s, const torch::Tensor& x_t, const torch::Tensor& t,
                          const torch::Tensor& x0);
torch::Tensor x0_from_eps(const NoiseSchedule& s, const torch::Tensor& x_t, const torch::Tensor& t,
                          const torch::Tensor& eps);
torch::Tensor v_from(const NoiseSchedule& s, const torch::Tensor& t, const torch::Tensor& eps,
                     const torch::Tensor& x0);
// Given the network output `out` of type p, both estimates.
struct EpsX0 {
  torch::Tensor eps, x0;
};
EpsX0 to_eps_x0(const NoiseSchedule& s, PredictionType p, const torch::Tensor& x_t,
                const torch::Tensor& t, const torch::Tensor& out);
// The regression target of type p for a training pair (x₀, ε).
torch::Tensor target_for(const NoiseSchedule& s, PredictionType p, const torch::Tensor& t,
                         const torch::Tensor& x0, const torch::Tensor& eps);

// How the per-timestep losses are weighted. Every variant is written as a
// weight w(t) on the ε-space error ‖ε̂ − ε‖², with SNR = ᾱ/(1 − ᾱ):
//   Simple  w = 1                 L_simple of Ho et al. 2020 (ε-MSE)
//   X0      w = 1/SNR             ‖x̂₀ − x₀‖² (x₀-MSE)
//   V       w = 1 + 1/SNR = 1/ᾱ   ‖v̂ − v‖² (v-MSE)
//   MinSnr  w = min(SNR, γ)/SNR   min-SNR-γ (Hang et al. 2023) on x₀, i.e. ε-MSE capped
//   TruncatedSnr  w = max(1, 1/SNR)  max(SNR, 1)·‖x̂₀ − x₀‖², the "truncated SNR" weighting of
//                                    progressive distillation (Salimans & Ho 2022, §4)
// The loss is computed from the network's native error (the output minus the
// target of its own type) times the factor that makes it equal to the above, so a
// model that predicts x₀ with X0 weighting is exactly x₀-MSE, with no division
// by a small √(1 − ᾱ).
enum class LossWeighting { Simple, X0, V, MinSnr, TruncatedSnr };
std::string to_string(LossWeighting w);
LossWeighting parse_loss_weighting(const std::string& name);  // "simple", "x0", "v", "min-snr", "truncated-snr"
std::vector<std::string> loss_weighting_names();

struct LossConfig {
  LossWeighting weighting = LossWeighting::Simple;
  double min_snr_gamma = 5.0;  // γ of min-SNR-γ
};

// Per-sample weight (B) in float64 on the native squared error of type p.
torch::Tensor loss_weight(const NoiseSchedule& s, PredictionType p, const LossConfig& cfg,
                          const torch::Tensor& t);
// Mean over the batch of w(t) · mean_dims (out − target)², as a float32 scalar.
torch::Tensor diffusion_loss(const NoiseSchedule& s, PredictionType p, const LossConfig& cfg,
                             const torch::Tensor& out, const torch::Tensor& target,
                             const torch::Tensor& t);

}  // namespace diffuse
