// diffuse sample: draw samples from a trained run (vectors → CSV + plot; images → PNGs).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse::cli {

namespace {
struct Opts {
  std::string run, out, chain, grid, strip, weights = "ema", device = "auto", cls;
  SamplerFlags sampler;
  int64_t n = 1000, batch = 256;
  uint64_t seed = 0;
  int64_t threads = 0;
  double guidance = 1.0;
};
}  // namespace

// --class: a number or a class name of the run's data.
int64_t parse_class(const std::string& s, const std::vector<std::string>& names, int64_t num_classes) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return int64_t(i);
  try {
    size_t used = 0;
    const long k = std::stol(s, &used);
    if (used == s.size() && k >= 0 && k < num_classes) return k;
  } catch (const std::exception&) {
  }
  throw Error("unknown class '" + s + "'", "valid classes: 0 … " + std::to_string(num_classes - 1) +
                                               (names.empty() ? "" : " or " + join(names)));
}

void add_sample(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("sample", "draw samples from a trained run");
  cmd->add_option("--run", o->run, "run folder written by 'diffuse train'")->required();
  cmd->add_option("--n", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--out", o->out, "output folder (vectors: samples.csv, samples.png; images: 000000.png …)")
      ->required();
  cmd->add_option("--seed", o->seed, "seed; sample i depends only on (seed, i)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "samples drawn at once")->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads (0: all cores for images, 1 for vectors)")
      ->capture_default_str();
  cmd->add_option("--class", o->cls, "class-conditional runs: a class number or name (default: classes in turn)");
  cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale w (1: conditional, 0: unconditional)")
      ->capture_default_str();
  cmd->add_option("--chain", o->chain, "the reverse process of the first samples (vectors: PNG; images: GIF)");
  cmd->add_option("--grid", o->grid, "images: a grid of all samples to this PNG");
  cmd->add_option("--strip", o->strip, "images: x_t at several t, one row per sample (first 8), to this PNG");
  add_sampler_flags(*cmd, o->sampler);
  cmd->callback([o] {
    if (o->n < 1 || o->batch < 1) throw Error("--n and --batch must be >= 1");
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    const SamplerConfig sc = o->sampler.resolve();
    auto run = load_run(o->run, o->weights == "ema", o->device);
    const torch::Device dev = resolve_device(o->device);
    const bool image = is_image_spec(run.config.data);
    if (o->threads < 0) throw Error("--threads must be >= 0", "0: all cores for images, 1 for vectors");
    set_intra_op_threads(o->threads, image);
    const std::vector<int64_t> shape =
        image ? std::vector<int64_t>{run.config.unet.in_channels, run.config.unet.image_size, run.config.unet.image_size}
              : std::vector<int64_t>{run.config.model.dim};
    const int64_t num_classes = image ? run.config.unet.num_classes : run.config.model.num_classes;
    const int64_t S = int64_t(sampling_grid(run.denoiser->schedule(), sc).size()) - 1;
    if (!o->cls.empty() && num_classes == 0)
      throw Error("--class needs a class-conditional run", "train with \"class_conditional\": true");
    const int64_t fixed_class = o->cls.empty() ? -1 : parse_class(o->cls, run.class_names, num_classes);
    GuidedDenoiser guided(*run.denoiser, o->guidance, num_classes);
    const Denoiser& denoiser = num_classes > 0 ? static_cast<const Denoiser&>(guided) : *run.denoiser;
    ensure_dir(o->out);

    // Reverse-chain snapshots of the first batch: 6 for vectors, ~40 GIF frames for images.
    std::vector<Snapshot> chain;
    std::vector<torch::Tensor> frames, strip;
    const int64_t shown = std::min<int64_t>(o->n, 16), strip_rows = std::min<int64_t>(o->n, 8);
    // Vector chain: after steps ≈ S/4, S/2, 3S/4, 9S/10 and the last.
    std::vector<int64_t> marks;
    for (double f : {0.25, 0.5, 0.75, 0.9, 1.0}) {
      const int64_t k = std::max<int64_t>(0, int64_t(std::lround(f * double(S))) - 1);
      if (marks.empty() || k > marks.back()) marks.push_back(k);
    }
    std::vector<torch::Tensor> parts;
    Progress progress("sampling", o->n, 0, 1, false);
    for (int64_t first = 0; first < o->n; first += o->batch) {
      const int64_t b = std::min(o->batch, o->n - first);
      NoiseStream noise(o->seed, first, b);
      auto x_T = noise.randn(shape, torch::TensorOptions().device(dev));
      Conditioning cond;
      if (num_classes > 0)
        cond.labels = (fixed_class >= 0 ? torch::full({b}, fixed_class, torch::kLong)
                                        : torch::arange(first, first + b, torch::kLong) % num_classes)
                          .to(dev);
      StepCallback cb;
      if (first == 0 && (!o->chain.empty() || !o->strip.empty())) {
        auto keep = [&](const torch::Tensor& x, int64_t rows) { return x.slice(0, 0, rows).cpu(); };
        chain.push_back({"x_T (noise)", x_T.cpu()});
        frames.push_back(keep(x_T, shown));
        strip.push_back(keep(x_T, strip_rows));
        cb = [&](const StepInfo& s) {
          const bool last = s.step + 1 == s.total;
          if (image) {
            if ((s.step + 1) % std::max<int64_t>(1, s.total / 40) == 0 || last) frames.push_back(keep(s.x, shown));
            if ((s.step + 1) % std::max<int64_t>(1, s.total / 8) == 0 || last) {
              if (strip.size() < 9 || last) strip.push_back(keep(s.x, strip_rows));
            }
          } else if (std::find(marks.begin(), marks.end(), s.step) != marks.end()) {
            char label[64];
            std::snprintf(label, sizeof label, last ? "x_0 (step %lld)" : "step %lld (t = %.0f)",
                          (long long)s.step + 1, s.t);
            chain.push_back({label, s.x.cpu()});
          }
        };
      }
      NoiseStream step_noise(mix_seed(o->seed, 1), first, b);
      auto x = sample(denoiser, x_T, sc, step_noise, cb, cond).cpu();
      if (image) {
        auto u8 = to_uint8(x);
        for (int64_t i = 0; i < b; ++i) {
          char name[32];
          std::snprintf(name, sizeof name, "/%06lld.png", (long long)(first + i));
          write_png(o->out + name, u8[i]);
        }
        parts.push_back(u8);
      } else {
        parts.push_back(run.normalizer.decode(x));
      }
      progress.update(first + b);
    }
    progress.finish();
    auto samples = torch::cat(parts);
    if (image) {
      const int64_t nrow = num_classes > 0 && fixed_class < 0 ? num_classes
                                                               : int64_t(std::ceil(std::sqrt(double(o->n))));
      if (!o->grid.empty()) write_png(o->grid, make_grid(samples, nrow, 2));
      if (!o->chain.empty()) {
        std::vector<torch::Tensor> gif;
        for (auto& f : frames) gif.push_back(make_grid(to_uint8(f), int64_t(std::ceil(std::sqrt(double(shown)))), 2));
        write_gif(o->chain, gif, 8, 12, 3);
      }
      if (!o->strip.empty())
        write_png(o->strip, make_grid(to_uint8(torch::stack(strip, 1).flatten(0, 1)), int64_t(strip.size()), 2));
      std::printf("wrote %lld images to %s/%s%s%s\n", (long long)o->n, o->out.c_str(), "000000.png …",
                  o->grid.empty() ? "" : (", grid " + o->grid).c_str(),
                  o->chain.empty() ? "" : (", chain " + o->chain).c_str());
      return;
    }
    write_csv(o->out + "/samples.csv", samples);
    auto data = make_data_source(run.config.data);
    auto g = at::make_generator<at::CPUGeneratorImpl>(mix_seed(o->seed, 2));
    save_samples_figure(o->out + "/samples.png", samples, data->sample(samples.size(0), g).x);
    std::printf("wrote %lld samples to %s/samples.csv and %s/samples.png\n", (long long)o->n, o->out.c_str(),
                o->out.c_str());
    if (!o->chain.empty()) {
      save_process_figure(o->chain, "reverse process (" + to_string(sc.kind) + ", " + std::to_string(S) + " steps), " + run.config.data +
                                        " — in the model's standardised space", chain, true);
      std::printf("wrote the reverse chain to %s\n", o->chain.c_str());
    }
  });
}

}  // namespace diffuse::cli
