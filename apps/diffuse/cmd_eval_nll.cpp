// diffuse eval nll: the variational bound on the negative log-likelihood of a trained run
// (Ho et al. 2020, Table 1; Nichol & Dhariwal 2021): bits/dim on 8-bit image data,
// nats/dim on vector data. The terms are computed in src/eval/likelihood.cpp.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/likelihood.hpp"
#include "diffuse/nn/vae.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/plot.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {
namespace {

constexpr int64_t kNllDefaultImages = 100;    // --n for image runs
constexpr int64_t kNllDefaultVectors = 2000;  // --n for vector runs

// The data to evaluate, in the model's space.
struct NllData {
  torch::Tensor x;       // (n, ...) float32; images on the 8-bit grid of [−1, 1]
  torch::Tensor labels;  // (n) int64 for class-conditional runs, else undefined
  std::string description;
};

NllData nll_images(const LoadedRun& run, const std::string& split, bool split_given, int64_t n) {
  const std::string& spec = run.config.data;
  LabeledImages d;
  std::string where;
  if (spec.rfind("fashion-mnist", 0) == 0) {
    d = load_fashion_mnist(run.config.data_dir, split);
    where = "the Fashion-MNIST " + split + " split";
  } else if (spec.rfind("emoji", 0) == 0) {  // the run's filters (:color …), the asked split
    EmojiOptions eo = parse_emoji_spec(spec);
    eo.split = split;
    eo.image_size = run.config.unet.image_size;
    eo.background = run.config.background;
    auto e = load_emoji(eo);
    d.images = e.images;
    d.labels = e.labels;
    where = "the emoji " + split + " split";
  } else {
    if (split_given) throw Error("--split applies to Fashion-MNIST and emoji runs", spec + " has no test split");
    d = load_image_folder(spec.substr(7), run.config.unet.image_size, run.config.unet.in_channels);
    where = spec + " (the training images)";
  }
  if (n > d.images.size(0))
    throw Error("--n " + std::to_string(n) + " but " + where + " holds " + std::to_string(d.images.size(0)) +
                " images");
  NllData r;
  // x = u/127.5 − 1: the map of the image sources (src/data/image_source.cpp); images are never standardised.
  r.x = d.images.slice(0, 0, n).to(torch::kFloat32) / 127.5 - 1.0;
  if (run.config.unet.num_classes > 0) r.labels = d.labels.slice(0, 0, n);
  r.description = "the first " + std::to_string(n) + " images of " + where;
  return r;
}

NllData nll_vectors(const LoadedRun& run, int64_t n, uint64_t seed) {
  DataOptions dopt;
  dopt.data_dir = run.config.data_dir;
  auto src = make_data_source(run.config.data, dopt);
  auto g = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 2));
  auto batch = src->sample(n, g);
  NllData r;
  r.x = run.normalizer.encode(batch.x);
  if (run.config.model.num_classes > 0) {
    if (!batch.labels.defined()) throw Error(run.config.data + " gives no labels for the class-conditional run");
    r.labels = batch.labels;
  }
  r.description = std::to_string(n) + " fresh draws from " + run.config.data;
  return r;
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous().cpu();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The per-t terms (mean over the data that drew each t) and, for the exact sum, their
// running sum (with Monte-Carlo draws many t are missing, so there is no curve to sum).
void save_nll_plot(const std::string& path, const std::vector<double>& per_t, const std::string& unit,
                   const std::string& title, bool exact) {
  plot::Figure fig;
  fig.title = title;
  std::vector<double> t(per_t.size()), cum(per_t.size());
  double acc = 0;
  for (size_t i = 0; i < per_t.size(); ++i) {
    t[i] = double(i);
    if (std::isfinite(per_t[i])) acc += per_t[i];
    cum[i] = acc;
  }
  plot::Panel a;
  a.title = "term of each timestep (t = 0: L_0; log scale, > 0 only)";
  a.xlabel = "t";
  a.ylabel = unit;
  a.logy = true;
  std::vector<double> pos(per_t);
  for (double& v : pos)
    if (!(v > 0)) v = std::nan("");
  a.series.push_back({t, pos, "", exact ? plot::SeriesStyle::Line : plot::SeriesStyle::Points});
  a.legend = false;
  if (!exact) a.title = "term of each drawn timestep (t = 0: L_0; > 0 only)";
  plot::Panel b;
  b.title = "sum of the terms up to t (without L_T)";
  b.xlabel = "t";
  b.ylabel = unit;
  b.series.push_back({t, cum, "", plot::SeriesStyle::Line});
  b.legend = false;
  fig.panels = {a};
  if (exact) fig.panels.push_back(b);
  fig.width = exact ? 1000 : 720;
  fig.height = 400;
  plot::save_png(fig, path);
}

// Seed 003's bounds for a VAE run, in the units of the diffusion bound (nats per image and
// bits/dim of the same 8-bit data): the negative ELBO (one z ~ q(z|x) per image, its KL in
// closed form) and the negative IWAE bound with k samples (Burda et al. 2016), the tighter one.
void eval_vae_nll(const LoadedRun& run, const NllData& data, int64_t iwae_k, int64_t batch, uint64_t seed,
                  const std::string& out, const std::string& run_dir, const std::string& weights,
                  const torch::Device& dev) {
  torch::NoGradGuard no_grad;
  const int64_t n = data.x.size(0), dims = data.x[0].numel(), latent = run.config.vae.latent_dim;
  const VaeLikelihood lik = run.config.vae.likelihood;
  std::printf("NLL bounds of %s under the VAE %s (step %lld, %s weights, %s likelihood): ELBO and IWAE with k = %lld\n",
              data.description.c_str(), run_dir.c_str(), (long long)run.step, weights.c_str(), to_string(lik).c_str(),
              (long long)iwae_k);
  std::fflush(stdout);
  Progress progress("images", n, 0, std::min(batch, n));
  std::vector<torch::Tensor> elbo, rec, kl, iwae;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t b = std::min(batch, n - first);
    auto x = data.x.slice(0, first, first + b).to(dev);
    // The noise of image i depends only on (seed, i): any --batch gives the same numbers.
    auto e1 = NoiseStream(mix_seed(seed, 3), first, b).randn({latent}).to(dev);
    auto ek = NoiseStream(mix_seed(seed, 4), first, b).randn({iwae_k, latent}).transpose(0, 1).contiguous().to(dev);
    ConvVae vae = run.network.vae;  // a handle on the run's network (vae_elbo takes it by reference)
    auto terms = vae_elbo(vae, x, e1);
    elbo.push_back(terms.elbo.cpu());
    rec.push_back(terms.reconstruction.cpu());
    kl.push_back(terms.kl.cpu());
    iwae.push_back(vae_iwae(vae, x, ek).cpu());
    progress.update(first + b);
  }
  progress.finish();
  auto cat = [](const std::vector<torch::Tensor>& v) { return torch::cat(v).to(torch::kFloat64); };
  const auto nelbo = -cat(elbo), niwae = -cat(iwae), nrec = -cat(rec), kls = cat(kl);
  const double to_bpd = 1.0 / (double(dims) * std::log(2.0));
  auto mean = [](const torch::Tensor& v) { return v.mean().item<double>(); };
  auto sem = [&](const torch::Tensor& v) { return n > 1 ? v.std().item<double>() / std::sqrt(double(n)) : 0.0; };
  nlohmann::json j;
  j["run"] = run_dir;
  j["model_kind"] = "vae";
  j["step"] = run.step;
  j["weights"] = weights;
  j["data"] = run.config.data;
  j["evaluated_on"] = data.description;
  j["n"] = n;
  j["dims"] = dims;
  j["likelihood"] = to_string(lik);
  j["data_measured"] = lik == VaeLikelihood::Bernoulli ? "binarized (pixel >= 128)" : "8-bit";
  j["iwae_k"] = iwae_k;
  j["seed"] = seed;
  j["neg_elbo_nats"] = mean(nelbo);
  j["neg_elbo_nats_stderr"] = sem(nelbo);
  j["neg_iwae_nats"] = mean(niwae);
  j["neg_iwae_nats_stderr"] = sem(niwae);
  j["reconstruction_nats"] = mean(nrec);  // −E_q log p(x|z), one sample
  j["kl_nats"] = mean(kls);
  j["neg_elbo_bits_per_dim"] = mean(nelbo) * to_bpd;
  j["neg_iwae_bits_per_dim"] = mean(niwae) * to_bpd;
  j["unit"] = "bits/dim";
  j["bound"] = mean(niwae) * to_bpd;  // the tighter bound, comparable to a diffusion run's "bound"
  j["seconds"] = progress.elapsed();
  std::printf("  -ELBO        %.2f ± %.2f nats/image = %.4f bits/dim (reconstruction %.2f + KL %.2f nats)\n",
              mean(nelbo), sem(nelbo), mean(nelbo) * to_bpd, mean(nrec), mean(kls));
  std::printf("  -IWAE (k=%lld) %.2f ± %.2f nats/image = %.4f bits/dim (the tighter bound)\n", (long long)iwae_k,
              mean(niwae), sem(niwae), mean(niwae) * to_bpd);
  std::printf("  %s data, %lld dims per image; %s\n", j["data_measured"].get<std::string>().c_str(), (long long)dims,
              format_duration(progress.elapsed()).c_str());
  write_file_atomic(out + "/nll.json", [&](std::ostream& f) { f << j.dump(2) << "\n"; });
  std::printf("wrote %s/nll.json\n", out.c_str());
}

}  // namespace

void add_eval_nll(CLI::App& eval) {
  struct Opts {
    std::string run, out, split = "test", weights = "ema", device = "auto";
    std::string variance = to_string(LikelihoodConfig{}.variance);
    int64_t n = 0, batch = 0, t_samples = LikelihoodConfig{}.t_samples, threads = 0, iwae_k = 64;
    double clip_x0 = 0;
    uint64_t seed = LikelihoodConfig{}.seed;
    CLI::Option *split_opt = nullptr, *clip_opt = nullptr, *t_opt = nullptr, *variance_opt = nullptr, *k_opt = nullptr;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = eval.add_subcommand("nll", "variational bound on the negative log-likelihood (bits/dim, nats/dim)");
  cmd->add_option("--run", o->run, "run folder written by 'diffuse train'")->required();
  cmd->add_option("--n", o->n,
                  "data to evaluate (default " + std::to_string(kNllDefaultImages) + " test images, " +
                      std::to_string(kNllDefaultVectors) + " vectors)");
  o->t_opt = cmd->add_option("--t-samples", o->t_samples,
                  "0: exact sum over all T steps; K: unbiased Monte-Carlo estimate, one t in each of K strata")
      ->capture_default_str();
  o->variance_opt = cmd->add_option("--variance", o->variance, "reverse variance σ_t²: beta-tilde (β̃_t) or beta (β_t)")
      ->capture_default_str();
  o->k_opt = cmd->add_option("--iwae-k", o->iwae_k, "VAE runs: samples of the importance-weighted bound (IWAE)")
      ->capture_default_str();
  o->clip_opt = cmd->add_option("--clip-x0", o->clip_x0,
                                "clamp x̂₀ to [−X, X], 0: off (default 1 for images, 0 for vectors)");
  o->split_opt = cmd->add_option("--split", o->split, "images: test or train split (Fashion-MNIST, emoji)")
                     ->capture_default_str();
  cmd->add_option("--batch", o->batch, "data evaluated at once (default 50 images, 1000 vectors)");
  cmd->add_option("--seed", o->seed, "seed of the noise (and of the vector data and MC timesteps)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "folder for nll.json and nll.png (default RUN_DIR/eval)");
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)
      ->capture_default_str();
  cmd->callback([o] {
    if (o->n < 0 || o->batch < 0) throw Error("--n and --batch must be >= 1 (0: the default)");
    if (o->threads < 0) throw Error("--threads must be >= 0", kThreadsHelp);
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    if (o->split != "test" && o->split != "train")
      throw Error("--split must be test or train, got '" + o->split + "'");
    LikelihoodConfig cfg;
    cfg.variance = parse_ddpm_variance(o->variance);
    cfg.t_samples = quick_t_samples(o->t_samples);
    cfg.seed = o->seed;
    auto run = load_run(o->run, o->weights == "ema", o->device);
    const torch::Device dev = resolve_device(o->device);
    const bool image = is_image_spec(run.config.data);
    if (!image && given(o->split_opt))
      throw Error("--split applies to image runs", "vector runs draw fresh data from the run's data spec (" +
                                                        run.config.data + ")");
    set_intra_op_threads(o->threads, image);
    if (run.is_vae()) {
      for (auto* x : {o->t_opt, o->variance_opt, o->clip_opt})
        if (given(x)) throw Error(x->get_name() + " applies to diffusion runs", o->run + " is a VAE run: its bounds are the ELBO and IWAE (--iwae-k)");
      if (o->iwae_k < 1 || o->iwae_k > 100000) throw Error("--iwae-k must be in 1 … 100000");
      const int64_t n = quick_n(o->n > 0 ? o->n : kNllDefaultImages);
      NllData data = nll_images(run, o->split, given(o->split_opt), n);
      if (o->out.empty()) o->out = o->run + "/eval";
      ensure_dir(o->out);
      eval_vae_nll(run, data, o->iwae_k, o->batch > 0 ? o->batch : 50, o->seed, o->out, o->run, o->weights, dev);
      return;
    }
    if (given(o->k_opt)) throw Error("--iwae-k applies to VAE runs", o->run + " is a diffusion run");
    cfg.decoder = image ? DecoderKind::Discretized8Bit : DecoderKind::Continuous;
    cfg.clip_x0 = given(o->clip_opt) ? o->clip_x0 : (image ? 1.0 : 0.0);
    const NoiseSchedule& schedule = run.diffusion("eval nll").schedule();
    if (run.is_latent())
      throw Error(o->run + " is a latent diffusion run: its bound would be on the latents, not the images",
                  "eval nll measures pixel-space diffusion runs and VAE runs");
    validate(cfg, schedule);
    const int64_t n = quick_n(o->n > 0 ? o->n : (image ? kNllDefaultImages : kNllDefaultVectors));
    const int64_t batch = o->batch > 0 ? o->batch : (image ? 50 : 1000);
    NllData data = image ? nll_images(run, o->split, given(o->split_opt), n) : nll_vectors(run, n, o->seed);
    if (o->out.empty()) o->out = o->run + "/eval";
    ensure_dir(o->out);

    // The bound, batch by batch.
    const int64_t per_datum = bound_calls_per_datum(schedule, cfg);
    const int64_t T = schedule.T();
    std::printf("NLL bound of %s under %s (step %lld, %s weights): %s, %lld network calls per datum\n",
                data.description.c_str(), o->run.c_str(), (long long)run.step, o->weights.c_str(),
                cfg.t_samples == 0 ? ("exact sum over T = " + std::to_string(T) + " steps").c_str()
                                   : ("stratified Monte-Carlo over t, " + std::to_string(cfg.t_samples) +
                                      " strata of the " + std::to_string(T - 1) + " KL terms")
                                         .c_str(),
                (long long)per_datum);
    std::fflush(stdout);
    // Progress in datum × network calls; without a terminal, a line about every 10% of a batch.
    Progress progress("network calls × data", n * per_datum, 0,
                      std::min(batch, n) * std::max<int64_t>(1, per_datum / 10));
    std::vector<VariationalBound> parts;
    for (int64_t first = 0; first < n; first += batch) {
      const int64_t b = std::min(batch, n - first);
      Conditioning cond;
      if (data.labels.defined()) cond.labels = data.labels.slice(0, first, first + b).to(dev);
      auto x0 = data.x.slice(0, first, first + b).to(dev);
      parts.push_back(variational_bound(*run.denoiser, cfg, x0, cond, first,
                                        [&](int64_t calls) { progress.update(first * per_datum + calls * b); }));
    }
    progress.finish();
    const VariationalBound all = concat(parts);

    // Units: bits/dim for 8-bit images, nats/dim for vectors.
    const double unit = image ? 1.0 / std::log(2.0) : 1.0;
    const std::string unit_name = image ? "bits/dim" : "nats/dim";
    auto mean = [&](const torch::Tensor& v) { return v.mean().item<double>() * unit; };
    const double bound = mean(all.total);
    const double stderr_ = n > 1 ? all.total.std().item<double>() * unit / std::sqrt(double(n)) : 0.0;
    auto per_t_t = torch::nanmean(all.terms, 0) * unit;
    std::vector<double> per_t = to_doubles(per_t_t);
    const int64_t dims = data.x[0].numel();

    nlohmann::json j;
    j["run"] = o->run;
    j["step"] = run.step;
    j["weights"] = o->weights;
    j["data"] = run.config.data;
    j["evaluated_on"] = data.description;
    j["n"] = n;
    j["dims"] = dims;
    j["conditioning"] = data.labels.defined() ? "the data's true labels" : "none (unconditional run)";
    j["T"] = T;
    j["decoder"] = to_string(cfg.decoder);
    j["variance"] = to_string(cfg.variance);
    j["clip_x0"] = cfg.clip_x0;
    j["estimator"] = cfg.t_samples == 0 ? "exact sum over t" : "unbiased stratified Monte-Carlo estimate over t";
    j["t_samples"] = cfg.t_samples;
    j["network_calls_per_datum"] = per_datum;
    j["seed"] = o->seed;
    j["unit"] = unit_name;
    j["bound"] = bound;
    j["bound_stderr"] = stderr_;
    j["L_T"] = mean(all.prior);
    j["sum_L_t_minus_1"] = mean(all.kl);
    j["L_0"] = mean(all.decoder);
    j["per_t"] = per_t;
    if (cfg.t_samples > 0) {
      auto counts = torch::isnan(all.terms).logical_not().sum(0);
      std::vector<int64_t> c(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) c[size_t(t)] = counts[t].item<int64_t>();
      j["per_t_count"] = c;
    }
    double log_scale = 0;
    if (!image) {
      // −log p_data(x) = −log p_model((x − m)/s) + Σ_d log s_d: the normaliser's Jacobian.
      if (run.normalizer.std.defined()) log_scale = run.normalizer.std.to(torch::kFloat64).log().mean().item<double>();
      j["normalizer_mean_log_std"] = log_scale;
      j["bound_data_units"] = bound + log_scale;
    }
    j["seconds"] = progress.elapsed();

    std::printf("  bound       %.4f ± %.4f %s%s\n", bound, stderr_, unit_name.c_str(),
                image ? " (8-bit data)" : " (model's standardised space)");
    if (!image)
      std::printf("  bound       %.4f %s in data units (+ mean log std of the normaliser, %.4f)\n", bound + log_scale,
                  unit_name.c_str(), log_scale);
    std::printf("  L_T         %.6f\n  Σ L_{t−1}   %.6f%s\n  L_0         %.6f\n", mean(all.prior), mean(all.kl),
                cfg.t_samples > 0 ? " (Monte-Carlo estimate)" : "", mean(all.decoder));
    std::printf("  conditioning: %s; %s decoder, σ_t² = %s, x̂₀ clip %s; %s\n",
                j["conditioning"].get<std::string>().c_str(), to_string(cfg.decoder).c_str(),
                to_string(cfg.variance).c_str(), cfg.clip_x0 > 0 ? std::to_string(cfg.clip_x0).c_str() : "off",
                format_duration(progress.elapsed()).c_str());
    write_file_atomic(o->out + "/nll.json", [&](std::ostream& f) { f << j.dump(2) << "\n"; });
    save_nll_plot(o->out + "/nll.png", per_t, unit_name,
                  "variational bound per timestep, " + run.config.data + " (" + std::to_string(n) + " data)",
                  cfg.t_samples == 0);
    std::printf("wrote %s/nll.json and %s/nll.png\n", o->out.c_str(), o->out.c_str());
  });
}

}  // namespace diffuse::cli
