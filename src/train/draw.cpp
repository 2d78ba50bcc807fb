// Drawing samples from a trained run, and recording the reverse process (see draw.hpp).
#include "diffuse/draw.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"

namespace diffuse {

StepPick every_nth_step(int64_t count, int64_t limit) {
  if (count < 1 || limit < 0) throw Error("every_nth_step: count must be >= 1 and limit >= 0");
  return [count, limit](int64_t step, int64_t total) {
    if (step + 1 == total) return true;
    const int64_t e = std::max<int64_t>(1, total / count), k = (step + 1) / e;  // the k-th pick
    return (step + 1) % e == 0 && (limit == 0 || k <= limit);
  };
}

StepPick at_fractions(std::vector<double> fractions) {
  for (double f : fractions)
    if (!(f > 0 && f <= 1)) throw Error("at_fractions: every fraction must be in (0, 1]");
  return [fractions = std::move(fractions)](int64_t step, int64_t total) {
    for (double f : fractions)
      if (step == std::max<int64_t>(0, int64_t(std::lround(f * double(total))) - 1)) return true;
    return false;
  };
}

ChainRecorder::ChainRecorder(int64_t rows, StepPick pick) : rows_(rows), pick_(std::move(pick)) {
  if (rows < 1 || !pick_) throw Error("ChainRecorder: rows must be >= 1 and pick given");
}

void ChainRecorder::start(const torch::Tensor& x_T) {
  snapshots_.push_back({-1, 0, std::numeric_limits<double>::quiet_NaN(), x_T.slice(0, 0, rows_).cpu()});
}

void ChainRecorder::step(const StepInfo& s) {
  if (pick_(s.step, s.total)) snapshots_.push_back({s.step, s.total, s.t, s.x.slice(0, 0, rows_).cpu()});
}

std::vector<torch::Tensor> ChainRecorder::states() const {
  std::vector<torch::Tensor> x;
  for (const auto& s : snapshots_) x.push_back(s.x);
  return x;
}

torch::Tensor labels_in_proportion(const std::vector<double>& weights, int64_t num_classes, int64_t n) {
  if (int64_t(weights.size()) != num_classes)
    throw Error("class weights: " + std::to_string(weights.size()) + " given for " + std::to_string(num_classes) +
                " classes");
  double total = 0;
  for (double w : weights) {
    if (!(w >= 0) || !std::isfinite(w)) throw Error("class weights must be finite and >= 0");
    total += w;
  }
  if (!(total > 0)) throw Error("class weights: at least one must be > 0");
  std::vector<int64_t> count(num_classes, 0);
  auto out = torch::empty({n}, torch::kLong);
  auto* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    double best_deficit = -1e300;
    for (int64_t c = 0; c < num_classes; ++c) {  // w_c (i + 1) − n_c: how far class c is behind its share
      const double deficit = weights[c] / total * double(i + 1) - double(count[c]);
      if (deficit > best_deficit + 1e-12) best = c, best_deficit = deficit;
    }
    ++count[best];
    o[i] = best;
  }
  return out;
}

Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const DrawHooks& hooks) {
  if (cfg.n < 1 || cfg.batch < 1) throw Error("the number of samples and the batch must be >= 1");
  if (run.is_autoencoder()) run.diffusion("drawing samples");  // the error naming the run and what to do
  if (!cfg.seeds.empty() && int64_t(cfg.seeds.size()) != cfg.n)
    throw Error("draw_samples: " + std::to_string(cfg.seeds.size()) + " seeds for " + std::to_string(cfg.n) + " samples");
  const bool image = is_image_spec(run.config.data);
  const std::vector<int64_t> shape =
      image ? std::vector<int64_t>{run.config.unet.in_channels, run.config.unet.image_size, run.config.unet.image_size}
            : std::vector<int64_t>{run.config.model.dim};
  const int64_t num_classes = image ? run.config.unet.num_classes : run.config.model.num_classes;
  if (cfg.fixed_class >= num_classes)
    throw Error("class " + std::to_string(cfg.fixed_class) + " does not exist",
                num_classes > 0 ? "classes are 0 … " + std::to_string(num_classes - 1) : "the run is unconditional");
  torch::Tensor proportional;  // the labels of all n samples, with class_weights
  if (num_classes > 0 && cfg.fixed_class < 0 && !cfg.class_weights.empty())
    proportional = labels_in_proportion(cfg.class_weights, num_classes, cfg.n);
  std::vector<torch::Tensor> parts, labels;
  if (run.is_vae()) {
    // A VAE draws x = mean of p_θ(x | z), z ~ N(0, I): one decoder call, no reverse process.
    // z of sample i comes from NoiseStream(seed, i) (or seeds[i]), as x_T does for diffusion.
    torch::NoGradGuard no_grad;
    const int64_t latent = run.config.vae.latent_dim;
    for (int64_t first = 0; first < cfg.n; first += cfg.batch) {
      const int64_t b = std::min(cfg.batch, cfg.n - first);
      std::vector<uint64_t> batch_seeds(cfg.seeds.begin() + (cfg.seeds.empty() ? 0 : first),
                                        cfg.seeds.begin() + (cfg.seeds.empty() ? 0 : first + b));
      NoiseStream noise = cfg.seeds.empty() ? NoiseStream(cfg.seed, first, b) : NoiseStream::per_seed(batch_seeds);
      auto z = noise.randn({latent}, torch::TensorOptions().device(device));
      auto x = vae_mean_image(run.config.vae.likelihood, run.network.vae.ptr()->decode(z)).cpu();
      if (hooks.on_batch) hooks.on_batch(first, x, {});
      if (hooks.keep_samples) parts.push_back(x);
    }
    if (!hooks.keep_samples) return {};
    return {torch::cat(parts), {}};
  }
  GuidedDenoiser guided(*run.denoiser, cfg.guidance, num_classes);
  const Denoiser& denoiser = num_classes > 0 ? static_cast<const Denoiser&>(guided) : *run.denoiser;
  for (int64_t first = 0; first < cfg.n; first += cfg.batch) {
    const int64_t b = std::min(cfg.batch, cfg.n - first);
    std::vector<uint64_t> batch_seeds, step_seeds;  // with cfg.seeds
    if (!cfg.seeds.empty())
      for (int64_t i = first; i < first + b; ++i) {
        batch_seeds.push_back(cfg.seeds[size_t(i)]);
        step_seeds.push_back(mix_seed(cfg.seeds[size_t(i)], 1));
      }
    NoiseStream noise = cfg.seeds.empty() ? NoiseStream(cfg.seed, first, b) : NoiseStream::per_seed(batch_seeds);
    auto x_T = noise.randn(shape, torch::TensorOptions().device(device));
    Conditioning cond;
    torch::Tensor batch_labels;
    if (num_classes > 0) {
      batch_labels = cfg.fixed_class >= 0   ? torch::full({b}, cfg.fixed_class, torch::kLong)
                     : proportional.defined() ? proportional.slice(0, first, first + b)
                                              : torch::arange(first, first + b, torch::kLong) % num_classes;
      cond.labels = batch_labels.to(device);
    }
    const bool record = first == 0 && !hooks.chains.empty();
    if (record)
      for (auto* c : hooks.chains) c->start(x_T);
    StepCallback cb;
    if (record || hooks.on_step)
      cb = [&](const StepInfo& s) {
        if (record)
          for (auto* c : hooks.chains) c->step(s);
        if (hooks.on_step) hooks.on_step(first, s);
      };
    NoiseStream step_noise =
        cfg.seeds.empty() ? NoiseStream(mix_seed(cfg.seed, 1), first, b) : NoiseStream::per_seed(step_seeds);
    auto x = run.to_pixels(sample(denoiser, x_T, cfg.sampler, step_noise, cb, cond)).cpu();
    if (hooks.on_batch) hooks.on_batch(first, x, batch_labels);
    if (hooks.keep_samples) {
      parts.push_back(x);
      if (batch_labels.defined()) labels.push_back(batch_labels);
    }
  }
  if (!hooks.keep_samples) return {};
  return {torch::cat(parts), labels.empty() ? torch::Tensor() : torch::cat(labels)};
}

Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const std::function<void(int64_t)>& on_batch) {
  DrawHooks hooks;
  if (on_batch) hooks.on_batch = [&](int64_t first, const torch::Tensor& x, const torch::Tensor&) {
    on_batch(first + x.size(0));
  };
  return draw_samples(run, cfg, device, hooks);
}

}  // namespace diffuse
