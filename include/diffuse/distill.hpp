// diffuse — progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast
// Sampling of Diffusion Models", Algorithm 2): a student learns to do in ONE deterministic DDIM
// step what the teacher does in TWO, on the sampling grid of DDIM with N steps; the student then
// becomes the teacher and N halves, round after round, until N = to_steps. docs/distill.md.
//
// Notation (the project's ᾱ): at a grid point with ᾱ, α = √ᾱ and σ = √(1 − ᾱ) (not the
// GridPoint's VE σ = √((1 − ᾱ)/ᾱ)); z_t = α_t x + σ_t ε. A DDIM step (η = 0) from t to s is
//   z_s = α_s x̂₀(z_t) + σ_s ε̂(z_t)
// (src/sampler/ddim.cpp). For a student point t, the teacher point t' halfway and the next
// student point t'' (PD eq. 8–9):
//   z_t'  = DDIM_teacher(z_t: t → t'),   z_t'' = DDIM_teacher(z_t': t' → t'')
//   x̃ = (z_t'' − (σ_t''/σ_t) z_t) / (α_t'' − (σ_t''/σ_t) α_t)
// the x₀ for which one DDIM step t → t'' lands on z_t''. At the grid's end (t'' = the point σ = 0,
// ᾱ = 1, where DDIM's final_alpha_one step goes) σ_t'' = 0 and x̃ = z_t''.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"

namespace diffuse {

// ---- the target (src/distill/target.cpp) ------------------------------------------------

// The denoiser at one grid point per row of x (B, ...): points.size() == B, none the end point.
// t is passed as int64 when every row's t is whole, else as float64 (as predict_at does).
Prediction predict_at_rows(const Denoiser& denoiser, const torch::Tensor& x, const std::vector<GridPoint>& points,
                           const Conditioning& cond = {});

// x̃ of the header comment for a batch z_t (B, ...) at grid point t, with the teacher's DDIM
// steps t → mid → next. clip_x0 > 0 clamps the teacher's x̂₀ to [−clip_x0, clip_x0] in both
// steps, ε̂ kept as predicted (what `sample --clip` does to DDIM). Computed in z_t's dtype with
// float64 coefficients; call it under torch::NoGradGuard when the teacher is a network.
torch::Tensor distillation_target(const Denoiser& teacher, const torch::Tensor& z_t, const GridPoint& t,
                                  const GridPoint& mid, const GridPoint& next, const Conditioning& cond = {},
                                  double clip_x0 = 0.0);
// The same with one (t, mid, next) per row (each vector of size B): a training batch draws the
// student's grid point per row.
torch::Tensor distillation_target(const Denoiser& teacher, const torch::Tensor& z_t, const std::vector<GridPoint>& t,
                                  const std::vector<GridPoint>& mid, const std::vector<GridPoint>& next,
                                  const Conditioning& cond = {}, double clip_x0 = 0.0);

// The x̃ a student learns at each row (B, ...): with `mid` and `next` empty (the conversion to
// v-prediction) the teacher's own x̂₀ at `t`, else distillation_target's two-step x̃. clip_x0 > 0
// clamps the result to [−clip_x0, clip_x0], as the teacher's sampler clamps its x̂₀: near ᾱ = 0
// both are ill-conditioned (an ε teacher's x̂₀ = (z − σ ε̂)/α divides ε̂'s error by α; x̃ divides
// by α'' − r α, ≈ 0.003 at the first point of 64 for T = 250), and unclamped such rows swamp the
// loss (an ε teacher's 4-step student drew noise). Call under torch::NoGradGuard.
torch::Tensor student_target(const Denoiser& teacher, const torch::Tensor& z_t, const std::vector<GridPoint>& t,
                             const std::vector<GridPoint>& mid, const std::vector<GridPoint>& next,
                             const Conditioning& cond = {}, double clip_x0 = 0.0);

// ---- the rounds (src/distill/plan.cpp) --------------------------------------------------

// The grid every round works on: DDIM with `steps` points, trailing spacing (the default of
// `sample`), then the end point — sampling_grid(schedule, {ddim, steps}).
std::vector<GridPoint> distillation_grid(const NoiseSchedule& schedule, int64_t steps);

// One stretch of optimizer steps with one teacher and one grid.
struct DistillPhase {
  int64_t round = 0;          // 0: the conversion to v-prediction; 1 … rounds(): the halvings
  int64_t first_step = 0;     // the global (0-based) optimizer step it starts at
  int64_t length = 0;         // its optimizer steps
  int64_t teacher_steps = 0;  // N: grid points of the teacher's DDIM
  int64_t student_steps = 0;  // grid points the student learns: N/2 (the conversion: N)
};

// Conversion (if convert_steps > 0), then log2(from/to) rounds of round_steps each.
struct DistillPlan {
  int64_t from_steps = 64;    // N₀
  int64_t to_steps = 4;       // from_steps / 2^rounds
  int64_t round_steps = 1000;
  int64_t convert_steps = 0;

  int64_t rounds() const;
  int64_t total_steps() const;                  // convert_steps + rounds() · round_steps
  DistillPhase phase_at(int64_t step) const;    // the phase holding 0-based step `step` < total_steps()
  int64_t steps_after(int64_t done) const;      // student grid points after `done` optimizer steps (0: N₀)
  int64_t rounds_done(int64_t done) const;      // halvings finished after `done` optimizer steps
};
// Checks and resolves a plan for a schedule of T steps: from_steps 0 → min(64, the largest
// power of two <= T); to_steps must be from_steps / 2^k with k >= 1 (the error lists the valid
// values), 0 → 4 (or the first halving of from_steps below 4 when 4 is not one). Throws diffuse::Error naming the flag (--from-steps, --to-steps, --round-steps,
// --convert-steps) and the valid choices.
DistillPlan make_distill_plan(int64_t T, int64_t from_steps, int64_t to_steps, int64_t round_steps,
                              int64_t convert_steps);

// The sampler a distilled run was made for: DDIM (η = 0), `info.steps` trailing grid points, no
// x̂₀ clip (the teacher's clip is inside the targets; an intermediate target may lie outside it).
SamplerConfig distilled_sampler(const DistillInfo& info);
// "" when `used` is that sampler; else a one-line note for the user that the run was distilled
// for it (the other sampler still runs the model, but not the map it was trained to reproduce).
std::string distilled_sampler_note(const DistillInfo& info, const SamplerConfig& used);

// ---- the distillation run (src/distill/distill.cpp) -------------------------------------

struct DistillConfig {
  std::string teacher;          // the teacher: a diffusion run folder (EMA weights); resume: unused
  int64_t from_steps = 0;       // N₀ (0: min(64, the largest power of two <= T))
  int64_t to_steps = 0;         // the last student's grid points, from_steps / 2^k (0: 4); resume:
                                // 0 keeps the run's, a smaller one distils further
  int64_t round_steps = 1000;   // optimizer steps per halving
  int64_t convert_steps = -1;   // steps first refitting an eps or x0 teacher as v-prediction
                                // (−1: max(1, round_steps / 4); v teachers: always 0)
  int64_t batch = 0;            // 0: the teacher's batch
  double lr = 0;                // peak learning rate of every round (0: the teacher's)
  int64_t warmup = 10;          // linear warm-up steps at the start of every round
  double ema_decay = 0.99;      // EMA of the student within a round (restarted every round)
  double guidance = 1.0;        // class-conditional teachers: classifier-free guidance w of the targets
  double clip_x0 = -1;          // the teacher's x̂₀ clamp (−1: 1 for pixel-space images, else 0)
  uint64_t seed = 0;            // every step's draws: generator mix_seed(seed, step)
  int64_t threads = 0;          // intra-op threads (0: as `train`)
  std::string device = "auto";
  int64_t log_every = 100;      // steps between progress lines and log.csv rows
  int64_t checkpoint_every = 500;
};

// Distils cfg.teacher into the run folder out_dir (config.json with a "distill" section,
// checkpoint.safetensors with model./ema. (the student), teacher. (the current round's teacher),
// optim., norm. and autoencoder. (latent runs), log.csv, loss.png). resume: continue out_dir
// from its checkpoint (its config; only to_steps, threads, device, log_every and
// checkpoint_every are taken from cfg). hooks.stop / stop_after save and return Stopped;
// hooks.dist must be null (one process). Every draw of step s comes from mix_seed(seed, s), so a
// resumed run gives the weights of an uninterrupted one.
TrainResult distill(DistillConfig cfg, const std::string& out_dir, bool resume, const TrainHooks& hooks = {});

}  // namespace diffuse
