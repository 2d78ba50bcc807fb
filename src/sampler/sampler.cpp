// The sampler registry: names, validation and dispatch.
#include <torch/torch.h>

#include <cmath>

#include "context.hpp"
#include "core/enum_names.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {
const EnumNames<SamplerKind>& sampler_names() {
  static const EnumNames<SamplerKind> n(
      "sampler", {{SamplerKind::Ddpm, "ddpm"},
                  {SamplerKind::Ddim, "ddim"},
                  {SamplerKind::Euler, "euler"},
                  {SamplerKind::EulerAncestral, "euler-ancestral"},
                  {SamplerKind::Heun, "heun"},
                  {SamplerKind::DpmPp2m, "dpm++2m"},
                  {SamplerKind::DpmPp2mSde, "dpm++2m-sde"},
                  {SamplerKind::UniPc, "unipc"}});
  return n;
}
const EnumNames<DdpmVariance>& variance_names() {
  static const EnumNames<DdpmVariance> n("DDPM variance",
                                         {{DdpmVariance::Beta, "beta"}, {DdpmVariance::BetaTilde, "beta-tilde"}});
  return n;
}
const EnumNames<TimestepSpacing>& spacing_names() {
  static const EnumNames<TimestepSpacing> n("timestep spacing", {{TimestepSpacing::Leading, "leading"},
                                                                 {TimestepSpacing::Trailing, "trailing"},
                                                                 {TimestepSpacing::Linspace, "linspace"}});
  return n;
}
const EnumNames<SigmaSchedule>& sigma_names() {
  static const EnumNames<SigmaSchedule> n("σ schedule", {{SigmaSchedule::Timesteps, "timesteps"},
                                                         {SigmaSchedule::Karras, "karras"},
                                                         {SigmaSchedule::Exponential, "exponential"}});
  return n;
}


// "option applies to a, b: <why>" unless kind is one of `takers`.
void sampler_option_only_for(bool set, SamplerKind kind, std::initializer_list<SamplerKind> takers, const std::string& option,
              const std::string& why) {
  if (!set) return;
  std::vector<std::string> names;
  for (SamplerKind k : takers) {
    if (k == kind) return;
    names.push_back(to_string(k));
  }
  throw Error(option + " does not apply to the " + to_string(kind) + " sampler",
              option + " applies to " + join(names) + ": " + why);
}
}  // namespace

std::string to_string(SamplerKind k) { return sampler_names().name(k); }
std::vector<std::string> sampler_kind_names() { return sampler_names().names(); }
SamplerKind parse_sampler_kind(const std::string& name) { return sampler_names().parse(name); }
std::string to_string(DdpmVariance v) { return variance_names().name(v); }
DdpmVariance parse_ddpm_variance(const std::string& name) { return variance_names().parse(name); }
std::string to_string(TimestepSpacing s) { return spacing_names().name(s); }
TimestepSpacing parse_timestep_spacing(const std::string& name) { return spacing_names().parse(name); }
std::vector<std::string> timestep_spacing_names() { return spacing_names().names(); }
std::string to_string(SigmaSchedule s) { return sigma_names().name(s); }
SigmaSchedule parse_sigma_schedule(const std::string& name) { return sigma_names().parse(name); }
std::vector<std::string> sigma_schedule_names() { return sigma_names().names(); }

bool is_stochastic(SamplerKind k) {
  return k == SamplerKind::Ddpm || k == SamplerKind::EulerAncestral || k == SamplerKind::DpmPp2mSde;
}

void validate(const SamplerConfig& c) {
  if (c.steps < 0) throw Error("steps = " + std::to_string(c.steps) + " is negative", "0 means all T timesteps");
  if (c.steps_offset < 0) throw Error("steps_offset must be >= 0");
  if (c.steps_offset != 0 && c.spacing != TimestepSpacing::Leading)
    throw Error("steps_offset applies to the leading spacing only",
                "diffusers adds steps_offset to leading timesteps; trailing and linspace end at T−1 already");
  if (!(c.rho > 0)) throw Error("rho must be > 0 (Karras et al. use 7)");
  if (c.rho != 7.0 && c.sigmas != SigmaSchedule::Karras)
    throw Error("rho applies to the karras σ schedule only", "add --sigmas karras");
  if (c.clip_x0 < 0) throw Error("clip_x0 must be >= 0 (0 turns clipping off)");
  if (!c.timesteps.empty() && (c.steps != 0 || c.sigmas != SigmaSchedule::Timesteps))
    throw Error("custom timesteps replace steps and the σ schedule", "give either timesteps or steps/sigmas");
  sampler_option_only_for(c.variance.has_value(), c.kind, {SamplerKind::Ddpm}, "variance",
           "the reverse variance β or β̃ is DDPM's choice; other samplers set their own noise");
  sampler_option_only_for(c.eta.has_value(), c.kind, {SamplerKind::Ddim, SamplerKind::EulerAncestral, SamplerKind::DpmPp2mSde}, "eta",
           "η scales the fresh noise of the samplers that can draw it; euler and heun take churn instead");
  sampler_option_only_for(c.final_alpha_one.has_value(), c.kind, {SamplerKind::Ddim}, "final_alpha_one",
           "it is DDIM's set_alpha_to_one; the other samplers end at σ = 0");
  sampler_option_only_for(c.churn.has_value() || c.s_tmin.has_value() || c.s_tmax.has_value(), c.kind, {SamplerKind::Euler, SamplerKind::Heun},
           "churn", "S_churn, s_tmin and s_tmax are the stochastic option of Karras et al.'s Algorithm 2");
  sampler_option_only_for(c.s_noise.has_value(), c.kind, {SamplerKind::Euler, SamplerKind::Heun, SamplerKind::EulerAncestral, SamplerKind::DpmPp2mSde}, "s_noise",
           "it scales the noise those samplers add");
  sampler_option_only_for(c.order.has_value(), c.kind, {SamplerKind::UniPc}, "order",
           "dpm++2m is second order by name; heun is second order, euler first");
  if (c.eta && !(*c.eta >= 0)) throw Error("eta must be >= 0");
  if (c.churn && !(*c.churn >= 0)) throw Error("churn must be >= 0");
  if (c.s_noise && !(*c.s_noise >= 0)) throw Error("s_noise must be >= 0");
  if (c.s_tmin && c.s_tmax && !(*c.s_tmin <= *c.s_tmax)) throw Error("s_tmin must be <= s_tmax");
  if (c.order && (*c.order < 1 || *c.order > 3))
    throw Error("unipc order " + std::to_string(*c.order) + " is not supported", "valid orders: 1, 2, 3");
}

torch::Tensor sample(const Denoiser& denoiser, torch::Tensor x_T, const SamplerConfig& cfg,
                     NoiseStream& noise, const StepCallback& callback, const Conditioning& cond) {
  if (noise.count() != x_T.size(0))
    throw Error("the noise stream has " + std::to_string(noise.count()) + " rows for a batch of " +
                std::to_string(x_T.size(0)));
  auto grid = sampling_grid(denoiser.schedule(), cfg);  // validates cfg
  torch::NoGradGuard no_grad;
  sampler_detail::Context c(denoiser, cfg, noise, callback, cond, std::move(grid),
                            std::vector<int64_t>(x_T.sizes().begin() + 1, x_T.sizes().end()));
  using namespace sampler_detail;
  switch (cfg.kind) {
    case SamplerKind::Ddpm: return sample_ddpm(c, std::move(x_T));
    case SamplerKind::Ddim: return sample_ddim(c, std::move(x_T));
    case SamplerKind::Euler: return sample_euler(c, std::move(x_T));
    case SamplerKind::EulerAncestral: return sample_euler_ancestral(c, std::move(x_T));
    case SamplerKind::Heun: return sample_heun(c, std::move(x_T));
    case SamplerKind::DpmPp2m: return sample_dpmpp_2m(c, std::move(x_T));
    case SamplerKind::DpmPp2mSde: return sample_dpmpp_2m_sde(c, std::move(x_T));
    case SamplerKind::UniPc: return sample_unipc(c, std::move(x_T));
  }
  throw Error("unhandled sampler");
}

}  // namespace diffuse
