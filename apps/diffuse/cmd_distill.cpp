// diffuse distill: progressive distillation (Salimans & Ho 2022) of a trained run into a run
// that samples in a few DDIM steps (include/diffuse/distill.hpp, docs/distill.md).
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

namespace {
std::atomic<bool> g_distill_stop{false};
extern "C" void on_distill_sigint(int) { g_distill_stop.store(true); }

struct DistillOpts {
  DistillConfig cfg;  // holds the defaults shown in --help
  std::string out;
  bool resume = false;
};
}  // namespace

void add_distill(CLI::App& app) {
  auto o = std::make_shared<DistillOpts>();
  auto& c = o->cfg;
  auto* cmd = app.add_subcommand(
      "distill", "progressive distillation: a run that samples in a few DDIM steps (docs/distill.md)");
  auto* run = cmd->add_option("--run", c.teacher, "the teacher: a run folder of 'diffuse train' (its EMA weights)");
  cmd->add_option("--out", o->out, "the distilled run folder (config, checkpoint, log, loss curve)")->required();
  auto* from = cmd->add_option("--from-steps", c.from_steps,
                               "DDIM steps of the teacher, N0 (0: min(64, the largest power of two <= T))")
                   ->capture_default_str();
  cmd->add_option("--to-steps", c.to_steps,
                  "DDIM steps of the final student: N0 halved k >= 1 times (0: 4; with --resume: the run's, "
                  "a smaller one distils further)")
      ->capture_default_str();
  auto* round = cmd->add_option("--round-steps", c.round_steps, "optimizer steps per halving")->capture_default_str();
  auto* convert = cmd->add_option("--convert-steps", c.convert_steps,
                                  "eps or x0 teachers: steps first refitting the student as v-prediction "
                                  "(-1: round-steps/4; v teachers: none)")
                      ->capture_default_str();
  auto* batch = cmd->add_option("--batch", c.batch, "batch size (0: the teacher's)")->capture_default_str();
  auto* lr = cmd->add_option("--lr", c.lr, "peak learning rate of every round (0: the teacher's)")
                 ->capture_default_str();
  auto* guidance = cmd->add_option("--guidance", c.guidance,
                                   "class-conditional teachers: classifier-free guidance scale w baked into the "
                                   "student (sample it with --guidance 1)")
                       ->capture_default_str();
  auto* seed = cmd->add_option("--seed", c.seed, "random seed (data, grid points, noise of every step)")
                   ->capture_default_str();
  cmd->add_option("--threads", c.threads, kThreadsHelp)->capture_default_str();
  cmd->add_option("--device", c.device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--log-every", c.log_every, "steps between log lines")->capture_default_str();
  cmd->add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints (and at every round's end)")
      ->capture_default_str();
  cmd->add_flag("--resume", o->resume, "continue the distillation in --out from its checkpoint");
  cmd->callback([o, run, from, round, convert, batch, lr, guidance, seed] {
    DistillConfig cfg = o->cfg;
    if (o->resume) {
      for (auto* x : {run, from, round, convert, batch, lr, guidance, seed})
        if (given(x))
          throw Error(x->get_name() + " cannot change when resuming",
                      "--resume continues the saved distillation; only --to-steps, --threads, --device, "
                      "--log-every and --checkpoint-every may be given");
    } else if (cfg.teacher.empty()) {
      throw Error("--run is required: the teacher run to distil", "e.g. diffuse distill --run runs/fmnist-tiny --out runs/pd");
    }
    quick_distill(cfg);
    std::signal(SIGINT, on_distill_sigint);
    TrainHooks hooks;
    hooks.stop = &g_distill_stop;
    auto r = distill(cfg, o->out, o->resume, hooks);
    std::signal(SIGINT, SIG_DFL);
    if (r.status == TrainStatus::Stopped) {
      std::fprintf(stderr, "interrupted at step %lld; resume with: diffuse distill --out %s --resume\n",
                   (long long)r.step, o->out.c_str());
      throw CLI::RuntimeError(130);
    }
    const TrainConfig done = load_train_config_file(o->out + "/config.json");
    std::printf("distilled %lld steps; %s samples with DDIM in %lld steps: diffuse sample --run %s --out DIR\n",
                (long long)r.step, o->out.c_str(), (long long)done.distill.steps, o->out.c_str());
  });
}

}  // namespace diffuse::cli
