// diffuse — samplers: one signature for all.
//
//   x_0 = sample(denoiser, x_T, config, noise, callback, cond)
//
// x_T: (B, ...) the starting noise in the model's (variance-preserving) space,
// x_T ~ N(0, I); draw it with NoiseStream::randn so that sample i depends only on
// (seed, i), never on the batch it was drawn in.
//
// Every sampler walks a grid of noise levels σ_0 > σ_1 > … > σ_{S−1} > σ_S = 0
// (GridPoint), with σ_t = √((1 − ᾱ_t)/ᾱ_t) the bridge between the DDPM timesteps
// and the σ-space of Karras et al. 2022: x_σ = x_t / √ᾱ_t = x₀ + σ ε.
// Samplers and grids are named as in diffusers and k-diffusion.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"

namespace diffuse {

// Gaussian noise for a batch. Per-sample mode (the default): row i is drawn from
// a generator seeded by (seed, first_index + i), on the CPU, then moved to the
// device, so results are the same whatever the batch size or device. Shared
// mode: one generator draws the whole (count, ...) tensor at once, as
// `torch.randn(shape, generator=g)` does in Python (diffusers' tests use this).
class NoiseStream {
 public:
  NoiseStream(uint64_t seed, int64_t first_index, int64_t count);
  static NoiseStream shared(torch::Generator generator, int64_t count);
  // Row i drawn as row 0 of NoiseStream(seeds[i], 0, 1): a batch of images each of which
  // is what its own seed alone gives (the server's "image k has seed s + k").
  static NoiseStream per_seed(const std::vector<uint64_t>& seeds);
  int64_t count() const { return count_; }
  // (count, sample_shape...) standard normal, float32 unless options say otherwise.
  torch::Tensor randn(const std::vector<int64_t>& sample_shape,
                      const torch::TensorOptions& options = {});

 private:
  NoiseStream() = default;
  std::vector<torch::Generator> gens_;
  int64_t count_ = 0;
  bool shared_ = false;
};

// Mixes a seed and an index into a new 64-bit seed (splitmix64).
uint64_t mix_seed(uint64_t seed, uint64_t index);

enum class SamplerKind {
  Ddpm,            // ancestral DDPM (Ho et al. 2020), respaced to any number of steps
  Ddim,            // DDIM (Song et al. 2021), η ≥ 0
  Euler,           // Euler on the probability-flow ODE (Karras et al. 2022, Alg. 2 with S_churn)
  EulerAncestral,  // Euler with ancestral noise (k-diffusion sample_euler_ancestral)
  Heun,            // Heun's 2nd order (Karras et al. 2022, Alg. 2)
  DpmPp2m,         // DPM-Solver++(2M) (Lu et al. 2022)
  DpmPp2mSde,      // DPM-Solver++(2M) SDE, midpoint
  UniPc,           // UniPC with B(h) = e^h − 1 ("bh2"), order 2 or 3 (Zhao et al. 2023)
};
std::string to_string(SamplerKind k);
SamplerKind parse_sampler_kind(const std::string& name);  // throws, listing the valid names
std::vector<std::string> sampler_kind_names();
// True for the samplers that draw fresh noise at every step.
bool is_stochastic(SamplerKind k);

// Variance of the DDPM reverse step (Ho et al. 2020, §3.2): σ_t² = β̃_t or β_t.
enum class DdpmVariance { Beta, BetaTilde };
std::string to_string(DdpmVariance v);
DdpmVariance parse_ddpm_variance(const std::string& name);  // "beta", "beta-tilde"

// Which timesteps the grid visits (diffusers' timestep_spacing), for S steps of T:
//   Leading   t_i = (S−1−i)·⌊T/S⌋ + steps_offset
//   Trailing  t_i = round(T − i·T/S) − 1             (starts at T−1; the default)
//   Linspace  t_i = linspace(0, T−1, S) reversed; rounded for ddpm and ddim,
//             fractional for the σ-space samplers (as diffusers' Euler and Heun)
enum class TimestepSpacing { Leading, Trailing, Linspace };
std::string to_string(TimestepSpacing s);
TimestepSpacing parse_timestep_spacing(const std::string& name);
std::vector<std::string> timestep_spacing_names();

// Where the σ values come from:
//   Timesteps    σ at the timesteps of `spacing`
//   Karras       σ_i = (σ_max^{1/ρ} + i/(S−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ (Karras et al. 2022, eq. 5)
//   Exponential  log σ_i linear from log σ_max to log σ_min
// σ_min and σ_max are the model's σ at t = 0 and t = T−1; the network sees
// t(σ) by log-σ interpolation between its timesteps.
enum class SigmaSchedule { Timesteps, Karras, Exponential };
std::string to_string(SigmaSchedule s);
SigmaSchedule parse_sigma_schedule(const std::string& name);
std::vector<std::string> sigma_schedule_names();

struct SamplerConfig {
  SamplerKind kind = SamplerKind::Ddpm;
  int64_t steps = 0;  // grid points S (network calls: S, or 2S − 1 for heun); 0 = all T timesteps
  TimestepSpacing spacing = TimestepSpacing::Trailing;
  int64_t steps_offset = 0;  // leading spacing: added to every timestep (diffusers' steps_offset)
  SigmaSchedule sigmas = SigmaSchedule::Timesteps;
  double rho = 7.0;                // karras: ρ
  std::vector<int64_t> timesteps;  // if set: these timesteps, strictly descending (overrides steps/spacing)
  double clip_x0 = 0.0;            // > 0: clamp the x₀ estimate to [−clip_x0, clip_x0] at each step

  // Options of some samplers only. Unset: the sampler's default; set for a
  // sampler that does not take it: validate() throws and says why.
  std::optional<DdpmVariance> variance;  // ddpm: σ_t² = β̃_t (default) or β_t
  std::optional<double> eta;             // ddim (default 0); euler-ancestral, dpm++2m-sde (default 1)
  std::optional<bool> final_alpha_one;   // ddim: last step to ᾱ = 1 (default; diffusers'
                                         // set_alpha_to_one) or to ᾱ_0
  std::optional<double> churn;           // euler, heun: S_churn (default 0: deterministic)
  std::optional<double> s_tmin, s_tmax;  // euler, heun: churn only for σ in [s_tmin, s_tmax] (0, ∞)
  std::optional<double> s_noise;         // euler, heun, euler-ancestral, dpm++2m-sde: noise scale (1)
  std::optional<int> order;              // unipc: 2 (default) or 3
};

// Throws diffuse::Error for bad values and for options the chosen sampler does not take.
void validate(const SamplerConfig& cfg);

// A point of the reverse process: the network's timestep t (fractional between
// timesteps; −1 for the end, σ = 0), σ and ᾱ = 1/(1 + σ²).
struct GridPoint {
  double t;
  double sigma;
  double alpha_bar;
};
// The S grid points of `cfg` on `schedule`, then the end point (σ = 0).
std::vector<GridPoint> sampling_grid(const NoiseSchedule& schedule, const SamplerConfig& cfg);
// Network evaluations for a batch: S, or 2S − 1 for heun.
int64_t network_calls(const NoiseSchedule& schedule, const SamplerConfig& cfg);

// The denoiser at grid point p for a batch x_vp: t as int64 when p.t is whole, float64
// otherwise — how every sampler (and the restoration methods) call a model.
Prediction predict_at(const Denoiser& denoiser, const torch::Tensor& x_vp, const GridPoint& p,
                      const Conditioning& cond = {});

struct StepInfo {
  int64_t step;      // 0 … total−1
  int64_t total;     // number of steps
  double t;          // the timestep just denoised (fractional on σ grids)
  double sigma;      // its σ
  torch::Tensor x;   // (B, ...) the state after this step, in the model's space (x_{t_next})
  torch::Tensor x0;  // (B, ...) the x₀ estimate at this step (undefined on a step that re-noises, e.g. RePaint's jumps)
};
using StepCallback = std::function<void(const StepInfo&)>;

torch::Tensor sample(const Denoiser& denoiser, torch::Tensor x_T, const SamplerConfig& cfg,
                     NoiseStream& noise, const StepCallback& callback = {},
                     const Conditioning& cond = {});

}  // namespace diffuse
