// The rounds of a progressive distillation (conversion, then halvings), their grids, and the
// sampler a distilled run is made for (distill.hpp).
#include <algorithm>
#include <cmath>

#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {

bool plan_is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// "32, 16, 8, 4, 2, 1": the valid --to-steps for a teacher of `from` steps.
std::string plan_valid_targets(int64_t from) {
  std::vector<std::string> v;
  for (int64_t n = from; n >= 2 && n % 2 == 0;) {
    n /= 2;
    v.push_back(std::to_string(n));
  }
  return v.empty() ? std::string("none: --from-steps must be even") : join(v);
}

}  // namespace

std::vector<GridPoint> distillation_grid(const NoiseSchedule& schedule, int64_t steps) {
  SamplerConfig c;
  c.kind = SamplerKind::Ddim;
  c.steps = steps;
  return sampling_grid(schedule, c);  // trailing spacing, timesteps σ: the `sample` defaults
}

int64_t DistillPlan::rounds() const {
  int64_t k = 0;
  for (int64_t n = from_steps; n > to_steps; n /= 2) ++k;
  return k;
}

int64_t DistillPlan::total_steps() const { return convert_steps + rounds() * round_steps; }

DistillPhase DistillPlan::phase_at(int64_t step) const {
  if (step < 0 || step >= total_steps())
    throw Error("distillation step " + std::to_string(step) + " is outside the plan's 0 … " +
                std::to_string(total_steps() - 1));
  if (step < convert_steps) return {0, 0, convert_steps, from_steps, from_steps};
  const int64_t r = (step - convert_steps) / round_steps;  // 0-based halving
  const int64_t n = from_steps >> r;                       // from_steps = to_steps · 2^rounds: exact
  return {r + 1, convert_steps + r * round_steps, round_steps, n, n / 2};
}

int64_t DistillPlan::steps_after(int64_t done) const {
  return done <= 0 ? from_steps : phase_at(std::min(done, total_steps()) - 1).student_steps;
}

int64_t DistillPlan::rounds_done(int64_t done) const {
  return done <= convert_steps ? 0 : std::min(rounds(), (done - convert_steps) / round_steps);
}

DistillPlan make_distill_plan(int64_t T, int64_t from_steps, int64_t to_steps, int64_t round_steps,
                              int64_t convert_steps) {
  if (from_steps == 0) {
    for (from_steps = 1; from_steps * 2 <= std::min<int64_t>(T, 64);) from_steps *= 2;
    if (from_steps < 2)
      throw Error("the teacher has T = " + std::to_string(T) + ": there is no grid of 2 steps or more to distil",
                  "distillation halves a DDIM grid; the teacher needs T >= 2");
  }
  if (from_steps < 2 || from_steps > T)
    throw Error("--from-steps " + std::to_string(from_steps) + " is outside 2 … T = " + std::to_string(T),
                "the teacher's DDIM grid has at most T points; 0 picks min(64, the largest power of two <= T)");
  if (from_steps % 2 != 0)
    throw Error("--from-steps " + std::to_string(from_steps) + " is odd: its grid cannot be halved",
                "give --to-steps times a power of two, e.g. 64");
  if (to_steps == 0) {  // 4, or the first halving of from_steps below it
    for (to_steps = from_steps; to_steps > 4 && to_steps % 2 == 0;) to_steps /= 2;
    if (to_steps == from_steps) to_steps = from_steps / 2;
  }
  if (!(to_steps >= 1 && to_steps < from_steps && from_steps % to_steps == 0 &&
        plan_is_power_of_two(from_steps / to_steps)))
    throw Error("--to-steps " + std::to_string(to_steps) + " is not --from-steps " + std::to_string(from_steps) +
                    " halved one or more times",
                "valid --to-steps for --from-steps " + std::to_string(from_steps) + ": " +
                    plan_valid_targets(from_steps));
  if (round_steps < 1) throw Error("--round-steps must be >= 1", "optimizer steps per halving, e.g. 1000");
  if (convert_steps < 0)
    throw Error("--convert-steps must be >= 0 (or -1: automatic)", "0 skips the refit of an eps or x0 teacher as v");
  DistillPlan p;
  p.from_steps = from_steps;
  p.to_steps = to_steps;
  p.round_steps = round_steps;
  p.convert_steps = convert_steps;
  return p;
}

SamplerConfig distilled_sampler(const DistillInfo& info) {
  SamplerConfig c;
  c.kind = SamplerKind::Ddim;
  c.steps = info.steps;
  c.clip_x0 = 0.0;
  return c;
}

std::string distilled_sampler_note(const DistillInfo& info, const SamplerConfig& used) {
  const bool own = used.kind == SamplerKind::Ddim && used.timesteps.empty() &&
                   used.sigmas == SigmaSchedule::Timesteps && used.spacing == TimestepSpacing::Trailing &&
                   used.steps == info.steps && used.eta.value_or(0.0) == 0.0 && used.final_alpha_one.value_or(true);
  if (own) return "";
  const int64_t S = !used.timesteps.empty() ? int64_t(used.timesteps.size()) : used.steps;  // 0: all T
  std::string what = to_string(used.kind) + " with " +
                     (S == 0 ? std::string("all timesteps") : std::to_string(S) + (S == 1 ? " step" : " steps"));
  if (used.kind == SamplerKind::Ddim && (S == 0 || S > info.steps))
    what += " (more than the " + std::to_string(info.steps) + " it was distilled for)";
  return "note: this run was distilled for ddim with " + std::to_string(info.steps) +
         " steps (trailing spacing, eta 0); " + what +
         " still samples the model, but not the map it was trained to reproduce";
}

}  // namespace diffuse
