#include <cstdio>

#include "cli.hpp"
#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

void add_sampler_flags(CLI::App& cmd, SamplerFlags& f) {
  const char* g = "Sampler";
  f.o_sampler = cmd.add_option("--sampler", f.sampler,
                                "sampler: " + join(sampler_kind_names()) + " (distilled runs: ddim)")
                    ->capture_default_str()->group(g);
  f.o_steps = cmd.add_option("--steps", f.steps,
                             "grid points (network calls; heun: 2*steps-1); 0: all T timesteps (distilled runs: "
                             "their steps)")
                  ->capture_default_str()->group(g);
  cmd.add_option("--spacing", f.spacing, "timestep spacing: " + join(timestep_spacing_names()))
      ->capture_default_str()->group(g);
  cmd.add_option("--steps-offset", f.steps_offset, "leading spacing: added to every timestep")
      ->capture_default_str()->group(g);
  cmd.add_option("--sigmas", f.sigmas, "noise levels: " + join(sigma_schedule_names()))
      ->capture_default_str()->group(g);
  cmd.add_option("--rho", f.rho, "karras: rho")->capture_default_str()->group(g);
  cmd.add_option("--timesteps", f.timesteps, "custom descending timesteps, e.g. 999,666,333,0")
      ->delimiter(',')->group(g);
  cmd.add_option("--clip", f.clip,
                 "clamp the x0 estimate to [-clip, clip] in model units; 0: off (default: 1 for pixel-space image runs, 0 for vector, latent and distilled runs)")
      ->group(g);
  f.o_variance = cmd.add_option("--variance", f.variance, "ddpm: reverse variance, beta or beta-tilde (default)")
                     ->group(g);
  f.o_eta = cmd.add_option("--eta", f.eta, "ddim (default 0), euler-ancestral, dpm++2m-sde (default 1): noise scale")
                ->group(g);
  f.o_final = cmd.add_option("--final-alpha-one", f.final_alpha_one,
                             "ddim: last step to alpha_bar = 1 (true, default) or alpha_bar_0")
                  ->group(g);
  f.o_churn = cmd.add_option("--churn", f.churn, "euler, heun: S_churn (default 0)")->group(g);
  f.o_tmin = cmd.add_option("--s-tmin", f.s_tmin, "euler, heun: churn only for sigma >= s_tmin")->group(g);
  f.o_tmax = cmd.add_option("--s-tmax", f.s_tmax, "euler, heun: churn only for sigma <= s_tmax")->group(g);
  f.o_noise = cmd.add_option("--s-noise", f.s_noise, "euler, heun, euler-ancestral, dpm++2m-sde: noise scale (1)")
                  ->group(g);
  f.o_order = cmd.add_option("--order", f.order, "unipc: order 1, 2 (default) or 3")->group(g);
}

SamplerConfig SamplerFlags::resolve(bool image_run, const TrainConfig* run) const {
  const DistillInfo* distilled = run && run->distill.active() ? &run->distill : nullptr;
  SamplerConfig c;
  c.kind = distilled && !given(o_sampler) ? SamplerKind::Ddim : parse_sampler_kind(sampler);
  c.steps = distilled && !given(o_steps) && timesteps.empty() ? distilled->steps : steps;
  c.spacing = parse_timestep_spacing(spacing);
  c.steps_offset = steps_offset;
  c.sigmas = parse_sigma_schedule(sigmas);
  c.rho = rho;
  c.timesteps = timesteps;
  // Distilled runs: the teacher's clip is inside the targets, and an intermediate target may lie
  // outside [−1, 1] (docs/distill.md).
  c.clip_x0 = clip == -1 ? (image_run && !distilled ? 1.0 : 0.0) : clip;  // other negatives: validate() says why
  if (given(o_variance)) c.variance = parse_ddpm_variance(variance);
  if (given(o_eta)) c.eta = eta;
  if (given(o_final)) c.final_alpha_one = final_alpha_one;
  if (given(o_churn)) c.churn = churn;
  if (given(o_tmin)) c.s_tmin = s_tmin;
  if (given(o_tmax)) c.s_tmax = s_tmax;
  if (given(o_noise)) c.s_noise = s_noise;
  if (given(o_order)) c.order = order;
  quick_sampler(c);
  validate(c);
  if (distilled) {
    const std::string note = distilled_sampler_note(*distilled, c);
    if (!note.empty()) std::fprintf(stderr, "%s\n", note.c_str());
  }
  return c;
}

}  // namespace diffuse::cli
