// diffuse sample: draw samples from a trained run (vectors → CSV + plot; images → PNGs).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse::cli {

namespace {
struct SampleOpts {  // not `Opts`: cmd_data.cpp has one, and a unity batch may hold both
  std::string run, out, chain, grid, strip, weights = "ema", device = "auto", cls;
  SamplerFlags sampler;
  int64_t n = 1000, batch = 256;
  uint64_t seed = 0;
  int64_t threads = 0, picture_scale = 0;
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
  auto o = std::make_shared<SampleOpts>();
  auto* cmd = app.add_subcommand("sample", "draw samples from a trained run");
  cmd->add_option("--run", o->run, "run folder written by 'diffuse train'")->required();
  cmd->add_option("--n", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--out", o->out, "output folder (vectors: samples.csv, samples.png; images: 000000.png …)")
      ->required();
  cmd->add_option("--seed", o->seed, "seed; sample i depends only on (seed, i)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "samples drawn at once")->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)
      ->capture_default_str();
  cmd->add_option("--class", o->cls, "class-conditional runs: a class number or name (default: classes in turn)");
  cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale w (1: conditional, 0: unconditional)")
      ->capture_default_str();
  cmd->add_option("--chain", o->chain, "the reverse process of the first samples (vectors: PNG; images: GIF)");
  cmd->add_option("--grid", o->grid, "images: a grid of all samples to this PNG");
  cmd->add_option("--strip", o->strip, "images: x_t at several t, one row per sample (first 8), to this PNG");
  cmd->add_option("--picture-scale", o->picture_scale, kPictureScaleHelp)->capture_default_str();
  add_sampler_flags(*cmd, o->sampler);
  cmd->callback([o] {
    picture_scale(1, 1, o->picture_scale);  // a bad factor is an error before sampling
    if (o->n < 1 || o->batch < 1) throw Error("--n and --batch must be >= 1");
    o->n = quick_n(o->n);
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    auto run = load_run(o->run, o->weights == "ema", o->device);
    const torch::Device dev = resolve_device(o->device);
    const bool image = is_image_spec(run.config.data);
    // latents are unbounded: no clip by default; distilled runs: their own sampler by default
    const SamplerConfig sc = o->sampler.resolve(image && !run.is_latent(), &run.config);
    if (o->threads < 0) throw Error("--threads must be >= 0", kThreadsHelp);
    set_intra_op_threads(o->threads, image);
    if (run.config.distill.active() && o->guidance != 1.0)
      std::fprintf(stderr, "note: this run was distilled with guidance %g inside its targets; --guidance %g applies on top of it\n",
                   run.config.distill.guidance, o->guidance);
    const int64_t num_classes = image ? run.config.unet.num_classes : run.config.model.num_classes;
    if (run.is_autoencoder()) run.diffusion("drawing samples");  // the error naming the run and what to do
    if (run.is_vae() && (!o->chain.empty() || !o->strip.empty()))
      throw Error("--chain and --strip show the reverse process of a diffusion run",
                  o->run + " is a VAE run: it decodes z ~ N(0, I) in one call");
    const int64_t S = run.is_vae() ? 1 : int64_t(sampling_grid(run.denoiser->schedule(), sc).size()) - 1;
    if (!o->cls.empty() && num_classes == 0)
      throw Error("--class needs a class-conditional run", "train with \"class_conditional\": true");
    const int64_t fixed_class = o->cls.empty() ? -1 : parse_class(o->cls, run.class_names, num_classes);
    ensure_dir(o->out);

    DrawConfig dc;
    dc.n = o->n;
    dc.batch = o->batch;
    dc.seed = o->seed;
    dc.sampler = sc;
    dc.guidance = o->guidance;
    dc.fixed_class = fixed_class;
    DrawHooks hooks;
    hooks.keep_samples = false;  // each batch is written (and kept as uint8 for the grid) as it comes
    // The reverse process of the first batch: the GIF shows ~40 states of the first 16 samples,
    // the strip x_T and 8 evenly spaced states (and the last) of the first 8; the vector chain
    // figure x_T and the states after 1/4, 1/2, 3/4, 9/10 of the steps and the last.
    const int64_t shown = std::min<int64_t>(o->n, 16), strip_rows = std::min<int64_t>(o->n, 8);
    ChainRecorder frames(shown, every_nth_step(40)), strip(strip_rows, every_nth_step(8, 8)),
        chain(o->n, at_fractions({0.25, 0.5, 0.75, 0.9, 1.0}));
    if (image && !o->chain.empty()) hooks.chains.push_back(&frames);
    if (image && !o->strip.empty()) hooks.chains.push_back(&strip);
    if (!image && !o->chain.empty()) hooks.chains.push_back(&chain);
    std::vector<torch::Tensor> parts;
    Progress progress("sampling", o->n, 0, 1, false);
    hooks.on_batch = [&](int64_t first, const torch::Tensor& x, const torch::Tensor&) {
      const int64_t b = x.size(0);
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
    };
    draw_samples(run, dc, dev, hooks);
    progress.finish();
    auto samples = torch::cat(parts);
    if (image) {
      const int64_t nrow = num_classes > 0 && fixed_class < 0 ? num_classes
                                                               : int64_t(std::ceil(std::sqrt(double(o->n))));
      if (!o->grid.empty()) write_picture(o->grid, make_grid(samples, nrow, 2), o->picture_scale);
      if (!o->chain.empty()) {
        std::vector<torch::Tensor> gif;
        for (auto& f : frames.states())  // latent runs: each state decoded
          gif.push_back(make_grid(to_uint8(run.to_pixels(f)), int64_t(std::ceil(std::sqrt(double(shown)))), 2));
        write_gif(o->chain, gif, 8, 12, int(o->picture_scale));
      }
      if (!o->strip.empty()) {
        auto states = strip.states();
        for (auto& s : states) s = run.to_pixels(s);
        write_picture(o->strip, make_grid(to_uint8(torch::stack(states, 1).flatten(0, 1)), int64_t(states.size()), 2),
                      o->picture_scale);
      }
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
      std::vector<Snapshot> snaps;
      for (const auto& c : chain.snapshots()) {
        char label[64];
        if (c.step < 0)
          std::snprintf(label, sizeof label, "x_T (noise)");
        else
          std::snprintf(label, sizeof label, c.step + 1 == c.total ? "x_0 (step %lld)" : "step %lld (t = %.0f)",
                        (long long)c.step + 1, c.t);
        snaps.push_back({label, c.x});
      }
      save_process_figure(o->chain, "reverse process (" + to_string(sc.kind) + ", " + std::to_string(S) + " steps), " + run.config.data +
                                        " — in the model's standardised space", snaps, true);
      std::printf("wrote the reverse chain to %s\n", o->chain.c_str());
    }
  });
}

}  // namespace diffuse::cli
