// Progressive distillation (include/diffuse/distill.hpp). On the exact Gaussian denoiser: one
// DDIM step to the target is the teacher's two steps, and students defined recursively from the
// target (no training) reproduce the teacher's DDIM map at every level — for many steps the
// probability-flow ODE's map, in closed form. Then the plan of rounds, the config section, and
// tiny end-to-end distillations: exact resume across and inside rounds, distilling further, the
// errors, and a class-conditional image teacher with guidance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"
#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"
#include "test_util.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {

// N(μ, Σ) in 8 dimensions, Σ = AAᵀ + 0.05 I: every eigenvalue >= 0.05.
struct PdGauss {
  torch::Tensor mean, cov;
};
PdGauss pd_gauss8() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  auto A = torch::randn({8, 8}, g, torch::kFloat64) * 0.5;
  return {torch::linspace(-1, 1, 8, torch::kFloat64), torch::matmul(A, A.t()) + 0.05 * torch::eye(8, torch::kFloat64)};
}
// Linear β with the total noise of T = 1000 (β scaled by 1000/T).
NoiseSchedule pd_schedule(int64_t T) {
  ScheduleConfig c;
  c.T = T;
  c.beta_start = 1e-4 * 1000.0 / double(T);
  c.beta_end = 0.02 * 1000.0 / double(T);
  return make_schedule(c);
}

// The student of level k + 1 without training: its x̂₀ at a point of the grid of inner_steps/2
// steps is the distillation target of the inner denoiser (level k) on the grid of inner_steps.
class PdStudent : public Denoiser {
 public:
  PdStudent(const Denoiser& inner, int64_t inner_steps)
      : inner_(inner), grid_(distillation_grid(inner.schedule(), inner_steps)) {}
  Prediction predict(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& cond) const override {
    const double t0 = t[0].item<double>();  // the samplers call every row at one point
    for (size_t j = 0; 2 * j + 2 < grid_.size(); ++j)
      if (grid_[2 * j].t == t0) {
        auto x0 = distillation_target(inner_, x, grid_[2 * j], grid_[2 * j + 1], grid_[2 * j + 2], cond);
        const double ab = grid_[2 * j].alpha_bar;
        return {(x - std::sqrt(ab) * x0) / std::sqrt(1.0 - ab), x0};
      }
    ADD_FAILURE() << "t = " << t0 << " is not a point of the student's grid";
    return {x, x};
  }
  const NoiseSchedule& schedule() const override { return inner_.schedule(); }

 private:
  const Denoiser& inner_;
  std::vector<GridPoint> grid_;
};

SamplerConfig pd_ddim(int64_t steps, std::vector<int64_t> timesteps = {}) {
  SamplerConfig c;
  c.kind = SamplerKind::Ddim;
  c.steps = timesteps.empty() ? steps : 0;
  c.timesteps = std::move(timesteps);
  return c;
}

// The DDIM states after each step (the last one is the sample).
std::vector<torch::Tensor> pd_states(const Denoiser& d, const torch::Tensor& x_T, const SamplerConfig& c) {
  NoiseStream noise(0, 0, x_T.size(0));  // η = 0: never drawn
  std::vector<torch::Tensor> states;
  sample(d, x_T, c, noise, [&](const StepInfo& s) { states.push_back(s.x.clone()); });
  return states;
}

double pd_max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TrainHooks pd_quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

// A tiny ε-prediction teacher on a 2-D toy (as train_test's runs).
std::string pd_teacher(const std::string& name) {
  const auto dir = test::fresh_dir("diffuse_pd_" + name);
  TrainConfig c;
  c.data = "toy:8gaussians";
  c.schedule.T = 100;
  c.model.hidden = 32;
  c.model.blocks = 1;
  c.model.time_dim = 16;
  c.batch = 64;
  c.steps = 30;
  c.warmup = 5;
  c.log_every = 10;
  c.checkpoint_every = 1000;
  c.threads = 1;
  train(c, dir, false, pd_quiet());
  return dir;
}

DistillConfig pd_config(const std::string& teacher) {
  DistillConfig d;
  d.teacher = teacher;
  d.from_steps = 16;
  d.to_steps = 4;
  d.round_steps = 6;
  d.convert_steps = 3;  // phases: refit [0, 3), round 1 (16 → 8) [3, 9), round 2 (8 → 4) [9, 15)
  d.batch = 32;
  d.log_every = 2;
  d.checkpoint_every = 1000;
  d.threads = 1;
  d.device = "cpu";
  return d;
}

}  // namespace

TEST(DistillTarget, OneDdimStepToTheTargetIsTwoTeacherSteps) {
  auto g = pd_gauss8();
  GaussianDenoiser teacher(g.mean, g.cov, pd_schedule(1000));
  const auto grid = distillation_grid(teacher.schedule(), 8);  // 8 points, then the end
  ASSERT_EQ(grid.size(), 9u);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto z = 2.0 * torch::randn({16, 8}, gen, torch::kFloat64);  // any state, not only the teacher's path
  PdStudent student(teacher, 8);
  for (size_t j = 0; j < 4; ++j) {
    const GridPoint &t = grid[2 * j], &mid = grid[2 * j + 1], &next = grid[2 * j + 2];
    const bool last = next.t < 0;  // the step into ᾱ = 1: the target is the teacher's z_t'' itself
    // Both sides through the DDIM sampler: the student's one step t → t'' (its x̂₀ is the
    // target) against the teacher's steps t → t' → t''.
    std::vector<int64_t> one = {int64_t(t.t)}, two = {int64_t(t.t), int64_t(mid.t)};
    if (!last) {
      one.push_back(int64_t(next.t));
      two.push_back(int64_t(next.t));
    }
    auto student_next = pd_states(student, z, pd_ddim(0, one))[0];
    auto teacher_next = pd_states(teacher, z, pd_ddim(0, two))[1];
    EXPECT_LT(pd_max_diff(student_next, teacher_next), 1e-10) << "student point " << j;
    if (last) EXPECT_LT(pd_max_diff(distillation_target(teacher, z, t, mid, next), teacher_next), 1e-12);
  }
  // One (t, mid, next) per row gives each row what its own point gives.
  std::vector<GridPoint> ts, mids, nexts;
  for (int64_t i = 0; i < 16; ++i) {
    ts.push_back(grid[2 * (i % 4)]);
    mids.push_back(grid[2 * (i % 4) + 1]);
    nexts.push_back(grid[2 * (i % 4) + 2]);
  }
  auto rows = distillation_target(teacher, z, ts, mids, nexts);
  for (int64_t i = 0; i < 16; ++i) {
    auto one = distillation_target(teacher, z.slice(0, i, i + 1), ts[i], mids[i], nexts[i]);
    EXPECT_LT(pd_max_diff(rows.slice(0, i, i + 1), one), 1e-12) << "row " << i;
  }
  // The points must run from noise to data.
  EXPECT_THROW(distillation_target(teacher, z, grid[2], grid[1], grid[3]), Error);
  EXPECT_THROW(predict_at_rows(teacher, z, std::vector<GridPoint>(16, grid.back())), Error);  // the end point
}

TEST(DistillTarget, StudentTargetIsTheRefitOrHalvingTargetClampedToTheClip) {
  // Data well outside [−1, 1] (mean ±3): the exact denoiser's x̂₀ and x̃ leave the clip range, so
  // clip 1 must clamp them (an ε teacher's student trained on the unclamped targets drew noise).
  auto g = pd_gauss8();
  GaussianDenoiser teacher(3.0 * g.mean, g.cov, pd_schedule(250));
  const auto grid = distillation_grid(teacher.schedule(), 16);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto z = torch::randn({12, 8}, gen, torch::kFloat64);
  std::vector<GridPoint> ts, mids, nexts;
  for (int64_t i = 0; i < 12; ++i) {
    ts.push_back(grid[2 * size_t(i % 8)]);
    mids.push_back(grid[2 * size_t(i % 8) + 1]);
    nexts.push_back(grid[2 * size_t(i % 8) + 2]);
  }
  const std::vector<GridPoint> none;
  // Refit (mid, next empty): the teacher's x̂₀; a halving: PD's x̃. clip 0 leaves both alone.
  auto x0 = predict_at_rows(teacher, z, ts).x0;
  EXPECT_LT(pd_max_diff(student_target(teacher, z, ts, none, none), x0), 1e-12);
  auto xt = distillation_target(teacher, z, ts, mids, nexts, {}, 1.0);
  EXPECT_LT(pd_max_diff(student_target(teacher, z, ts, mids, nexts, {}, 0.0), distillation_target(teacher, z, ts, mids, nexts)), 1e-12);
  ASSERT_GT(x0.abs().max().item<double>(), 1.5);
  ASSERT_GT(xt.abs().max().item<double>(), 1.5);
  // clip 1: clamped after choosing, so inside [−1, 1] and equal to the clamp of each.
  auto r1 = student_target(teacher, z, ts, none, none, {}, 1.0);
  auto h1 = student_target(teacher, z, ts, mids, nexts, {}, 1.0);
  EXPECT_LE(r1.abs().max().item<double>(), 1.0);
  EXPECT_LE(h1.abs().max().item<double>(), 1.0);
  EXPECT_LT(pd_max_diff(r1, x0.clamp(-1, 1)), 1e-12);
  EXPECT_LT(pd_max_diff(h1, xt.clamp(-1, 1)), 1e-12);
  EXPECT_THROW(student_target(teacher, z, ts, mids, none), Error);
}

TEST(DistillTarget, DistilledStudentsOfTheExactDenoiserReproduceTheTeachersOdeMap) {
  // T = N = 1024: the teacher's grid is every timestep. Level k (no training: PdStudent over
  // level k − 1) samples with 1024/2^k DDIM steps, down to one.
  const int64_t N = 1024;
  auto g = pd_gauss8();
  GaussianDenoiser teacher(g.mean, g.cov, pd_schedule(N));
  auto x_T = NoiseStream(5, 0, 32).randn({8}, torch::dtype(torch::kFloat64));
  const auto teacher_map = pd_states(teacher, x_T, pd_ddim(N)).back();
  std::vector<std::unique_ptr<PdStudent>> levels;
  for (int64_t k = 1, n = N; n > 1; ++k, n /= 2) {
    const Denoiser& inner = levels.empty() ? static_cast<const Denoiser&>(teacher) : *levels.back();
    levels.push_back(std::make_unique<PdStudent>(inner, n));
    const auto states = pd_states(*levels.back(), x_T, pd_ddim(n / 2));
    ASSERT_EQ(int64_t(states.size()), n / 2);
    // Exact algebra in float64: the targets are only as well conditioned as α'' − (σ''/σ)α,
    // ~1e−4 at the top of the grid, so x̃ carries ~1e−12, but the states it leads to ~1e−15.
    EXPECT_LT(pd_max_diff(states.back(), teacher_map), 1e-8) << "level " << k << " (" << n / 2 << " steps)";
  }
  // The exact probability-flow ODE map, per eigen-direction λ of Σ: in the VE state
  // x_σ = x_t/√ᾱ, y = Uᵀ(x_σ − μ) follows dy/dσ = y σ/(λ + σ²), so y(0) = y(σ_top) √(λ/(λ + σ_top²)).
  const auto eig = torch::linalg::eigh(g.cov, "L");
  const torch::Tensor lam = std::get<0>(eig), U = std::get<1>(eig);
  const GridPoint top = distillation_grid(teacher.schedule(), N)[0];
  auto exact_map = [&](const torch::Tensor& x) {
    auto y = torch::matmul(x / std::sqrt(top.alpha_bar) - g.mean, U);
    return g.mean + torch::matmul(y * (lam / (lam + top.sigma * top.sigma)).sqrt(), U.t());
  };
  auto rel_error = [&](const torch::Tensor& x) {  // per sample ‖x − x_exact‖ / ‖x_exact − μ‖, mean
    auto e = exact_map(x_T);
    return ((x - e).pow(2).sum(1).sqrt() / (e - g.mean).pow(2).sum(1).sqrt()).mean().item<double>();
  };
  // DDIM is the first-order exponential integrator of that ODE: a step σ → σ' multiplies y by
  // (λ + σσ')/(λ + σ²) where the flow multiplies by √((λ + σ'²)/(λ + σ²)). Multiplied over this
  // grid the relative gap is 6.5e−3 at λ = 0.05 (Σ's smallest possible eigenvalue), 1.8e−3 at
  // λ = 1 and falls with λ, so every sample is within 1e−2 relative; with 64 steps the gap is
  // 14–16× larger (2.4e−2 … 9.3e−2): first order. (Computed off-line from these products.)
  const double e1024 = rel_error(teacher_map);
  EXPECT_LT(e1024, 1e-2);
  EXPECT_LT(rel_error(pd_states(*levels[3], x_T, pd_ddim(N / 16)).back()), 1e-2);  // 64 student steps: still N's map
  const double e64 = rel_error(pd_states(teacher, x_T, pd_ddim(64)).back());
  EXPECT_GT(e64, 8 * e1024) << e64 << " vs " << e1024;
}

TEST(DistillPlan, RoundsPhasesAndErrors) {
  const DistillPlan p = make_distill_plan(1000, 0, 0, 100, 25);
  EXPECT_EQ(p.from_steps, 64);
  EXPECT_EQ(p.to_steps, 4);
  EXPECT_EQ(p.rounds(), 4);
  EXPECT_EQ(p.total_steps(), 425);
  auto ph = p.phase_at(24);
  EXPECT_EQ(ph.round, 0);
  EXPECT_EQ(ph.student_steps, 64);
  ph = p.phase_at(25);
  EXPECT_EQ(ph.round, 1);
  EXPECT_EQ(ph.first_step, 25);
  EXPECT_EQ(ph.teacher_steps, 64);
  EXPECT_EQ(ph.student_steps, 32);
  ph = p.phase_at(424);
  EXPECT_EQ(ph.round, 4);
  EXPECT_EQ(ph.first_step, 325);
  EXPECT_EQ(ph.teacher_steps, 8);
  EXPECT_EQ(ph.student_steps, 4);
  EXPECT_THROW(p.phase_at(425), Error);
  for (auto [done, steps, rounds] : std::vector<std::array<int64_t, 3>>{
           {0, 64, 0}, {25, 64, 0}, {26, 32, 0}, {125, 32, 1}, {126, 16, 1}, {425, 4, 4}}) {
    EXPECT_EQ(p.steps_after(done), steps) << done;
    EXPECT_EQ(p.rounds_done(done), rounds) << done;
  }
  EXPECT_EQ(make_distill_plan(250, 0, 0, 10, 0).from_steps, 64);
  EXPECT_EQ(make_distill_plan(40, 0, 0, 10, 0).from_steps, 32);
  EXPECT_EQ(make_distill_plan(1000, 48, 0, 10, 0).to_steps, 3);
  EXPECT_EQ(make_distill_plan(1000, 4, 0, 10, 0).to_steps, 2);
  const auto msg = test::error_text([] { make_distill_plan(1000, 64, 5, 10, 0); });
  EXPECT_NE(msg.find("--to-steps 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid --to-steps for --from-steps 64: 32, 16, 8, 4, 2, 1"), std::string::npos) << msg;
  EXPECT_NE(test::error_text([] { make_distill_plan(100, 128, 4, 10, 0); }).find("outside 2 … T = 100"), std::string::npos);
  EXPECT_NE(test::error_text([] { make_distill_plan(100, 33, 0, 10, 0); }).find("odd"), std::string::npos);
  EXPECT_THROW(make_distill_plan(100, 64, 4, 0, 0), Error);
  // Every round's student grid is every other point of its teacher's (what `sample --steps` walks).
  for (int64_t T : {100, 250, 1000}) {
    auto s = pd_schedule(T);
    for (int64_t n = 64; n >= 2; n /= 2) {
      auto big = distillation_grid(s, n), half = distillation_grid(s, n / 2);
      for (size_t j = 0; j < half.size(); ++j) EXPECT_EQ(half[j].t, big[2 * j].t) << T << " " << n << " " << j;
    }
  }
  // The sampler a distilled run was made for, and the note for any other.
  DistillInfo info;
  info.teacher = "t";
  info.steps = 4;
  const SamplerConfig own = distilled_sampler(info);
  EXPECT_EQ(own.kind, SamplerKind::Ddim);
  EXPECT_EQ(own.steps, 4);
  EXPECT_EQ(own.clip_x0, 0.0);
  EXPECT_EQ(distilled_sampler_note(info, own), "");
  SamplerConfig more = own;
  more.steps = 8;
  EXPECT_NE(distilled_sampler_note(info, more).find("more than the 4"), std::string::npos);
  SamplerConfig other = own;
  other.kind = SamplerKind::DpmPp2m;
  EXPECT_NE(distilled_sampler_note(info, other).find("dpm++2m with 4 steps"), std::string::npos);
}

TEST(DistillConfigSection, JsonRoundTripAndTrainRefusesIt) {
  TrainConfig c;
  EXPECT_EQ(train_config_to_json(c).find("\"distill\""), std::string::npos);  // only distilled runs have it
  c.prediction = PredictionType::V;
  c.distill.teacher = "runs/a";
  c.distill.teacher_prediction = PredictionType::Sample;
  c.distill.teacher_steps = 64;
  c.distill.target_steps = 4;
  c.distill.steps = 16;
  c.distill.guidance = 2.5;
  c.distill.clip_x0 = 1;
  c.distill.convert_steps = 250;
  c.distill.round_steps = 1000;
  c.distill.rounds_done = 2;
  const auto json = train_config_to_json(c);
  EXPECT_NE(json.find("\"distill\""), std::string::npos);
  auto back = train_config_from_json(json);
  EXPECT_EQ(train_config_to_json(back), json);
  EXPECT_EQ(back.distill.teacher, "runs/a");
  EXPECT_EQ(back.distill.teacher_prediction, PredictionType::Sample);
  EXPECT_EQ(back.distill.steps, 16);
  EXPECT_EQ(back.distill.guidance, 2.5);
  EXPECT_EQ(back.distill.rounds_done, 2);
  validate(back);
  auto msg = test::error_text([] { train_config_from_json(R"({"distill": {"teacher": "a", "stepz": 4}})"); });
  EXPECT_NE(msg.find("unknown key 'stepz' in 'distill'"), std::string::npos) << msg;
  TrainConfig eps = back;
  eps.prediction = PredictionType::Epsilon;
  EXPECT_NE(test::error_text([&] { validate(eps); }).find("prediction v"), std::string::npos);
  // diffuse train does not continue a distillation.
  msg = test::error_text([&] { train(back, test::fresh_dir("diffuse_pd_refuse"), false, pd_quiet()); });
  EXPECT_NE(msg.find("diffuse distill --out"), std::string::npos) << msg;
}

TEST(DistillRun, ResumesExactlyInsideAndBetweenRoundsThenSamples) {
  const auto teacher = pd_teacher("teacher");
  const auto straight = test::fresh_dir("diffuse_pd_straight"), resumed = test::fresh_dir("diffuse_pd_resumed");
  const DistillConfig dc = pd_config(teacher);
  auto r = distill(dc, straight, false, pd_quiet());
  EXPECT_EQ(r.status, TrainStatus::Finished);
  EXPECT_EQ(r.step, 15);
  EXPECT_TRUE(std::isfinite(r.last_loss));
  // Stopped inside round 1 (step 7), then at the end of round 1 (step 9), then to the end.
  TrainHooks stop = pd_quiet();
  stop.stop_after = [](int64_t step) { return step == 7; };
  EXPECT_EQ(distill(dc, resumed, false, stop).step, 7);
  DistillConfig again = dc;
  again.to_steps = 0;  // resume: the run's
  stop.stop_after = [](int64_t step) { return step == 9; };
  auto r9 = distill(again, resumed, true, stop);
  EXPECT_EQ(r9.status, TrainStatus::Stopped);
  EXPECT_EQ(r9.step, 9);
  EXPECT_EQ(load_run(resumed).config.distill.steps, 8);  // round 1 done: 8 steps
  EXPECT_EQ(distill(again, resumed, true, pd_quiet()).status, TrainStatus::Finished);
  auto fa = load_safetensors(checkpoint_path(straight)), fb = load_safetensors(checkpoint_path(resumed));
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (const auto& [k, v] : fa.tensors) {
    ASSERT_TRUE(fb.tensors.count(k)) << k;
    EXPECT_TRUE(torch::equal(v, fb.tensors.at(k))) << k;
  }
  for (const char* prefix : {"model.", "ema.", "teacher.", "optim.", "norm."}) {
    bool found = false;
    for (const auto& kv : fa.tensors) found = found || kv.first.rfind(prefix, 0) == 0;
    EXPECT_TRUE(found) << prefix;
  }
  // Rows every 2 steps and at each phase's end (3, 9); the loss of a row straddling an
  // interruption averages only the steps after it, as in `train`.
  EXPECT_EQ(test::logged_losses(straight).size(), 10u);
  EXPECT_EQ(test::logged_losses(resumed).size(), 10u);

  // The run folder is a run: v-prediction, its distill section, and DDIM on 4 steps samples it.
  auto run = load_run(straight);
  EXPECT_EQ(run.step, 15);
  EXPECT_EQ(run.config.prediction, PredictionType::V);
  EXPECT_EQ(run.config.loss.weighting, LossWeighting::TruncatedSnr);
  const DistillInfo& info = run.config.distill;
  EXPECT_EQ(info.teacher, teacher);
  EXPECT_EQ(info.teacher_prediction, PredictionType::Epsilon);
  EXPECT_EQ(info.teacher_steps, 16);
  EXPECT_EQ(info.target_steps, 4);
  EXPECT_EQ(info.steps, 4);
  EXPECT_EQ(info.rounds_done, 2);
  EXPECT_EQ(info.convert_steps, 3);
  EXPECT_EQ(info.clip_x0, 0.0);  // vectors: no clip
  const auto on_disk = train_config_from_json(test::read_text(straight + "/config.json"));
  EXPECT_EQ(train_config_to_json(on_disk), train_config_to_json(run.config));
  NoiseStream noise(0, 0, 64);
  auto x = sample(*run.denoiser, NoiseStream(1, 0, 64).randn({2}), distilled_sampler(info), noise);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{64, 2}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  for (const char* f : {"config.json", "checkpoint.safetensors", "log.csv", "loss.png"})
    EXPECT_TRUE(fs::exists(straight + "/" + f)) << f;

  // Distilling further: --to-steps 2 on resume adds a round.
  DistillConfig further = again;
  further.to_steps = 2;
  EXPECT_EQ(distill(further, straight, true, pd_quiet()).step, 21);
  EXPECT_EQ(load_run(straight).config.distill.steps, 2);
  auto msg = test::error_text([&] { distill(again, straight, true, pd_quiet()); });
  EXPECT_NE(msg.find("distilled to 2 steps already"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--to-steps 1"), std::string::npos) << msg;

  // Errors: a distilled teacher, guidance without classes, an existing run, a bad --to-steps.
  DistillConfig of_distilled = dc;
  of_distilled.teacher = straight;
  msg = test::error_text([&] { distill(of_distilled, test::fresh_dir("diffuse_pd_x1"), false, pd_quiet()); });
  EXPECT_NE(msg.find("itself a distilled run"), std::string::npos) << msg;
  DistillConfig guided = dc;
  guided.guidance = 2;
  msg = test::error_text([&] { distill(guided, test::fresh_dir("diffuse_pd_x2"), false, pd_quiet()); });
  EXPECT_NE(msg.find("--guidance applies to class-conditional teachers"), std::string::npos) << msg;
  msg = test::error_text([&] { distill(dc, straight, false, pd_quiet()); });
  EXPECT_NE(msg.find("already holds a run"), std::string::npos) << msg;
  DistillConfig bad = dc;
  bad.to_steps = 3;
  msg = test::error_text([&] { distill(bad, test::fresh_dir("diffuse_pd_x3"), false, pd_quiet()); });
  EXPECT_NE(msg.find("valid --to-steps for --from-steps 16: 8, 4, 2, 1"), std::string::npos) << msg;
}

TEST(DistillRun, ClassConditionalImageTeacherWithGuidance) {
  const auto teacher = test::fresh_dir("diffuse_pd_image_teacher");
  TrainConfig c;
  c.data = "fashion-mnist:test";
  c.class_conditional = true;
  c.schedule.T = 20;
  c.unet.base_channels = 8;
  c.unet.channel_mult = {1, 2};
  c.unet.blocks_per_level = 1;
  c.unet.attention_resolutions = {};
  c.unet.head_channels = 8;
  c.unet.groups = 4;
  c.unet.dropout = 0.0;
  c.batch = 8;
  c.steps = 4;
  c.log_every = 2;
  c.checkpoint_every = 1000;
  c.threads = 1;
  train(c, teacher, false, pd_quiet());
  DistillConfig d;
  d.teacher = teacher;
  d.from_steps = 8;
  d.to_steps = 2;
  d.round_steps = 2;
  d.convert_steps = 1;
  d.guidance = 2;
  d.log_every = 1;
  d.threads = 1;
  d.device = "cpu";
  const auto out = test::fresh_dir("diffuse_pd_image");
  EXPECT_EQ(distill(d, out, false, pd_quiet()).step, 5);
  auto run = load_run(out);
  EXPECT_TRUE(run.config.class_conditional);
  EXPECT_EQ(run.config.unet.num_classes, 10);
  EXPECT_EQ(run.class_names.size(), 10u);
  EXPECT_EQ(run.config.distill.guidance, 2.0);
  EXPECT_EQ(run.config.distill.clip_x0, 1.0);  // pixel images: the teacher's x̂₀ clamped as `sample` does
  EXPECT_EQ(run.config.distill.steps, 2);
  EXPECT_EQ(run.config.batch, 8);  // the teacher's
  Conditioning cond{torch::tensor({0, 3, 10}, torch::kLong)};  // 10: the null class (unconditional)
  NoiseStream noise(0, 0, 3);
  auto x = sample(*run.denoiser, NoiseStream(2, 0, 3).randn({1, 28, 28}), distilled_sampler(run.config.distill),
                  noise, {}, cond);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
}
