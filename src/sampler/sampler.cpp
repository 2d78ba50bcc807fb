// The sampler registry: names, parsing and dispatch.
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse {

std::string to_string(SamplerKind k) {
  switch (k) {
    case SamplerKind::Ddpm: return "ddpm";
  }
  return "?";
}

std::vector<std::string> sampler_kind_names() { return {"ddpm"}; }

SamplerKind parse_sampler_kind(const std::string& name) {
  if (name == "ddpm") return SamplerKind::Ddpm;
  throw Error("unknown sampler '" + name + "'", "valid samplers: " + join(sampler_kind_names()));
}

std::string to_string(DdpmVariance v) { return v == DdpmVariance::Beta ? "beta" : "beta-tilde"; }

DdpmVariance parse_ddpm_variance(const std::string& name) {
  if (name == "beta") return DdpmVariance::Beta;
  if (name == "beta-tilde") return DdpmVariance::BetaTilde;
  throw Error("unknown DDPM variance '" + name + "'", "valid choices: beta, beta-tilde");
}

torch::Tensor sample(const Denoiser& denoiser, torch::Tensor x_T, const SamplerConfig& cfg,
                     NoiseStream& noise, const StepCallback& callback, const Conditioning& cond) {
  if (noise.count() != x_T.size(0))
    throw Error("the noise stream has " + std::to_string(noise.count()) + " generators for a batch of " +
                std::to_string(x_T.size(0)));
  if (cfg.clip_x0 < 0) throw Error("clip_x0 must be >= 0 (0 turns clipping off)");
  torch::NoGradGuard no_grad;
  switch (cfg.kind) {
    case SamplerKind::Ddpm: return sample_ddpm(denoiser, std::move(x_T), cfg, noise, callback, cond);
  }
  throw Error("unhandled sampler");
}

}  // namespace diffuse
