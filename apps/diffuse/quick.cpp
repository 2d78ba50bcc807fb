// Quick mode: the environment variable DIFFUSE_QUICK (any value but "" and "0") caps the work
// of every command that trains or samples, so that the command blocks of the README and docs
// run in seconds as a test (tests/docs_commands_test.py). Files are written as usual; their
// contents mean nothing. Documented in docs/cli.md#quick-mode.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli.hpp"
#include "diffuse/distill.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

namespace {
constexpr int64_t kQuickTrainSteps = 2;    // optimizer steps (distill: per round)
constexpr int64_t kQuickConvertSteps = 1;  // distill: steps refitting an eps/x0 teacher as v
constexpr int64_t kQuickSamplerSteps = 3;  // grid points of every sampler (also for "all T")
constexpr int64_t kQuickN = 16;            // samples, restorations, images of eval nll
constexpr int64_t kQuickTSamples = 2;      // eval nll: stratified t samples instead of the exact sum
}  // namespace

bool quick_mode() {
  static const bool on = [] {
    const char* v = std::getenv("DIFFUSE_QUICK");
    const bool q = v && *v && std::string(v) != "0";
    if (q)
      std::fprintf(stderr,
                   "quick mode (DIFFUSE_QUICK=%s): at most %lld training steps (distill: per round), no sample grids, %lld sampler "
                   "steps, %lld samples; the results mean nothing\n",
                   v, (long long)kQuickTrainSteps, (long long)kQuickSamplerSteps, (long long)kQuickN);
    return q;
  }();
  return on;
}

void quick_train(TrainConfig& cfg) {
  if (!quick_mode()) return;
  cfg.steps = std::min(cfg.steps, kQuickTrainSteps);
  cfg.sample_every = 0;  // the grids sample with all T DDPM steps
}

void quick_sampler(SamplerConfig& c) {
  if (!quick_mode() || !c.timesteps.empty()) return;
  if (c.steps == 0 || c.steps > kQuickSamplerSteps) c.steps = kQuickSamplerSteps;
}

void quick_distill(DistillConfig& cfg) {
  if (!quick_mode()) return;
  cfg.round_steps = std::min(cfg.round_steps, kQuickTrainSteps);
  cfg.convert_steps = cfg.convert_steps < 0 ? cfg.convert_steps : std::min(cfg.convert_steps, kQuickConvertSteps);
}

int64_t quick_n(int64_t n) { return quick_mode() ? std::min(n, kQuickN) : n; }

int64_t quick_t_samples(int64_t t_samples) {
  if (!quick_mode()) return t_samples;
  return t_samples == 0 ? kQuickTSamples : std::min(t_samples, kQuickTSamples);
}

}  // namespace diffuse::cli
