// The sampler registry: names, parsing and dispatch.
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "core/enum_names.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse {

namespace {
const EnumNames<SamplerKind>& sampler_names() {
  static const EnumNames<SamplerKind> n("sampler", {{SamplerKind::Ddpm, "ddpm"}});
  return n;
}
const EnumNames<DdpmVariance>& variance_names() {
  static const EnumNames<DdpmVariance> n("DDPM variance",
                                         {{DdpmVariance::Beta, "beta"}, {DdpmVariance::BetaTilde, "beta-tilde"}});
  return n;
}
}  // namespace

std::string to_string(SamplerKind k) { return sampler_names().name(k); }
std::vector<std::string> sampler_kind_names() { return sampler_names().names(); }
SamplerKind parse_sampler_kind(const std::string& name) { return sampler_names().parse(name); }
std::string to_string(DdpmVariance v) { return variance_names().name(v); }
DdpmVariance parse_ddpm_variance(const std::string& name) { return variance_names().parse(name); }

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
