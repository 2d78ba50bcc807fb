// diffuse distill: progressive distillation of a diffusion run (distill.hpp, docs/distill.md).
//
// The loop is the Trainer's (trainer.cpp) — AdamW, gradient clipping, EMA, the progress line,
// log.csv, atomic checkpoints, Ctrl-C, the NaN stop, every draw of step s from mix_seed(seed, s)
// — with PD's batch loss and rounds: each phase (the v-refit, then each halving) starts from the
// last phase's EMA student with a fresh optimizer and its own warm-up + cosine learning rate, and
// a halving's teacher is the previous halving's student. The checkpoint keeps the current
// teacher (teacher.*), so a run resumes in the middle of any round.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "diffuse/data.hpp"
#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/io.hpp"
#include "diffuse/progress.hpp"
#include "train/latent.hpp"
#include "train/optimizer_state.hpp"
#include "train/train_log.hpp"
#include "train/trainer_state.hpp"

namespace diffuse {

namespace {

// dst's parameters and buffers ← src's (two networks of one config).
void distill_copy_weights(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard g;
  auto dp = dst.parameters(), sp = src.parameters();
  auto db = dst.buffers(), sb = src.buffers();
  if (dp.size() != sp.size() || db.size() != sb.size())
    throw Error("distill: the student and teacher networks differ (internal error)");
  for (size_t i = 0; i < dp.size(); ++i) dp[i].copy_(sp[i]);
  for (size_t i = 0; i < db.size(); ++i) db[i].copy_(sb[i]);
}

// The run folder's config: the teacher's, with v-prediction, PD's loss weighting, the
// distillation's optimizer settings and the "distill" section.
TrainConfig distill_student_config(const TrainConfig& teacher, const DistillConfig& dc, const DistillPlan& plan,
                                   double clip_x0) {
  TrainConfig c = teacher;
  c.prediction = PredictionType::V;
  c.loss = LossConfig{};
  c.loss.weighting = LossWeighting::TruncatedSnr;
  c.batch = dc.batch > 0 ? dc.batch : teacher.batch;
  c.lr = dc.lr > 0 ? dc.lr : teacher.lr;
  c.warmup = dc.warmup;
  c.ema_decay = dc.ema_decay;
  c.seed = dc.seed;
  c.threads = dc.threads;
  c.device = dc.device;
  c.log_every = dc.log_every;
  c.checkpoint_every = dc.checkpoint_every;
  c.sample_every = 0;  // no periodic grids: `diffuse sample --run` draws with the distilled sampler
  c.steps = plan.total_steps();
  DistillInfo& d = c.distill;
  d.teacher = dc.teacher;
  d.teacher_prediction = teacher.prediction;
  d.teacher_steps = plan.from_steps;
  d.target_steps = plan.to_steps;
  d.steps = plan.from_steps;
  d.guidance = dc.guidance;
  d.clip_x0 = clip_x0;
  d.convert_steps = plan.convert_steps;
  d.round_steps = plan.round_steps;
  d.rounds_done = 0;
  return c;
}

// Checks the flags that the run folder's config does not check itself.
void distill_check_flags(const DistillConfig& dc) {
  if (dc.batch < 0) throw Error("--batch must be >= 1 (or 0: the teacher's)");
  if (!(dc.lr >= 0) || !std::isfinite(dc.lr)) throw Error("--lr must be a positive number (or 0: the teacher's)");
  if (!(dc.guidance >= 0) || !std::isfinite(dc.guidance))
    throw Error("--guidance must be a finite number >= 0", "1: the plain conditional teacher; 2–4 strengthen the class");
  if (dc.clip_x0 != -1 && (!(dc.clip_x0 >= 0) || !std::isfinite(dc.clip_x0)))
    throw Error("the teacher's x0 clip must be >= 0 (or -1: 1 for pixel-space images, else 0)");
}

// The grid of `n` teacher steps must hold the grid of n/2 steps at its even points, so that the
// student's grid is what `diffuse sample --steps n/2` walks.
void distill_check_nesting(const NoiseSchedule& schedule, const DistillPlan& plan) {
  for (int64_t n = plan.from_steps; n > plan.to_steps; n /= 2) {
    const auto big = distillation_grid(schedule, n), half = distillation_grid(schedule, n / 2);
    for (size_t j = 0; j + 1 < half.size(); ++j)
      if (half[j].t != big[2 * j].t)
        throw Error("the " + std::to_string(n / 2) + "-step DDIM grid is not every other point of the " +
                        std::to_string(n) + "-step grid (t = " + std::to_string(half[j].t) + " against " +
                        std::to_string(big[2 * j].t) + ")",
                    "this is a bug of diffuse: the trailing spacing should nest; please report it");
  }
}

}  // namespace

TrainResult distill(DistillConfig dc, const std::string& out_dir, bool resume, const TrainHooks& hooks) {
  if (hooks.dist) throw Error("diffuse distill runs in one process", "drop the distributed options");
  distill_check_flags(dc);
  const std::string ckpt = checkpoint_path(out_dir);
  TrainConfig sc;  // the run folder's config
  int64_t start = 0;
  SafetensorsFile saved;
  std::unique_ptr<LoadedRun> teacher_run;  // fresh runs: the teacher, EMA weights
  std::vector<std::string> class_names;
  if (resume) {
    if (!std::filesystem::exists(ckpt))
      throw Error("cannot resume: no checkpoint at '" + ckpt + "'", "start the distillation without --resume");
    saved = load_safetensors(ckpt);
    auto h = read_checkpoint_header(saved.metadata, ckpt);
    if (!h.config.distill.active())
      throw Error("'" + out_dir + "' is not a distilled run (its config has no 'distill' section)",
                  "a run of diffuse train continues with: diffuse train --out " + out_dir + " --resume");
    sc = h.config;
    start = h.step;
    class_names = h.class_names;
    sc.threads = dc.threads;
    sc.device = dc.device;
    sc.log_every = dc.log_every;
    sc.checkpoint_every = dc.checkpoint_every;
    if (dc.to_steps > 0) sc.distill.target_steps = dc.to_steps;
  } else {
    if (std::filesystem::exists(ckpt))
      throw Error("'" + out_dir + "' already holds a run", "pass --resume to continue it, or choose another --out");
    if (dc.teacher.empty()) throw Error("no teacher run given", "pass --run RUN, a run folder of diffuse train");
    teacher_run = std::make_unique<LoadedRun>(load_run(dc.teacher, true, dc.device));
    const ModelDenoiser& td = teacher_run->diffusion("distillation");  // VAE, autoencoder: an Error naming them
    const TrainConfig& tc = teacher_run->config;
    if (tc.distill.active())
      throw Error("'" + dc.teacher + "' is itself a distilled run (" + std::to_string(tc.distill.steps) + " steps)",
                  "distil it further by resuming it: diffuse distill --out " + dc.teacher + " --resume --to-steps N");
    const bool image = is_image_spec(tc.data);
    const int64_t classes = !tc.class_conditional ? 0 : image ? tc.unet.num_classes : tc.model.num_classes;
    if (classes == 0 && dc.guidance != 1.0)
      throw Error("--guidance applies to class-conditional teachers, and '" + dc.teacher + "' is unconditional",
                  "drop --guidance");
    const double clip = dc.clip_x0 < 0 ? (image && tc.latent.empty() ? 1.0 : 0.0) : dc.clip_x0;
    // An ε or x₀ teacher is refit as v-prediction first (PD's student must output x at ᾱ ≈ 0,
    // where x̂₀ = (z − σ ε̂)/α divides by α ≈ 0); a v teacher needs no refit.
    const int64_t convert = tc.prediction == PredictionType::V ? 0
                            : dc.convert_steps < 0             ? std::max<int64_t>(1, dc.round_steps / 4)
                                                               : dc.convert_steps;
    const DistillPlan plan = make_distill_plan(td.schedule().T(), dc.from_steps, dc.to_steps, dc.round_steps, convert);
    sc = distill_student_config(tc, dc, plan, clip);
    class_names = teacher_run->class_names;
  }
  const NoiseSchedule schedule = make_schedule(sc.schedule);
  const DistillInfo& info = sc.distill;
  const DistillPlan plan =
      make_distill_plan(schedule.T(), info.teacher_steps, info.target_steps, info.round_steps, info.convert_steps);
  const int64_t total = plan.total_steps();
  if (start >= total)
    throw Error("'" + out_dir + "' is distilled to " + std::to_string(plan.steps_after(start)) +
                    " steps already (--to-steps " + std::to_string(plan.to_steps) + ")",
                plan.steps_after(start) >= 2
                    ? "pass a smaller --to-steps to distil further, e.g. --to-steps " +
                          std::to_string(plan.steps_after(start) / 2)
                    : "it samples in one step: there is nothing left to halve");
  sc.steps = total;  // resume with a smaller --to-steps: more rounds
  sc.distill.steps = plan.steps_after(start);
  sc.distill.rounds_done = plan.rounds_done(start);
  validate(sc);
  distill_check_nesting(schedule, plan);
  const bool image = is_image_spec(sc.data);
  set_intra_op_threads(sc.threads, image);
  const torch::Device dev = resolve_device(sc.device);
  ensure_dir(out_dir);
  remove_stale_temp_files(out_dir);

  // The networks: student, its EMA and the current teacher (all of the teacher's architecture).
  torch::manual_seed(sc.seed);
  Network student = make_network(sc, dev), ema = make_network(sc, dev);
  Network teacher = teacher_run ? teacher_run->network : make_network(sc, dev);
  Normalizer norm;
  AutoencoderKL ae{nullptr};  // latent runs: the frozen autoencoder the run keeps
  if (teacher_run) {
    distill_copy_weights(*student.module, *teacher.module);
    distill_copy_weights(*ema.module, *teacher.module);
    norm = teacher_run->normalizer;
    ae = teacher_run->autoencoder;
  } else {
    get_module(saved.tensors, "model.", *student.module, ckpt);
    get_module(saved.tensors, "ema.", *ema.module, ckpt);
    get_module(saved.tensors, "teacher.", *teacher.module, ckpt);
    if (saved.tensors.count("norm.mean")) norm = {saved.tensors.at("norm.mean"), saved.tensors.at("norm.std")};
    if (!sc.latent.empty()) {
      ae = AutoencoderKL(sc.autoencoder);
      ae->to(dev);
      get_module(saved.tensors, "autoencoder.", *ae, ckpt);
    }
  }
  teacher.module->eval();
  ema.module->eval();
  if (ae) {
    ae->eval();
    for (auto& p : ae->parameters()) p.set_requires_grad(false);
  }

  // The teacher's data (latent runs: its autoencoder's latents of its images, encoded once).
  auto data = make_data_source(sc.data, data_options(sc));
  std::unique_ptr<DataSource> images;
  if (ae) {
    if (!hooks.quiet)
      std::fprintf(stderr, "encoding the %lld images of %s with the autoencoder (once) …\n", (long long)data->size(),
                   sc.data.c_str());
    auto z = encode_images(ae, *data, sc.autoencoder.scaling_factor, dev);
    images = std::move(data);
    data = make_latent_source(*images, z);
  }
  const int64_t num_classes = sc.class_conditional ? data->num_classes() : 0;
  const int64_t net_classes = data->is_image() ? sc.unet.num_classes : sc.model.num_classes;
  if (num_classes != net_classes)
    throw Error("the data '" + sc.data + "' has " + std::to_string(num_classes) + " classes where the network has " +
                    std::to_string(net_classes),
                "the teacher's data must be readable as it was in training (pass --data-dir to diffuse train's folder)");

  auto make_optimizer = [&] {
    return std::make_unique<torch::optim::AdamW>(student.module->parameters(),
                                                 torch::optim::AdamWOptions(sc.lr)
                                                     .betas({sc.adam_beta1, sc.adam_beta2})
                                                     .weight_decay(sc.weight_decay));
  };
  auto opt = make_optimizer();
  if (resume) get_optimizer(saved.tensors, *opt, *student.module, dev);

  const std::string log_path = out_dir + "/log.csv", plot_path = out_dir + "/loss.png";
  std::vector<LogRow> log;
  if (resume) log = read_log(log_path, start);
  auto write_config = [&] {
    write_file_atomic(out_dir + "/config.json", [&](std::ostream& o) { o << train_config_to_json(sc); });
  };
  write_config();
  auto save_checkpoint = [&](int64_t step) {
    sc.distill.steps = plan.steps_after(step);
    sc.distill.rounds_done = plan.rounds_done(step);
    std::map<std::string, torch::Tensor> t;
    put_module(t, "model.", *student.module);
    put_module(t, "ema.", *ema.module);
    put_module(t, "teacher.", *teacher.module);
    put_optimizer(t, *opt, *student.module);
    if (ae) put_module(t, "autoencoder.", *ae);
    if (norm.mean.defined()) {
      t["norm.mean"] = norm.mean;
      t["norm.std"] = norm.std;
    }
    // Log, plot and config.json first: a kill before the checkpoint leaves them ahead of it
    // (resume drops the log rows beyond its step and reads the config from the checkpoint).
    write_log(log_path, log);
    plot_loss(plot_path, log);
    write_config();
    save_safetensors(ckpt, t, checkpoint_metadata(sc, step, class_names));
  };

  if (!hooks.quiet) {
    char line[160];
    std::snprintf(line, sizeof line, "DDIM %lld → %lld steps in %lld round%s of %lld steps", (long long)plan.from_steps,
                  (long long)plan.to_steps, (long long)plan.rounds(), plan.rounds() == 1 ? "" : "s",
                  (long long)plan.round_steps);
    std::string what = std::string(resume ? "resuming the distillation of " : "distilling ") + info.teacher + " (" +
                       to_string(info.teacher_prediction) + "): " + line;
    if (plan.convert_steps > 0) what += " after " + std::to_string(plan.convert_steps) + " steps refitting it as v";
    std::snprintf(line, sizeof line, ", batch %lld, lr %.2e", (long long)sc.batch, sc.lr);
    what += line;
    if (num_classes > 0) {
      std::snprintf(line, sizeof line, ", guidance %g", info.guidance);
      what += line;
    }
    std::fprintf(stderr, "%s → %s\n", what.c_str(), out_dir.c_str());
  }

  // The teacher of the current phase: the original run (guided) in the refit and round 1, the
  // previous round's student (guidance already inside it) after; and the phase's grid.
  std::unique_ptr<ModelDenoiser> teacher_model;
  std::unique_ptr<GuidedDenoiser> teacher_guided;
  const Denoiser* teacher_d = nullptr;
  std::vector<GridPoint> grid;
  DistillPhase phase;
  phase.round = -1;
  auto enter_phase = [&](const DistillPhase& ph) {
    const PredictionType tp = ph.round <= 1 ? info.teacher_prediction : PredictionType::V;
    teacher_guided.reset();
    teacher_model = std::make_unique<ModelDenoiser>(teacher.forward, schedule, tp);
    if (num_classes > 0 && ph.round <= 1 && info.guidance != 1.0)
      teacher_guided = std::make_unique<GuidedDenoiser>(*teacher_model, info.guidance, num_classes);
    teacher_d = teacher_guided ? static_cast<const Denoiser*>(teacher_guided.get()) : teacher_model.get();
    grid = distillation_grid(schedule, ph.teacher_steps);
    phase = ph;
    if (hooks.quiet) return;
    if (ph.round == 0)
      std::fprintf(stderr, "\nrefitting the %s teacher as v-prediction at its %lld grid points\n",
                   to_string(info.teacher_prediction).c_str(), (long long)ph.teacher_steps);
    else
      std::fprintf(stderr, "\nround %lld of %lld: DDIM %lld → %lld steps\n", (long long)ph.round,
                   (long long)plan.rounds(), (long long)ph.teacher_steps, (long long)ph.student_steps);
  };
  // At a phase's first step: the last phase's EMA student becomes the student (and, in rounds
  // >= 2, the teacher); a fresh optimizer.
  auto begin_phase = [&](const DistillPhase& ph) {
    if (ph.round >= 2) distill_copy_weights(*teacher.module, *ema.module);
    distill_copy_weights(*student.module, *ema.module);
    opt = make_optimizer();
  };

  Progress progress("step", total, start, sc.log_every, hooks.quiet);
  auto params = student.module->parameters();
  auto ema_params = ema.module->parameters();
  double interval_loss = 0, interval_gn = 0, last_loss = NAN;
  int64_t interval_n = 0, step = start;
  const int64_t B = sc.batch;
  const LossConfig loss_cfg = sc.loss;  // truncated-snr: max(SNR, 1)·‖x̂₀ − x̃‖² as a v-MSE
  student.module->train();
  while (step < total) {
    const DistillPhase ph = plan.phase_at(step);
    if (ph.round != phase.round) enter_phase(ph);
    if (step == ph.first_step) begin_phase(ph);
    const int64_t in_phase = step - ph.first_step;
    const double lr = warmup_cosine_lr(sc.lr, sc.warmup, ph.length, sc.min_lr_ratio, in_phase);
    for (auto& group : opt->param_groups()) group.options().set_lr(lr);
    // All randomness of this step from one generator: resumable without RNG state.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(sc.seed, uint64_t(step)));
    torch::manual_seed(mix_seed(sc.seed ^ 0x5eedULL, uint64_t(step)));  // the network's own (dropout)
    DataBatch b = data->sample(B, gen);
    auto x0 = norm.encode(b.x);
    // The student's grid point per row: one of the phase's student points (a halving: every
    // other teacher point, its mid point and the next student point after it).
    auto idx = torch::randint(0, ph.student_steps, {B}, gen, torch::dtype(torch::kLong));
    auto noise = torch::randn(x0.sizes(), gen, torch::dtype(torch::kFloat32));
    Conditioning cond;
    if (num_classes > 0) {  // label dropout, as in training: y → ∅ (index num_classes), so the
                            // student also learns the unconditional (unguided) teacher
      auto drop = torch::rand({B}, gen, torch::dtype(torch::kFloat32)) < sc.label_dropout;
      cond.labels = torch::where(drop, torch::full_like(b.labels, num_classes), b.labels).to(dev);
    }
    x0 = x0.to(dev);
    noise = noise.to(dev);
    std::vector<GridPoint> points(static_cast<size_t>(B)), mid, next;
    std::vector<int64_t> tv(static_cast<size_t>(B));
    const int64_t* ip = idx.data_ptr<int64_t>();
    for (int64_t i = 0; i < B; ++i) {
      const size_t j = size_t(ip[i]);
      if (ph.round == 0) {
        points[i] = grid[j];
      } else {
        points[i] = grid[2 * j];
        mid.push_back(grid[2 * j + 1]);
        next.push_back(grid[2 * j + 2]);
      }
      tv[i] = int64_t(points[i].t);  // trailing grids hold whole timesteps
    }
    auto t = torch::tensor(tv, torch::dtype(torch::kLong)).to(dev);
    auto z = q_sample(schedule, x0, t, noise);  // z_t = α_t x + σ_t ε (ᾱ of the grid point)
    torch::Tensor target;                       // x̃ (B, ...): the refit's is the teacher's own
    {                                           // x̂₀, a halving's PD's two-step target; clamped
      torch::NoGradGuard no_grad;               // to the data range (student_target)
      target = student_target(*teacher_d, z, points, mid, next, cond, info.clip_x0);
    }
    // The v whose x̂₀ = α z − σ v is x̃: ṽ = (α z − x̃)/σ.
    auto ab = alpha_bar_of(schedule, t, z.dim());
    auto v_target =
        ((ab.sqrt() * z.to(torch::kFloat64) - target.to(torch::kFloat64)) / (1.0 - ab).sqrt()).to(torch::kFloat32);
    opt->zero_grad();
    auto out = student.forward(z, t, cond);
    auto loss = diffusion_loss(schedule, PredictionType::V, loss_cfg, out, v_target, t);
    const double loss_v = loss.item<double>();
    if (!std::isfinite(loss_v)) {
      const bool have = std::filesystem::exists(ckpt);
      throw Error("the loss became " + std::string(std::isnan(loss_v) ? "NaN" : "infinite") + " at step " +
                      std::to_string(step + 1) + "; the distillation stopped",
                  (have ? "the last good checkpoint is kept at '" + ckpt + "'. " : "no checkpoint was written yet. ") +
                      "Start again with a lower --lr");
    }
    loss.backward();
    double gn = 0;
    if (sc.grad_clip > 0) gn = torch::nn::utils::clip_grad_norm_(params, sc.grad_clip);
    opt->step();
    ++step;
    {  // EMA with warm-up, restarted every phase: decay = min(ema_decay, (1 + n)/(10 + n)).
      torch::NoGradGuard g;
      const double n = double(step - ph.first_step);
      const double d = std::min(sc.ema_decay, (1.0 + n) / (10.0 + n));
      for (size_t i = 0; i < params.size(); ++i) ema_params[i].mul_(d).add_(params[i].detach(), 1.0 - d);
    }
    interval_loss += loss_v;
    interval_gn += gn;
    ++interval_n;
    const bool phase_end = step == ph.first_step + ph.length;
    char extra[96];
    if (ph.round == 0)
      std::snprintf(extra, sizeof extra, "v-refit loss %.4g lr %.2e", loss_v, lr);
    else
      std::snprintf(extra, sizeof extra, "round %lld/%lld (%lld→%lld) loss %.4g lr %.2e", (long long)ph.round,
                    (long long)plan.rounds(), (long long)ph.teacher_steps, (long long)ph.student_steps, loss_v, lr);
    progress.update(step, extra);
    if (step % sc.log_every == 0 || phase_end || step == total) {
      last_loss = interval_loss / double(interval_n);
      log.push_back({step, last_loss, lr, interval_gn / double(interval_n), progress.rate(), progress.elapsed()});
      interval_loss = interval_gn = 0;
      interval_n = 0;
    }
    const bool stop = (hooks.stop && hooks.stop->load()) || (hooks.stop_after && hooks.stop_after(step));
    if (step % sc.checkpoint_every == 0 || phase_end || step == total || stop) save_checkpoint(step);
    if (phase_end && !hooks.quiet)
      std::fprintf(stderr, "\n%s: the run samples with DDIM in %lld steps\n",
                   ph.round == 0 ? "refit done" : ("round " + std::to_string(ph.round) + " done").c_str(),
                   (long long)ph.student_steps);
    if (stop && step < total) {
      progress.finish("stopped; checkpoint saved");
      return {TrainStatus::Stopped, step, last_loss};
    }
  }
  progress.finish("done");
  return {TrainStatus::Finished, step, last_loss};
}

}  // namespace diffuse
