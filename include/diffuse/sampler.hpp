// diffuse — samplers: one signature for all.
//
//   x_0 = sample(denoiser, x_T, config, noise, callback)
//
// x_T: (B, ...) the starting noise (draw it with NoiseStream::randn so that
// sample i depends only on (seed, i), never on the batch it was drawn in).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"

namespace diffuse {

// Gaussian noise with one generator per sample: row i is drawn from a generator
// seeded by (seed, first_index + i), on the CPU, then moved to the device, so
// results are the same whatever the batch size or device.
class NoiseStream {
 public:
  NoiseStream(uint64_t seed, int64_t first_index, int64_t count);
  int64_t count() const { return static_cast<int64_t>(gens_.size()); }
  // (count, sample_shape...) standard normal, float32 unless options say otherwise.
  torch::Tensor randn(const std::vector<int64_t>& sample_shape,
                      const torch::TensorOptions& options = {}) ;

 private:
  std::vector<torch::Generator> gens_;
};

// Mixes a seed and an index into a new 64-bit seed (splitmix64).
uint64_t mix_seed(uint64_t seed, uint64_t index);

enum class SamplerKind { Ddpm };
std::string to_string(SamplerKind k);
SamplerKind parse_sampler_kind(const std::string& name);  // throws, listing the valid names
std::vector<std::string> sampler_kind_names();

// Variance of the DDPM reverse step (Ho et al. 2020, §3.2): σ_t² = β_t or β̃_t.
enum class DdpmVariance { Beta, BetaTilde };
std::string to_string(DdpmVariance v);
DdpmVariance parse_ddpm_variance(const std::string& name);  // "beta", "beta-tilde"

struct SamplerConfig {
  SamplerKind kind = SamplerKind::Ddpm;
  DdpmVariance ddpm_variance = DdpmVariance::BetaTilde;  // ddpm: σ_t² = β̃_t (or β_t)
  double clip_x0 = 0.0;  // > 0: clamp the x₀ estimate to [−clip_x0, clip_x0] at each step
};

struct StepInfo {
  int64_t step;        // 0 … total−1
  int64_t total;       // number of steps
  int64_t t;           // the timestep just denoised
  torch::Tensor x;     // (B, ...) the state after this step (x_{t−1})
  torch::Tensor x0;    // (B, ...) the x₀ estimate at this step
};
using StepCallback = std::function<void(const StepInfo&)>;

torch::Tensor sample(const Denoiser& denoiser, torch::Tensor x_T, const SamplerConfig& cfg,
                     NoiseStream& noise, const StepCallback& callback = {},
                     const Conditioning& cond = {});

// The samplers, one per file under src/sampler/.
torch::Tensor sample_ddpm(const Denoiser& denoiser, torch::Tensor x, const SamplerConfig& cfg,
                          NoiseStream& noise, const StepCallback& callback,
                          const Conditioning& cond);

}  // namespace diffuse
