// diffuse train: train a denoiser on a data spec into a run folder.
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "diffuse/distributed.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"
#include "train_launch.hpp"

namespace diffuse::cli {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop.store(true); }

template <class Opts>
void run_train(Opts& oo, Distributed* dist, bool follower, CLI::Option* data, CLI::Option* steps, CLI::Option* batch,
             CLI::Option* lr, CLI::Option* seed, CLI::Option* threads, CLI::Option* device, CLI::Option* pred,
             CLI::Option* loss, CLI::Option* log_every, CLI::Option* ckpt_every, CLI::Option* preset,
             CLI::Option* data_dir, CLI::Option* precision, CLI::Option* cond, CLI::Option* sample_every);
}  // namespace

void add_train(CLI::App& app) {
  struct Opts {
  TrainConfig cfg;  // holds the defaults shown in --help
  std::string out, config, preset, precision = to_string(TrainConfig{}.precision), prediction = to_string(TrainConfig{}.prediction),
                           loss = to_string(TrainConfig{}.loss.weighting);
  bool resume = false;
  ScheduleFlags sched;
  DistConfig dist;
  int nproc = 0;
  bool no_overlap = false;
  std::vector<CLI::Option*> opts;
  CLI::Option *image_size = nullptr, *background = nullptr;  // image data options
  std::string model = to_string(TrainConfig{}.model_kind), likelihood = to_string(VaeOptions{}.likelihood);
  CLI::Option *model_opt = nullptr, *latent_opt = nullptr, *likelihood_opt = nullptr;  // --model vae
  int64_t downsample = 4;
  CLI::Option *latent_channels_opt = nullptr, *downsample_opt = nullptr, *kl_weight_opt = nullptr,
              *latent_run_opt = nullptr;  // --model autoencoder-kl, --latent
  CLI::Option* picture_scale = nullptr;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("train", "train a diffusion model (or seed 003's VAE); writes a run folder");
  auto& c = o->cfg;
  auto opt = [&](CLI::Option* x) { o->opts.push_back(x->capture_default_str()); return x; };
  auto* data = opt(cmd->add_option("--data", c.data, "data spec: " + join(data_spec_names())));
  cmd->add_option("--out", o->out, "run folder (config, checkpoint, log, loss curve)")->required();
  cmd->add_option("--config", o->config, "JSON config (see docs/config.md); flags override it")
    ->check(CLI::ExistingFile);
  auto* preset = cmd->add_option("--preset", o->preset, "start from a named config: " + join(preset_names()));
  auto* data_dir = opt(cmd->add_option("--data-dir", c.data_dir, "fashion-mnist: folder of the IDX files"));
  o->image_size = opt(cmd->add_option("--image-size", c.image_size,
                                      "folder:PATH, emoji: side of the square images (0: 28 for folders, 32 for emoji)"));
  o->background = opt(cmd->add_option("--background", c.background, "emoji: colour behind the glyphs: white, black, #rrggbb"));
  auto* precision = opt(cmd->add_option("--precision", o->precision, "fp32 or bf16 (autocast)"));
  o->model_opt = opt(cmd->add_option("--model", o->model,
                                     "what to train: diffusion (a denoiser; DDPM) or vae (seed 003's variational autoencoder, images)"));
  o->latent_opt = opt(cmd->add_option("--latent-dim", c.vae.latent_dim, "vae: dimension of z"));
  o->likelihood_opt = opt(cmd->add_option("--likelihood", o->likelihood,
                                          "vae: p(x|z): " + join(vae_likelihood_names()) +
                                              " (bernoulli models binarized images)"));
  o->latent_channels_opt = opt(cmd->add_option("--latent-channels", c.autoencoder.latent_channels,
                                               "autoencoder-kl: latent channels L"));
  o->downsample_opt = opt(cmd->add_option("--downsample", o->downsample,
                                          "autoencoder-kl: f = 1, 2, 4 or 8 (image side / latent side; sets "
                                          "block_out_channels to 16, 32, 32, 32 cut to log2(f)+1 levels)"));
  o->kl_weight_opt = opt(cmd->add_option("--kl-weight", c.kl_weight, "autoencoder-kl: weight of the KL term"));
  o->latent_run_opt = opt(cmd->add_option("--latent", c.latent,
                                          "latent diffusion: train on the latents of this finished autoencoder-kl run "
                                          "(its data; the run keeps a copy of the autoencoder)"));
  auto* cond = cmd->add_flag("--class-conditional", c.class_conditional,
                           "condition on the data's labels (for --class and --guidance)");
  auto* steps = opt(cmd->add_option("--steps", c.steps, "optimizer steps"));
  auto* batch = opt(cmd->add_option("--batch", c.batch, "batch size"));
  auto* lr = opt(cmd->add_option("--lr", c.lr, "peak learning rate"));
  auto* seed = opt(cmd->add_option("--seed", c.seed, "random seed"));
  auto* threads = opt(cmd->add_option("--threads", c.threads, kThreadsHelp));
  auto* device = opt(cmd->add_option("--device", c.device, "auto, cpu, cuda, cuda:N"));
  auto* pred = opt(cmd->add_option("--prediction", o->prediction, "network target: eps, x0, v"));
  auto* loss = opt(cmd->add_option("--loss", o->loss, "loss weighting: " + join(loss_weighting_names())));
  auto* log_every = opt(cmd->add_option("--log-every", c.log_every, "steps between log lines"));
  auto* ckpt_every = opt(cmd->add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints"));
  auto* sample_every = opt(cmd->add_option("--sample-every", c.sample_every,
                                         "images: steps between sample grids in RUN_DIR/samples (0: off)"));
  o->picture_scale = opt(cmd->add_option("--picture-scale", c.picture_scale, kPictureScaleHelp));
  cmd->add_flag("--resume", o->resume, "continue the run in --out from its checkpoint");
  add_schedule_flags(*cmd, o->sched);
  // Data-parallel training (docs/distributed.md).
  auto& d = o->dist;
  auto* world = cmd->add_option("--world-size", d.world_size, "distributed: number of ranks (processes) in the run")
                  ->capture_default_str()->group("Distributed");
  auto* rank = cmd->add_option("--rank", d.rank, "distributed: this process's rank, 0 … world-size−1 (0 writes the run folder)")
                 ->capture_default_str()->group("Distributed");
  auto* master = cmd->add_option("--master", d.master, "distributed: ADDR:PORT of rank 0 (its TCPStore rendezvous)")
                   ->capture_default_str()->group("Distributed");
  auto* nproc = cmd->add_option("--nproc", o->nproc, "start N local ranks of this command (loopback; sets --threads cores/N)")
                  ->check(CLI::PositiveNumber)->group("Distributed");
  cmd->add_option("--dist-timeout", d.timeout_s, "distributed: seconds to wait for a rank (joining, each all-reduce)")
    ->capture_default_str()->group("Distributed");
  cmd->add_option("--bucket-mb", d.bucket_mb, "distributed: gradient all-reduce bucket size (MB)")
    ->capture_default_str()->group("Distributed");
  cmd->add_flag("--no-overlap", o->no_overlap, "distributed: all-reduce after the backward pass, not during it")
    ->group("Distributed");

  cmd->callback([o, data, steps, batch, lr, seed, threads, device, pred, loss, log_every, ckpt_every, preset,
               data_dir, precision, cond, sample_every, world, rank, master, nproc] {
  o->dist.overlap = !o->no_overlap;
  if (given(nproc) && o->nproc > 1) {
    for (auto* x : {world, rank, master})
      if (given(x)) throw Error("--nproc starts the ranks itself: drop " + x->get_name(),
                                "use --world-size, --rank and --master to start each rank yourself");
    validate(o->dist);
    const int code = launch_local_ranks(o->nproc, given(threads), o->dist.timeout_s);
    if (code != 0) throw CLI::RuntimeError(code);
    return;
  }
  std::unique_ptr<Distributed> dist;
  if (o->dist.world_size > 1) dist = Distributed::join(o->dist);
  const bool follower = dist && !dist->is_root();  // takes rank 0's config
  try {
    run_train(*o, dist.get(), follower, data, steps, batch, lr, seed, threads, device, pred, loss, log_every,
              ckpt_every, preset, data_dir, precision, cond, sample_every);
  } catch (const Error& e) {
    if (dist) dist->post_error(e.what(), e.hint());
    throw;
  }
  });
}

namespace {

template <class Opts>
void run_train(Opts& oo, Distributed* dist, bool follower, CLI::Option* data, CLI::Option* steps, CLI::Option* batch,
               CLI::Option* lr, CLI::Option* seed, CLI::Option* threads, CLI::Option* device, CLI::Option* pred,
               CLI::Option* loss, CLI::Option* log_every, CLI::Option* ckpt_every, CLI::Option* preset,
               CLI::Option* data_dir, CLI::Option* precision, CLI::Option* cond, CLI::Option* sample_every) {
    auto* o = &oo;
    const auto& f = o->cfg;
    TrainConfig cfg;
    if (follower) {
      // Ranks other than 0 take rank 0's config (train() fetches it); only local settings matter here.
    } else if (o->resume) {
      for (auto* x : {data, batch, lr, seed, pred, loss, preset, precision, cond, o->image_size, o->background,
                      o->model_opt, o->latent_opt, o->likelihood_opt, o->latent_channels_opt, o->downsample_opt,
                      o->kl_weight_opt, o->latent_run_opt})
        if (given(x)) throw Error(x->get_name() + " cannot change when resuming",
                                  "--resume continues the saved config; only --steps, --threads, --device, --data-dir, "
                                  "--log-every, --checkpoint-every, --sample-every and --picture-scale may be given");
      if (o->sched.any_given() || !o->config.empty())
        throw Error("the schedule and --config cannot change when resuming");
      if (!std::filesystem::exists(checkpoint_path(o->out)))
        throw Error("cannot resume: no checkpoint in '" + o->out + "'", "start the run without --resume");
      cfg = load_train_config_file(o->out + "/config.json");
    } else {
      if (given(preset) && !o->config.empty()) throw Error("give --preset or --config, not both");
      cfg = given(preset) ? preset_config(o->preset)
                          : o->config.empty() ? TrainConfig{} : load_train_config_file(o->config);
      if (given(data)) cfg.data = f.data;
      if (given(o->image_size)) cfg.image_size = f.image_size;
      if (given(o->background)) cfg.background = f.background;
      if (given(batch)) cfg.batch = f.batch;
      if (given(lr)) cfg.lr = f.lr;
      if (given(seed)) cfg.seed = f.seed;
      if (given(pred)) cfg.prediction = parse_prediction_type(o->prediction);
      if (given(loss)) cfg.loss.weighting = parse_loss_weighting(o->loss);
      if (given(precision)) cfg.precision = parse_precision(o->precision);
      if (given(cond)) cfg.class_conditional = true;
      if (given(o->model_opt)) cfg.model_kind = parse_model_kind(o->model);
      if (given(o->latent_opt)) cfg.vae.latent_dim = f.vae.latent_dim;
      if (given(o->likelihood_opt)) cfg.vae.likelihood = parse_vae_likelihood(o->likelihood);
      if (cfg.model_kind != ModelKind::Vae)
        for (auto* x : {o->latent_opt, o->likelihood_opt})
          if (given(x)) throw Error(x->get_name() + " applies to --model vae", "add --model vae, or drop " + x->get_name());
      if (given(o->latent_channels_opt)) cfg.autoencoder.latent_channels = f.autoencoder.latent_channels;
      if (given(o->kl_weight_opt)) cfg.kl_weight = f.kl_weight;
      if (given(o->downsample_opt)) {
        const int64_t levels = o->downsample == 1 ? 1 : o->downsample == 2 ? 2 : o->downsample == 4 ? 3
                               : o->downsample == 8 ? 4 : 0;
        if (levels == 0) throw Error("--downsample must be 1, 2, 4 or 8, got " + std::to_string(o->downsample));
        cfg.autoencoder.block_out_channels = std::vector<int64_t>{16, 32, 32, 32};
        cfg.autoencoder.block_out_channels.resize(size_t(levels));
      }
      if (cfg.model_kind != ModelKind::AutoencoderKL)
        for (auto* x : {o->latent_channels_opt, o->downsample_opt, o->kl_weight_opt})
          if (given(x))
            throw Error(x->get_name() + " applies to --model autoencoder-kl", "add --model autoencoder-kl, or drop " + x->get_name());
      if (given(o->latent_run_opt)) {
        if (given(data)) throw Error("--latent trains on the autoencoder's data: drop --data",
                                     "the autoencoder run '" + f.latent + "' fixes the data");
        cfg.latent = f.latent;
      }
      cfg.schedule = o->sched.resolve(cfg.schedule);
    }
    if (given(steps)) cfg.steps = f.steps;
    if (given(threads)) cfg.threads = f.threads;
    if (given(device)) cfg.device = f.device;
    if (given(data_dir)) cfg.data_dir = f.data_dir;
    if (given(log_every)) cfg.log_every = f.log_every;
    if (given(ckpt_every)) cfg.checkpoint_every = f.checkpoint_every;
    if (given(sample_every)) cfg.sample_every = f.sample_every;
    if (given(o->picture_scale)) cfg.picture_scale = f.picture_scale;
    if (!follower) quick_train(cfg);
    std::signal(SIGINT, on_sigint);
    if (!follower) {
      const int threads = intra_op_threads(cfg.threads, is_image_spec(cfg.data) && cfg.model_kind != ModelKind::Vae);
      std::fprintf(stderr, "%s %s → %s%s, %d thread%s\n", o->resume ? "resuming" : "training", cfg.data.c_str(),
                   o->out.c_str(), dist ? (" on " + std::to_string(dist->world_size()) + " ranks").c_str() : "",
                   threads, threads == 1 ? "" : "s");
    }
    TrainHooks hooks;
    hooks.stop = &g_stop;
    hooks.dist = dist;
    auto r = train(cfg, o->out, o->resume, hooks);
    std::signal(SIGINT, SIG_DFL);
    if (r.status == TrainStatus::Stopped) {
      if (!follower)
        std::fprintf(stderr, "interrupted at step %lld; resume with: diffuse train --out %s --resume\n",
                     (long long)r.step, o->out.c_str());
      throw CLI::RuntimeError(130);
    }
    if (follower) return;
    if (dist)
      std::printf("all-reduce (%s, %d ranks): %.2f ms/step waiting after the backward pass\n",
                  dist->backend().c_str(), dist->world_size(), r.allreduce_ms);
    std::printf("trained %lld steps; run folder: %s (checkpoint.safetensors, config.json, log.csv, loss.png)\n",
                (long long)r.step, o->out.c_str());
}

}  // namespace

}  // namespace diffuse::cli
