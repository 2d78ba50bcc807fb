// diffuse eval spectrum: covariance and eigenvalue spectrum of data, of white noise,
// of white noise reshaped to the data covariance (seed 002's appendix) and, with
// --run, of generated samples; a figure plus a JSON report beside it.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/spectrum.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {
namespace spectrum_cmd {  // named: the CLI is a unity build

struct SpectrumOpts {
  std::string data, run, out, json, data_dir, weights = "ema", device = "auto", background = DataOptions{}.background;
  int64_t image_size = DataOptions{}.image_size;
  std::vector<const CLI::Option*> run_only;  // flags that only make sense with --run
  int64_t n = 2000, batch = 250, threads = 0;
  uint64_t seed = 0;
  double rank_fraction = 0.99, guidance = 1.0;
  SamplerFlags sampler;
};

// Seeds of the independent draws, all derived from --seed.
enum : uint64_t { kSeedData = 0, kSeedNoise = 1, kSeedFloor = 2 };

std::vector<double> spectrum_values(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

GaussianStats stats_of(const Spectrum& s) { return {s.mean, s.cov, s.n}; }

// One set's entry of the report: eigenvalues, summaries and, against the data,
// the relative spectrum error and the Fréchet distance of the fitted Gaussians.
nlohmann::ordered_json set_json(const Spectrum& s, const Spectrum& data, double fraction, bool compare) {
  const auto sum = summarize(s, fraction);
  nlohmann::ordered_json j = {{"n", s.n},
                      {"total_variance", sum.total_variance},
                      {"top_eigenvalue", sum.top_eigenvalue},
                      {"effective_rank", sum.effective_rank},
                      {"participation_ratio", sum.participation_ratio},
                      {"eigenvalues", spectrum_values(s.eigenvalues)}};
  if (compare) {
    j["relative_spectrum_error"] = relative_spectrum_error(s.eigenvalues, data.eigenvalues);
    j["frechet_distance"] = frechet_distance(stats_of(s), stats_of(data));
  }
  return j;
}

void print_row(const char* name, const nlohmann::ordered_json& j) {
  std::printf("  %-20s %12.5g %12.5g %8lld %10.2f", name, j["total_variance"].get<double>(),
              j["top_eigenvalue"].get<double>(), (long long)j["effective_rank"].get<int64_t>(),
              j["participation_ratio"].get<double>());
  if (j.contains("relative_spectrum_error"))
    std::printf(" %12.4f %12.5g\n", j["relative_spectrum_error"].get<double>(), j["frechet_distance"].get<double>());
  else
    std::printf(" %12s %12s\n", "-", "-");
}

std::string default_json_path(const std::string& png) {
  return std::filesystem::path(png).replace_extension(".json").string();
}

void run_spectrum(SpectrumOpts& o) {
  if (o.data.empty() && o.run.empty()) throw Error("give --data SPEC or --run RUN_DIR", "e.g. --data signals");
  if (o.n < 2) throw Error("--n must be >= 2 (a covariance needs two vectors)");
  if (o.batch < 1) throw Error("--batch must be >= 1");
  if (!(o.rank_fraction > 0 && o.rank_fraction <= 1)) throw Error("--rank-fraction must be in (0, 1]");
  if (o.weights != "ema" && o.weights != "raw") throw Error("--weights must be ema or raw");
  if (o.threads < 0) throw Error("--threads must be >= 0", kThreadsHelp);
  if (o.run.empty())
    for (const auto* opt : o.run_only)
      if (given(opt)) throw Error(opt->get_name() + " applies only with --run", "give --run RUN_DIR to draw samples");
  const std::string json_path = o.json.empty() ? default_json_path(o.out) : o.json;
  if (json_path == o.out) throw Error("--json and --out name the same file: " + o.out);

  // The run (if any) first: its data are the default data.
  std::unique_ptr<LoadedRun> run;
  SamplerConfig sc;
  DataOptions dopt;
  dopt.data_dir = o.data_dir;
  dopt.image_size = o.image_size;
  dopt.background = o.background;
  if (!o.run.empty()) {
    run = std::make_unique<LoadedRun>(load_run(o.run, o.weights == "ema", o.device));
    sc = o.sampler.resolve(is_image_spec(run->config.data) && !run->is_latent(), &run->config);
    if (o.data.empty()) o.data = run->config.data;
    if (o.data_dir.empty()) dopt.data_dir = run->config.data_dir;
    if (o.data == run->config.data) {  // the run's images, as it was trained on them
      dopt.image_size = run->config.unet.image_size;
      dopt.background = run->config.background;
    }
  }
  auto source = make_data_source(o.data, dopt);
  const bool image = source->is_image();
  set_intra_op_threads(o.threads, image);

  // Data (N, D), white noise z (N, D) ~ N(0, I), and a second data set for the floor.
  auto gen = [&](uint64_t which) { return at::make_generator<at::CPUGeneratorImpl>(mix_seed(o.seed, which)); };
  auto g_data = gen(kSeedData), g_noise = gen(kSeedNoise), g_floor = gen(kSeedFloor);
  auto data = source->sample(o.n, g_data).x.flatten(1).to(torch::kFloat64);
  const int64_t D = data.size(1);
  auto noise = torch::randn({o.n, D}, g_noise, torch::kFloat64);
  auto data2 = source->sample(o.n, g_floor).x.flatten(1).to(torch::kFloat64);

  // Generated samples, in the data's space (vectors decoded; images clamped to [−1, 1]
  // as they are when saved).
  torch::Tensor samples;
  nlohmann::ordered_json sampler_json;
  if (run) {
    DrawConfig dc;
    dc.n = o.n;
    dc.batch = o.batch;
    dc.seed = o.seed;
    dc.guidance = o.guidance;
    dc.sampler = sc;
    Progress progress("sampling", dc.n, 0, 1);
    auto drawn = draw_samples(*run, dc, resolve_device(o.device), [&](int64_t done) { progress.update(done); });
    progress.finish();
    samples = is_image_spec(run->config.data) ? drawn.samples.clamp(-1, 1) : run->normalizer.decode(drawn.samples);
    samples = samples.flatten(1).to(torch::kFloat64);
    if (samples.size(1) != D)
      throw Error("the run generates " + std::to_string(samples.size(1)) + "-dimensional vectors but " + o.data +
                      " has " + std::to_string(D),
                  "leave out --data to compare with the run's own data (" + run->config.data + ")");
    if (run->is_vae())
      sampler_json = {{"name", "vae-decoder"}, {"steps", 0}, {"network_calls", 1}, {"weights", o.weights}};
    else
      sampler_json = {{"name", to_string(sc.kind)},
                      {"steps", int64_t(sampling_grid(run->denoiser->schedule(), sc).size()) - 1},
                      {"network_calls", network_calls(run->denoiser->schedule(), sc)},
                      {"guidance", o.guidance},
                      {"weights", o.weights}};
  }

  SpectrumAnalysis a = analyze_spectrum(data, noise, samples);
  if (image) a.image_shape = source->shape();
  char title[256];
  std::snprintf(title, sizeof title, "covariance spectra: %s (n = %lld, D = %lld)%s%s", o.data.c_str(),
                (long long)o.n, (long long)D, run ? ", samples of " : "", run ? o.run.c_str() : "");
  a.title = title;
  const Spectrum floor_s = spectrum_of(data2);

  // The report.
  const double fr = o.rank_fraction;
  const auto mp = marchenko_pastur_edges(o.n, D);
  nlohmann::ordered_json j;
  j["data_spec"] = o.data;
  j["n"] = o.n;
  j["dim"] = D;
  j["seed"] = o.seed;
  j["rank_fraction"] = fr;
  j["data"] = set_json(a.data_spectrum, a.data_spectrum, fr, false);
  j["white_noise"] = set_json(a.noise_spectrum, a.data_spectrum, fr, true);
  j["white_noise"]["marchenko_pastur_edges"] = {mp.first, mp.second};
  j["reshaped_noise"] = set_json(a.reshaped_spectrum, a.data_spectrum, fr, true);
  j["floor"] = set_json(floor_s, a.data_spectrum, fr, true);
  if (run) {
    j["samples"] = set_json(a.samples_spectrum, a.data_spectrum, fr, true);
    j["samples"]["run"] = o.run;
    j["samples"]["step"] = run->step;
    j["samples"]["sampler"] = sampler_json;
  }

  for (const auto& path : {o.out, json_path}) {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) ensure_dir(parent.string());
  }
  save_spectrum_figure(o.out, a, fr);
  write_file_atomic(json_path, [&](std::ostream& os) { os << j.dump(2) << "\n"; });

  std::printf("%s, n = %lld, D = %lld, seed %llu\n", o.data.c_str(), (long long)o.n, (long long)D,
              (unsigned long long)o.seed);
  if (o.n <= D)
    std::printf("note: n <= D, so the sample covariances have rank at most n - 1 = %lld\n", (long long)(o.n - 1));
  char rank_head[32];
  std::snprintf(rank_head, sizeof rank_head, "rank%g%%", fr * 100);
  std::printf("  %-20s %12s %12s %8s %10s %12s %12s\n", "set", "total var", "top eig", rank_head, "part.ratio",
              "spec.err", "frechet d2");
  print_row("data", j["data"]);
  print_row("white noise", j["white_noise"]);
  print_row("reshaped noise", j["reshaped_noise"]);
  print_row("fresh data (floor)", j["floor"]);
  if (run) print_row("samples", j["samples"]);
  std::printf("(spec.err and frechet d2 against the data; the floor is a second data set of the same n;\n"
              " white noise eigenvalues fall in [%.3f, %.3f] (Marchenko-Pastur) around 1)\n",
              mp.first, mp.second);
  std::printf("wrote %s and %s\n", o.out.c_str(), json_path.c_str());
}

}  // namespace spectrum_cmd

void add_eval_spectrum(CLI::App& eval) {
  auto o = std::make_shared<spectrum_cmd::SpectrumOpts>();
  auto* cmd = eval.add_subcommand(
      "spectrum", "covariance and eigenvalue spectra of data, white noise, reshaped noise and samples (seed 002)");
  cmd->add_option("--data", o->data, "data spec: " + join(data_spec_names()) + " (default with --run: the run's data)");
  cmd->add_option("--run", o->run, "a trained run: also draw --n samples and compare their spectrum with the data");
  cmd->add_option("--out", o->out, "the figure (PNG); the report goes beside it as the same name with .json")
      ->required();
  cmd->add_option("--json", o->json, "the JSON report (default: --out with the extension .json)");
  cmd->add_option("--n", o->n, "vectors per set (data, noise, samples)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the data, the noise and the samples")->capture_default_str();
  cmd->add_option("--rank-fraction", o->rank_fraction, "effective rank: eigenvalues holding this fraction of the variance")
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "fashion-mnist: folder of the IDX files (default: Debian's)");
  cmd->add_option("--image-size", o->image_size,
                  "folder:PATH, emoji without --run: side of the square images (0: the source's default)")
      ->capture_default_str();
  cmd->add_option("--background", o->background, "emoji without --run: colour behind the glyphs (white, black, #rrggbb)")
      ->capture_default_str();
  o->run_only.push_back(cmd->add_option("--batch", o->batch, "samples drawn at once (--run)")->capture_default_str());
  o->run_only.push_back(
      cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale (--run, class-conditional)")
          ->capture_default_str());
  o->run_only.push_back(cmd->add_option("--weights", o->weights, "ema or raw (--run)")->capture_default_str());
  o->run_only.push_back(cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N (--run)")->capture_default_str());
  cmd->add_option("--threads", o->threads, kThreadsHelp)
      ->capture_default_str();
  add_sampler_flags(*cmd, o->sampler);
  for (const auto* opt : cmd->get_options())
    if (opt->get_group() == "Sampler") o->run_only.push_back(opt);
  cmd->callback([o] { spectrum_cmd::run_spectrum(*o); });
}

}  // namespace diffuse::cli
