#include "cli.hpp"
#include "diffuse/error.hpp"

namespace diffuse::cli {

void add_schedule_flags(CLI::App& cmd, ScheduleFlags& f) {
  auto& c = f.cfg;
  auto add = [&](CLI::Option* o) { f.options.push_back(o->capture_default_str()->group("Schedule")); };
  add(cmd.add_option("--schedule", f.kind, "noise schedule: " + join(schedule_kind_names())));
  add(cmd.add_option("--T", c.T, "number of diffusion steps"));
  add(cmd.add_option("--beta-start", c.beta_start, "linear/quadratic: first beta"));
  add(cmd.add_option("--beta-end", c.beta_end, "linear/quadratic: last beta"));
  add(cmd.add_option("--cosine-s", c.cosine_s, "cosine: offset s"));
  add(cmd.add_option("--max-beta", c.max_beta, "cosine/sin2: cap on beta"));
  add(cmd.add_option("--beta-max", c.beta_max, "sigmoid: beta_max (seed 002)"));
  add(cmd.add_option("--sigmoid-start", c.sigmoid_start, "sigmoid: f(0)"));
  add(cmd.add_option("--sigmoid-end", c.sigmoid_end, "sigmoid: f(T-1)"));
  add(cmd.add_option("--betas-file", c.betas_file, "custom: file of beta values"));
}

bool ScheduleFlags::any_given() const {
  for (auto* o : options)
    if (given(o)) return true;
  return false;
}

ScheduleConfig ScheduleFlags::resolve(ScheduleConfig b) const {
  // options[] is in the order added above.
  if (given(options[0])) b.kind = parse_schedule_kind(kind);
  if (given(options[1])) b.T = cfg.T;
  if (given(options[2])) b.beta_start = cfg.beta_start;
  if (given(options[3])) b.beta_end = cfg.beta_end;
  if (given(options[4])) b.cosine_s = cfg.cosine_s;
  if (given(options[5])) b.max_beta = cfg.max_beta;
  if (given(options[6])) b.beta_max = cfg.beta_max;
  if (given(options[7])) b.sigmoid_start = cfg.sigmoid_start;
  if (given(options[8])) b.sigmoid_end = cfg.sigmoid_end;
  if (given(options[9])) b.betas_file = cfg.betas_file;
  if (!b.betas_file.empty() && !given(options[0])) b.kind = ScheduleKind::Custom;
  return b;
}

}  // namespace diffuse::cli
