// diffuse sample: draw samples from a trained run.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse::cli {

void add_sample(CLI::App& app) {
  struct Opts {
    std::string run, out, chain, weights = "ema", device = "auto";
    std::string sampler = to_string(SamplerConfig{}.kind), variance = to_string(SamplerConfig{}.ddpm_variance);
    int64_t n = 1000, batch = 1000;
    uint64_t seed = 0;
    double clip = SamplerConfig{}.clip_x0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("sample", "draw samples from a trained run");
  cmd->add_option("--run", o->run, "run folder written by 'diffuse train'")->required();
  cmd->add_option("--n", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--out", o->out, "output folder (samples.csv, samples.png)")->required();
  cmd->add_option("--sampler", o->sampler, "sampler: " + join(sampler_kind_names()))->capture_default_str();
  cmd->add_option("--variance", o->variance, "ddpm: reverse variance, beta or beta-tilde")->capture_default_str();
  cmd->add_option("--clip", o->clip, "clamp the x0 estimate to [-clip, clip] in normalised units (0: off)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed; sample i depends only on (seed, i)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "samples drawn at once")->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--chain", o->chain, "also draw the reverse chain of a few samples to this PNG");
  cmd->callback([o] {
    if (o->n < 1 || o->batch < 1) throw Error("--n and --batch must be >= 1");
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    SamplerConfig sc;
    sc.kind = parse_sampler_kind(o->sampler);
    sc.ddpm_variance = parse_ddpm_variance(o->variance);
    sc.clip_x0 = o->clip;
    auto run = load_run(o->run, o->weights == "ema", o->device);
    const torch::Device dev = resolve_device(o->device);
    const int64_t D = run.config.model.dim, T = run.denoiser->schedule().T();
    ensure_dir(o->out);

    // The chain: snapshots of the first batch at ~6 timesteps.
    std::vector<Snapshot> chain;
    const std::vector<int64_t> marks = {T - 1, (3 * T) / 4, T / 2, T / 4, T / 10, 0};
    std::vector<torch::Tensor> parts;
    Progress progress("sampling", o->n, 0, 1, false);
    for (int64_t first = 0; first < o->n; first += o->batch) {
      const int64_t b = std::min(o->batch, o->n - first);
      NoiseStream noise(o->seed, first, b);
      auto x_T = noise.randn({D}, torch::TensorOptions().device(dev));
      StepCallback cb;
      if (!o->chain.empty() && first == 0) {
        chain.push_back({"x_T (t = " + std::to_string(T - 1) + ", noise)", x_T.cpu()});
        cb = [&](const StepInfo& s) {
          for (size_t k = 1; k < marks.size(); ++k)
            if (s.t == marks[k] && !(k + 1 < marks.size() && marks[k + 1] == s.t))
              chain.push_back({"t = " + std::to_string(s.t), s.x.cpu()});
        };
      }
      NoiseStream step_noise(mix_seed(o->seed, 1), first, b);
      auto x = sample(*run.denoiser, x_T, sc, step_noise, cb);
      parts.push_back(run.normalizer.decode(x.cpu()));
      progress.update(first + b);
    }
    progress.finish();
    auto samples = torch::cat(parts);
    write_csv(o->out + "/samples.csv", samples);
    auto data = make_vector_source(run.config.data);
    auto g = at::make_generator<at::CPUGeneratorImpl>(mix_seed(o->seed, 2));
    save_samples_figure(o->out + "/samples.png", samples, data->sample(samples.size(0), g));
    std::printf("wrote %lld samples to %s/samples.csv and %s/samples.png\n", (long long)o->n, o->out.c_str(),
                o->out.c_str());
    if (!o->chain.empty()) {
      save_process_figure(o->chain, "reverse process (" + o->sampler + "), " + run.config.data +
                                          " — in the model's standardised space", chain, true);
      std::printf("wrote the reverse chain to %s\n", o->chain.c_str());
    }
  });
}

}  // namespace diffuse::cli
