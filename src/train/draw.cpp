// Drawing samples from a trained run (see draw.hpp).
#include "diffuse/draw.hpp"

#include <torch/torch.h>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"

namespace diffuse {

Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const std::function<void(int64_t)>& on_batch) {
  if (cfg.n < 1 || cfg.batch < 1) throw Error("the number of samples and the batch must be >= 1");
  const bool image = is_image_spec(run.config.data);
  const std::vector<int64_t> shape =
      image ? std::vector<int64_t>{run.config.unet.in_channels, run.config.unet.image_size, run.config.unet.image_size}
            : std::vector<int64_t>{run.config.model.dim};
  const int64_t num_classes = image ? run.config.unet.num_classes : run.config.model.num_classes;
  if (cfg.fixed_class >= num_classes)
    throw Error("class " + std::to_string(cfg.fixed_class) + " does not exist",
                num_classes > 0 ? "classes are 0 … " + std::to_string(num_classes - 1) : "the run is unconditional");
  GuidedDenoiser guided(*run.denoiser, cfg.guidance, num_classes);
  const Denoiser& denoiser = num_classes > 0 ? static_cast<const Denoiser&>(guided) : *run.denoiser;
  std::vector<torch::Tensor> parts, labels;
  for (int64_t first = 0; first < cfg.n; first += cfg.batch) {
    const int64_t b = std::min(cfg.batch, cfg.n - first);
    NoiseStream noise(cfg.seed, first, b);
    auto x_T = noise.randn(shape, torch::TensorOptions().device(device));
    Conditioning cond;
    if (num_classes > 0) {
      cond.labels = cfg.fixed_class >= 0 ? torch::full({b}, cfg.fixed_class, torch::kLong)
                                         : torch::arange(first, first + b, torch::kLong) % num_classes;
      labels.push_back(cond.labels);
      cond.labels = cond.labels.to(device);
    }
    NoiseStream step_noise(mix_seed(cfg.seed, 1), first, b);
    parts.push_back(sample(denoiser, x_T, cfg.sampler, step_noise, {}, cond).cpu());
    if (on_batch) on_batch(first + b);
  }
  return {torch::cat(parts), labels.empty() ? torch::Tensor() : torch::cat(labels)};
}

}  // namespace diffuse
