// Restoration: method names, validation, dispatch (see restore.hpp).
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "methods.hpp"

namespace diffuse {

std::string to_string(RestoreMethod m) {
  switch (m) {
    case RestoreMethod::Repaint: return "repaint";
    case RestoreMethod::Ddnm: return "ddnm";
    case RestoreMethod::Dps: return "dps";
    case RestoreMethod::Sdedit: return "sdedit";
  }
  return "?";
}

RestoreMethod parse_restore_method(const std::string& name) {
  for (auto m : {RestoreMethod::Repaint, RestoreMethod::Ddnm, RestoreMethod::Dps, RestoreMethod::Sdedit})
    if (to_string(m) == name) return m;
  throw Error("unknown method '" + name + "'", "valid: repaint, ddnm, dps, sdedit");
}

void validate(const RestoreConfig& cfg, const Degradation& A, bool latent) {
  validate(cfg.sampler);
  const std::string m = to_string(cfg.method);
  if (latent && (cfg.method == RestoreMethod::Repaint || cfg.method == RestoreMethod::Ddnm))
    throw Error(m + " replaces pixels of the x0 estimate by the measurement, and a latent run's x0 is a latent",
                "use --method dps, which measures through the decoder (or 'diffuse edit', sdedit)");
  switch (cfg.method) {
    case RestoreMethod::Repaint:
      if (!A.is_mask())
        throw Error("repaint fills masked pixels; this degradation is " + A.describe(),
                    "use ddnm or dps for downsampling and gray");
      [[fallthrough]];
    case RestoreMethod::Dps:
      if (cfg.sampler.kind != SamplerKind::Ddpm)
        throw Error(m + " runs on DDPM steps, not " + to_string(cfg.sampler.kind),
                    "use --sampler ddpm (the default) and --steps to set how many; ddnm and sdedit take any sampler");
      if (cfg.sampler.sigmas != SigmaSchedule::Timesteps)
        throw Error(m + " runs on the model's timesteps", "leave --sigmas at timesteps");
      break;
    case RestoreMethod::Ddnm:
      if (A.is_identity()) throw Error("ddnm needs a degradation", "to edit an image use sdedit");
      break;
    case RestoreMethod::Sdedit:
      if (!A.is_identity()) throw Error("sdedit edits a whole image; it takes no degradation", "use ddnm, dps or repaint");
      if (!(cfg.strength > 0 && cfg.strength <= 1)) throw Error("strength must be in (0, 1]", "0.3–0.7 is typical");
      if (cfg.sampler.sigmas != SigmaSchedule::Timesteps || !cfg.sampler.timesteps.empty())
        throw Error("sdedit starts part-way down the model's timestep grid", "leave --sigmas at timesteps, without --timesteps");
      break;
  }
  if (cfg.method == RestoreMethod::Repaint && (cfg.jump_length < 1 || cfg.resample < 1))
    throw Error("repaint's jump length and resample count must be >= 1", "1 and 1: no resampling");
  if (cfg.method == RestoreMethod::Dps && !(cfg.dps_scale >= 0)) throw Error("the DPS scale must be >= 0");
}

torch::Tensor restore(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                      const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                      const StepCallback& callback, const LatentCodec* latent) {
  validate(cfg, A, latent != nullptr);
  using namespace restore_detail;
  torch::Tensor x;
  switch (cfg.method) {
    case RestoreMethod::Ddnm: x = run_ddnm(d, A, y, x_T, cfg, noise, cond, callback); break;
    case RestoreMethod::Repaint: x = run_repaint(d, A, y, x_T, cfg, noise, cond, callback); break;
    case RestoreMethod::Dps: x = run_dps(d, A, y, x_T, cfg, noise, cond, callback, latent); break;
    case RestoreMethod::Sdedit:
      // the input image in the model's space: z = E(x)·s for a latent run
      x = run_sdedit(d, latent ? latent->encode(y.to(x_T.device())) : y, x_T, cfg, noise, cond, callback);
      break;
  }
  if (!latent) return x;
  torch::NoGradGuard no_grad;
  return latent->decode(x);
}

namespace restore_detail {

torch::Tensor ddpm_step(const torch::Tensor& x, const torch::Tensor& x0, double ab, double ab_prev, bool last,
                        NoiseStream& noise) {
  const double beta = 1.0 - ab / ab_prev;
  auto out = beta * std::sqrt(ab_prev) / (1.0 - ab) * x0 + std::sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab) * x;
  if (last) return out;
  auto z = noise.randn(std::vector<int64_t>(x.sizes().begin() + 1, x.sizes().end()), x.options());
  return out + std::sqrt((1.0 - ab_prev) / (1.0 - ab) * beta) * z;
}

}  // namespace restore_detail
}  // namespace diffuse
