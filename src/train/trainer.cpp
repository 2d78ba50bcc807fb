// The Trainer: AdamW, warm-up + cosine LR, gradient clipping, EMA, checkpoints
// that resume exactly, a CSV log and a loss curve.
//
// Exact resume: every random draw of step s (data, timesteps, noise) comes from a
// generator seeded by mix_seed(seed, s), so no RNG state has to be saved; the
// checkpoint holds the weights, the EMA weights and AdamW's moments and step counts.
//
// Data parallel (hooks.dist, W ranks): step s draws the same global batch on every rank from
// the generator of step s, and rank r trains on rows [r·B/W, (r+1)·B/W) of it; gradients are
// averaged, so W ranks follow the trajectory of one process with the same `batch` (up to float
// summation order) and a checkpoint resumes with any W. See docs/distributed.md.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "diffuse/distributed.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/plot.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"
#include "train/latent.hpp"
#include "train/optimizer_state.hpp"
#include "train/train_log.hpp"
#include "train/trainer_state.hpp"

namespace diffuse {

namespace {

constexpr uint64_t kNormalizerStream = ~uint64_t(0);  // seed index of the normaliser's draws

// lr(s) for 0-based step s: linear warm-up to lr, then cosine decay to lr·min_lr_ratio.
double lr_at(const TrainConfig& c, int64_t s) { return warmup_cosine_lr(c.lr, c.warmup, c.steps, c.min_lr_ratio, s); }

double allreduce_ms(const Distributed* d) {
  return d && d->reduced_steps() > 0 ? 1e3 * d->allreduce_seconds() / double(d->reduced_steps()) : 0.0;
}

// Distributed: every rank holds AdamW state for every parameter (zeros and step 0, which is
// what AdamW starts from), so that rank 0's state can be broadcast into it.
void ensure_optimizer_state(torch::optim::AdamW& opt, const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    if (opt.state().count(adam_key(p))) continue;
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(0);
    st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    opt.state()[adam_key(p)] = std::move(st);
  }
}

// Rank 0's weights, EMA, optimizer state and normaliser, copied into every rank.
void broadcast_state(Distributed& dist, torch::nn::Module& net, torch::nn::Module& ema,
                     torch::optim::AdamW& opt, Normalizer& norm) {
  torch::NoGradGuard g;
  auto params = net.parameters();
  ensure_optimizer_state(opt, params);
  std::vector<torch::Tensor> ts;
  for (auto* m : {&net, &ema}) {
    for (auto& p : m->parameters()) ts.push_back(p.data());
    for (auto& b : m->buffers()) ts.push_back(b.data());
  }
  auto steps = torch::zeros({int64_t(params.size())}, torch::kLong);
  for (size_t i = 0; i < params.size(); ++i) {
    auto& st = static_cast<torch::optim::AdamWParamState&>(*opt.state().at(adam_key(params[i])));
    ts.push_back(st.exp_avg());
    ts.push_back(st.exp_avg_sq());
    steps[int64_t(i)] = st.step();
  }
  ts.push_back(steps);
  if (norm.mean.defined()) {
    ts.push_back(norm.mean);
    ts.push_back(norm.std);
  }
  dist.broadcast(ts);
  for (size_t i = 0; i < params.size(); ++i)
    static_cast<torch::optim::AdamWParamState&>(*opt.state().at(adam_key(params[i])))
        .step(steps[int64_t(i)].item<int64_t>());
}

TrainResult train_run(TrainConfig cfg, const std::string& run_dir, bool resume, const TrainHooks& hooks,
                      Distributed* dist);

}  // namespace

TrainResult train(TrainConfig cfg, const std::string& run_dir, bool resume, const TrainHooks& hooks) {
  Distributed* dist = hooks.dist && hooks.dist->world_size() > 1 ? hooks.dist : nullptr;
  if (!dist) return train_run(std::move(cfg), run_dir, resume, hooks, nullptr);
  // A rank that fails posts its error, so that the others name it instead of timing out.
  try {
    return train_run(std::move(cfg), run_dir, resume, hooks, dist);
  } catch (const Error& e) {
    dist->post_error(e.what(), e.hint());
    throw;
  } catch (const c10::Error& e) {
    dist->post_error(e.what_without_backtrace());
    throw;
  } catch (const std::exception& e) {
    dist->post_error(e.what());
    throw;
  }
}

namespace {

TrainResult train_run(TrainConfig cfg, const std::string& run_dir, bool resume, const TrainHooks& hooks,
                      Distributed* dist) {
  const bool root = !dist || dist->is_root();
  const int64_t world = dist ? dist->world_size() : 1, rank = dist ? dist->rank() : 0;
  const std::string ckpt = checkpoint_path(run_dir);
  SafetensorsFile saved;
  int64_t start_step = 0;
  if (!root) {
    // Rank 0 resolved the run (new or resumed); take its config, keeping this machine's
    // threads, device and data folder.
    auto info = nlohmann::json::parse(dist->fetch("run"));
    TrainConfig r = train_config_from_json(info.at("config").get<std::string>(), {}, "rank 0's config");
    r.threads = cfg.threads;
    r.device = cfg.device;
    if (!cfg.data_dir.empty()) r.data_dir = cfg.data_dir;
    cfg = r;
    start_step = info.at("step").get<int64_t>();
    resume = info.at("resume").get<bool>();
  } else if (resume) {
    if (!std::filesystem::exists(ckpt))
      throw Error("cannot resume: no checkpoint at '" + ckpt + "'", "start the run without --resume");
    saved = load_safetensors(ckpt);
    auto h = read_checkpoint_header(saved.metadata, ckpt);
    // Keep everything that shapes the run; take only the allowed overrides.
    TrainConfig r = h.config;
    r.steps = cfg.steps;
    r.threads = cfg.threads;
    r.log_every = cfg.log_every;
    r.checkpoint_every = cfg.checkpoint_every;
    r.sample_every = cfg.sample_every;
    r.picture_scale = cfg.picture_scale;
    r.device = cfg.device;
    if (!cfg.data_dir.empty()) r.data_dir = cfg.data_dir;  // the same data, moved to another folder
    cfg = r;
    start_step = h.step;
    if (start_step >= cfg.steps)
      throw Error("the run in '" + run_dir + "' already has " + std::to_string(start_step) +
                  " steps (steps = " + std::to_string(cfg.steps) + ")",
                  "pass a larger --steps to train further");
  } else if (std::filesystem::exists(ckpt)) {
    throw Error("'" + run_dir + "' already holds a run", "pass --resume to continue it, or choose another --out");
  }
  if (cfg.distill.active())
    throw Error(std::string(resume ? "'" + run_dir + "' is a distilled run" : "the config is a distilled run's") +
                    " (it has a 'distill' section): diffuse train does not continue a distillation",
                "continue it with: diffuse distill --out " + (resume ? run_dir : std::string("RUN")) +
                    " --resume; to train a new model from this config, delete its 'distill' section");
  // Latent diffusion, a fresh run: the autoencoder's config and data from its run (before the
  // config is checked and published to the other ranks).
  std::unique_ptr<LoadedRun> ae_run;
  if (root && !resume && !cfg.latent.empty()) {
    ae_run = std::make_unique<LoadedRun>(load_run(cfg.latent, true, cfg.device));
    if (!ae_run->is_autoencoder())
      throw Error("--latent " + cfg.latent + " is not an autoencoder run (its model is " +
                      to_string(ae_run->config.model_kind) + ")",
                  "train one first: diffuse train --model autoencoder-kl --data DATA --out AE_RUN");
    if (ae_run->step < ae_run->config.steps)
      throw Error("the autoencoder run '" + cfg.latent + "' stopped at step " + std::to_string(ae_run->step) + " of " +
                      std::to_string(ae_run->config.steps) + "; its latent scale factor is measured when it finishes",
                  "finish it: diffuse train --out " + cfg.latent + " --resume");
    cfg.autoencoder = ae_run->config.autoencoder;
    cfg.data = ae_run->config.data;  // the latents are those of the autoencoder's data
    if (cfg.data_dir.empty()) cfg.data_dir = ae_run->config.data_dir;
    cfg.image_size = ae_run->config.image_size;
    cfg.background = ae_run->config.background;
  }
  validate(cfg);
  if (dist && root) {
    if (cfg.batch % world != 0)
      throw Error("batch " + std::to_string(cfg.batch) + " cannot be split over " + std::to_string(world) +
                      " ranks", "batch is the global batch: give a multiple of --world-size");
    dist->publish("run", nlohmann::json{{"config", train_config_to_json(cfg)},
                                        {"step", start_step},
                                        {"resume", resume}}.dump());
  }
  // The VAE's small convolutions and matrices ran 2× faster on 1 thread than on 2 (measured
  // here: 6.2 vs 3.2 it/s at batch 128 on Fashion-MNIST); the U-Net trains 1.8× faster on 2.
  set_intra_op_threads(cfg.threads, is_image_spec(cfg.data) && cfg.model_kind != ModelKind::Vae);
  const torch::Device dev = resolve_device(cfg.device);
  if (dist) dist->init_process_group(dev);
  if (root) {
    ensure_dir(run_dir);
    remove_stale_temp_files(run_dir);  // half-written files of a killed earlier process
  }

  // Latent diffusion: the frozen autoencoder (fresh run: the autoencoder run's EMA weights;
  // resumed: the copy in this run's checkpoint; ranks > 0: rank 0's, broadcast).
  AutoencoderKL latent_ae{nullptr};
  if (!cfg.latent.empty()) {
    if (ae_run) {
      latent_ae = ae_run->network.autoencoder;
    } else {
      latent_ae = AutoencoderKL(cfg.autoencoder);
      latent_ae->to(dev);
      if (root) get_module(saved.tensors, "autoencoder.", *latent_ae, ckpt);
    }
    latent_ae->eval();
    for (auto& p : latent_ae->parameters()) p.set_requires_grad(false);
    if (dist) {
      std::vector<torch::Tensor> ts;
      for (auto& p : latent_ae->parameters()) ts.push_back(p.data());
      dist->broadcast(ts);
    }
  }

  // Data, its normalisation (vectors only: images are already in [−1, 1]) and
  // the data-derived network sizes.
  auto data = make_data_source(cfg.data, data_options(cfg));
  std::unique_ptr<DataSource> images;  // latent runs: the images the latents were encoded from
  if (latent_ae) {
    if (!hooks.quiet && root)
      std::fprintf(stderr, "encoding the %lld images of %s with the autoencoder (once) …\n", (long long)data->size(),
                   cfg.data.c_str());
    auto z = encode_images(latent_ae, *data, cfg.autoencoder.scaling_factor, dev);
    images = std::move(data);
    data = make_latent_source(*images, z);
  }
  const auto shape = data->shape();
  const int64_t num_classes = cfg.class_conditional ? data->num_classes() : 0;
  if (cfg.class_conditional && num_classes < 1)
    throw Error("class_conditional needs labelled data, and '" + cfg.data + "' has no labels",
                "use fashion-mnist, or a folder:PATH with one subfolder per class or a labels.csv (diffuse data)");
  if (data->is_image()) {
    if (shape[1] != shape[2]) throw Error("images must be square (got " + std::to_string(shape[1]) + "×" +
                                          std::to_string(shape[2]) + ")");
    cfg.unet.in_channels = shape[0];
    cfg.unet.image_size = shape[1];
    cfg.unet.num_classes = num_classes;
    cfg.normalize = false;
    cfg.vae.in_channels = shape[0];
    cfg.vae.image_size = shape[1];
    if (cfg.model_kind == ModelKind::AutoencoderKL) {
      cfg.autoencoder.in_channels = cfg.autoencoder.out_channels = shape[0];
      cfg.autoencoder.sample_size = shape[1];
      validate(cfg.autoencoder);  // the image side must be a multiple of f
    }
  } else {
    cfg.model.dim = shape[0];
    cfg.model.num_classes = num_classes;
  }
  Normalizer norm;
  if (root && resume && saved.tensors.count("norm.mean")) {
    norm = {saved.tensors.at("norm.mean"), saved.tensors.at("norm.std")};
  } else if (cfg.normalize) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(mix_seed(cfg.seed, kNormalizerStream));
    norm = Normalizer::fit(data->all().defined() ? data->all() : data->sample(10000, g).x);
  }
  const NoiseSchedule schedule = make_schedule(cfg.schedule);

  // Memory layout (image U-Nets on the CPU): the faster of NCHW and channels-last for this
  // network and batch, timed now unless the config names one. The choice goes into config.json
  // and the checkpoints, so a resumed run keeps it: the two layouts sum convolutions in
  // different orders, and exact resume needs the same one.
  {
    const LayoutChoice choice = choose_layout(cfg, dev, cfg.batch / world);
    cfg.layout = choice.layout;
    if (choice.timed() && !hooks.quiet && root)
      std::fprintf(stderr, "layout %s: %.3f s/step in NCHW, %.3f s/step in channels-last (timed at start-up)\n",
                   to_string(choice.layout).c_str(), choice.nchw_s, choice.channels_last_s);
  }

  // Network, EMA copy, optimizer.
  torch::manual_seed(cfg.seed);
  Network net = make_network(cfg, dev), ema = make_network(cfg, dev);
  {
    torch::NoGradGuard g;
    auto src = net.module->parameters(), dst = ema.module->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  ema.module->eval();
  torch::optim::AdamW opt(net.module->parameters(),
                          torch::optim::AdamWOptions(cfg.lr)
                              .betas({cfg.adam_beta1, cfg.adam_beta2})
                              .weight_decay(cfg.weight_decay));
  if (root && resume) {
    get_module(saved.tensors, "model.", *net.module, ckpt);
    get_module(saved.tensors, "ema.", *ema.module, ckpt);
    get_optimizer(saved.tensors, opt, *net.module, dev);
  }
  if (dist) {
    broadcast_state(*dist, *net.module, *ema.module, opt, norm);
    dist->attach(net.module->parameters());
  }
  const bool vae = cfg.model_kind == ModelKind::Vae, autoencoder = cfg.model_kind == ModelKind::AutoencoderKL;
  std::unique_ptr<ModelDenoiser> denoiser;
  if (!vae && !autoencoder) denoiser = std::make_unique<ModelDenoiser>(net.forward, schedule, cfg.prediction);
  const double dims = double(c10::multiply_integers(shape));  // D: the VAE's loss is −ELBO / D

  const std::string log_path = run_dir + "/log.csv", plot_path = run_dir + "/loss.png";
  std::vector<LogRow> log;
  if (root) {
    write_file_atomic(run_dir + "/config.json", [&](std::ostream& o) { o << train_config_to_json(cfg); });
    if (resume) log = read_log(log_path, start_step);
  }

  auto save_checkpoint = [&](int64_t step) {
    std::map<std::string, torch::Tensor> t;
    put_module(t, "model.", *net.module);
    put_module(t, "ema.", *ema.module);
    put_optimizer(t, opt, *net.module);
    if (latent_ae) put_module(t, "autoencoder.", *latent_ae);
    if (norm.mean.defined()) {
      t["norm.mean"] = norm.mean;
      t["norm.std"] = norm.std;
    }
    // The log and its plot first: a kill between these writes leaves a log that runs ahead of
    // the checkpoint (resume drops the rows beyond its step), never one that lacks rows.
    write_log(log_path, log);
    plot_loss(plot_path, log);
    save_safetensors(ckpt, t, checkpoint_metadata(cfg, step, data->class_names()));
  };

  // Periodic sample grids (images): the EMA network, the same noise and classes every time, so
  // that the grids of successive steps show the progress of training.
  auto write_sample_grid = [&](int64_t step) {
    torch::NoGradGuard g;
    const int64_t n = cfg.sample_n;
    NoiseStream x_noise(cfg.seed, 0, n), step_noise(mix_seed(cfg.seed, 1), 0, n);
    torch::Tensor x;
    if (vae) {  // x = mean of p_θ(x | z), z ~ N(0, I)
      auto z = x_noise.randn({cfg.vae.latent_dim}, torch::TensorOptions().device(dev));
      x = vae_mean_image(cfg.vae.likelihood, ema.vae->decode(z)).cpu();
    } else if (autoencoder) {  // the first n training images over their reconstructions D(μ(x))
      auto orig = data->items(torch::arange(std::min(n, data->size()), torch::kLong)).x.to(dev);
      auto rec = ema.autoencoder->decode(ema.autoencoder->encode(orig).mean).clamp(-1, 1);
      const int64_t k = orig.size(0), row = std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(k)))));
      std::vector<torch::Tensor> rows;
      for (int64_t i = 0; i < k; i += row) {
        rows.push_back(orig.slice(0, i, std::min(k, i + row)));
        rows.push_back(rec.slice(0, i, std::min(k, i + row)));
      }
      x = torch::cat(rows).cpu();
    } else {
      ModelDenoiser ema_denoiser(ema.forward, schedule, cfg.prediction);
      auto x_T = x_noise.randn({shape[0], shape[1], shape[2]}, torch::TensorOptions().device(dev));
      Conditioning c;
      if (num_classes > 0) c.labels = (torch::arange(n, torch::kLong) % num_classes).to(dev);
      x = sample(ema_denoiser, x_T, SamplerConfig{}, step_noise, {}, c);
      if (latent_ae) x = decode_latents(latent_ae, x, cfg.autoencoder.scaling_factor);
      x = x.cpu();
    }
    if (!root) return;  // every rank draws the grid (they would wait anyway); rank 0 writes it
    ensure_dir(run_dir + "/samples");
    char name[40];
    std::snprintf(name, sizeof name, "/samples/step_%07lld.png", (long long)step);
    const int64_t nrow = num_classes > 0 ? std::min(n, num_classes) : int64_t(std::ceil(std::sqrt(double(n))));
    write_picture(run_dir + name, make_grid(to_uint8(x), nrow, 2), cfg.picture_scale);
    if (!hooks.quiet) std::fprintf(stderr, "\nwrote %s%s\n", run_dir.c_str(), name);
  };
  const bool grids = data->is_image() && cfg.sample_every > 0;

  Progress progress("step", cfg.steps, start_step, cfg.log_every, hooks.quiet || !root);
  const int64_t local = cfg.batch / world;  // rows of the global batch this rank trains on
  auto mine = [&](const torch::Tensor& x) { return world > 1 ? x.narrow(0, rank * local, local) : x; };
  auto params = net.module->parameters();
  auto ema_params = ema.module->parameters();
  double interval_loss = 0, interval_gn = 0, last_loss = NAN;
  int64_t interval_n = 0, step = start_step;
  net.module->train();
  while (step < cfg.steps) {
    const double lr = lr_at(cfg, step);
    for (auto& group : opt.param_groups()) group.options().set_lr(lr);
    // All randomness of this step from one generator: resumable without RNG state.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(cfg.seed, uint64_t(step)));
    // Distributed: the global batch is drawn on every rank and each takes its rows; the
    // network's own randomness (dropout) gets a stream per rank.
    const uint64_t net_seed = mix_seed(cfg.seed ^ 0x5eedULL, uint64_t(step));
    torch::manual_seed(rank == 0 ? net_seed : mix_seed(net_seed, uint64_t(rank)));
    DataBatch b = data->sample(cfg.batch, gen);
    auto x0 = norm.encode(b.x);
    torch::Tensor loss;
    double kl_v = 0;  // VAE: the batch's mean KL(q(z|x) ‖ p(z)) per dimension, shown in the progress line
    opt.zero_grad();
    if (vae) {
      // −ELBO per dimension (nats/dim), z = μ + σ ⊙ ε with ε from this step's generator.
      auto eps = torch::randn({cfg.batch, cfg.vae.latent_dim}, gen, torch::dtype(torch::kFloat32));
      x0 = mine(x0).to(dev);
      eps = mine(eps).to(dev);
      auto terms = vae_elbo(net.vae, x0, eps);
      loss = -terms.elbo.mean() / dims;
      kl_v = terms.kl.mean().item<double>() / dims;
    } else if (autoencoder) {
      // MSE + kl_weight · KL per pixel element, z = μ + σ ⊙ ε with ε from this step's generator.
      const int64_t f = downsample_factor(cfg.autoencoder), side = shape[1] / f;
      auto eps = torch::randn({cfg.batch, cfg.autoencoder.latent_channels, side, side}, gen, torch::dtype(torch::kFloat32));
      x0 = mine(x0).to(dev);
      eps = mine(eps).to(dev);
      auto terms = autoencoder_kl_loss(net.autoencoder, x0, eps, cfg.kl_weight);
      loss = terms.loss;
      kl_v = terms.kl.item<double>();
    } else {
      auto t = torch::randint(0, schedule.T(), {cfg.batch}, gen, torch::dtype(torch::kLong));
      auto noise = torch::randn(x0.sizes(), gen, torch::dtype(torch::kFloat32));
      x0 = mine(x0).to(dev);
      t = mine(t).to(dev);
      noise = mine(noise).to(dev);
      Conditioning cond;
      if (num_classes > 0) {  // label dropout: y → ∅ (index num_classes) with p = label_dropout
        auto drop = torch::rand({cfg.batch}, gen, torch::dtype(torch::kFloat32)) < cfg.label_dropout;
        cond.labels = mine(torch::where(drop, torch::full_like(b.labels, num_classes), b.labels)).to(dev);
      }
      loss = denoiser->loss(x0, t, noise, cfg.loss, cond);
    }
    double loss_v = loss.item<double>();
    bool stop_all = false;  // distributed: some rank asked to stop after this step
    if (dist) {
      dist->begin_step();
      loss.backward();
      dist->finish_gradients();
      const bool stop_me = (hooks.stop && hooks.stop->load()) || (hooks.stop_after && hooks.stop_after(step + 1));
      auto v = torch::tensor({loss_v, stop_me ? 1.0 : 0.0}, torch::kFloat64);
      dist->allreduce_sum(v);
      loss_v = v[0].item<double>() / double(world);
      stop_all = v[1].item<double>() > 0;
    }
    if (!std::isfinite(loss_v)) {
      const bool have = std::filesystem::exists(ckpt);
      throw Error("the loss became " + std::string(std::isnan(loss_v) ? "NaN" : "infinite") +
                      " at step " + std::to_string(step + 1) + "; training stopped",
                  (have ? "the last good checkpoint is kept at '" + ckpt + "'. " : "no checkpoint was written yet. ") +
                      "Start a new run with a lower --lr or a longer warmup (config key 'warmup'), "
                      "or check the data for extreme values");
    }
    if (!dist) loss.backward();
    double gn = 0;
    if (cfg.grad_clip > 0) gn = torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    opt.step();
    ++step;
    {  // EMA with warm-up: decay = min(ema_decay, (1 + s)/(10 + s)).
      torch::NoGradGuard g;
      const double d = std::min(cfg.ema_decay, (1.0 + double(step)) / (10.0 + double(step)));
      for (size_t i = 0; i < params.size(); ++i) ema_params[i].mul_(d).add_(params[i].detach(), 1.0 - d);
    }
    interval_loss += loss_v;
    interval_gn += gn;
    ++interval_n;
    char extra[96];
    if (vae)
      std::snprintf(extra, sizeof extra, "-elbo %.4f nats/dim (kl %.4f) lr %.2e", loss_v, kl_v, lr);
    else if (autoencoder)
      std::snprintf(extra, sizeof extra, "loss %.5f (kl %.3f nats/dim) lr %.2e", loss_v, kl_v, lr);
    else
      std::snprintf(extra, sizeof extra, "loss %.4f lr %.2e", loss_v, lr);
    progress.update(step, extra);
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      last_loss = interval_loss / double(interval_n);
      log.push_back({step, last_loss, lr, interval_gn / double(interval_n), progress.rate(),
                     progress.elapsed()});
      interval_loss = interval_gn = 0;
      interval_n = 0;
    }
    const bool stop = dist ? stop_all
                           : (hooks.stop && hooks.stop->load()) || (hooks.stop_after && hooks.stop_after(step));
    if (autoencoder && root && step == cfg.steps) {
      // The latent scale factor (Rombach et al. §4.3.2) of the EMA weights, into the config
      // and the checkpoint saved next, and the weights in diffusers' layout under RUN/vae/.
      cfg.autoencoder.scaling_factor = measure_latent_scale(ema.autoencoder, *data, dev);
      write_file_atomic(run_dir + "/config.json", [&](std::ostream& o) { o << train_config_to_json(cfg); });
      export_diffusers_autoencoder(run_dir + "/vae", ema.autoencoder, cfg.autoencoder);
      if (!hooks.quiet)
        std::fprintf(stderr, "\nlatent scale factor %.5f (1 / std of the latents of %lld images); wrote %s/vae/\n",
                     cfg.autoencoder.scaling_factor, (long long)std::min<int64_t>(data->size(), 10000),
                     run_dir.c_str());
    }
    if (root && (step % cfg.checkpoint_every == 0 || step == cfg.steps || stop)) save_checkpoint(step);
    if (grids && (step % cfg.sample_every == 0 || step == cfg.steps)) write_sample_grid(step);
    if (stop && step < cfg.steps) {
      if (dist) dist->barrier();  // no rank leaves before rank 0 saved
      progress.finish("stopped; checkpoint saved");
      return {TrainStatus::Stopped, step, last_loss, allreduce_ms(dist)};
    }
  }
  if (dist) dist->barrier();
  progress.finish("done");
  return {TrainStatus::Finished, step, last_loss, allreduce_ms(dist)};
}

}  // namespace

}  // namespace diffuse
