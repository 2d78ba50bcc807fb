// Quality versus cost of every sampler on a trained image run: for each sampler and
// number of steps, N samples (classes in turn for class-conditional runs), their
// Fréchet distance to the test split in pixel space (Gaussians fitted to the 784 pixel
// values; the evaluation issue adds a feature network), and the wall time per image.
// Writes a Markdown table, results.json and a plot of distance against network calls.
//
//   bench_sampler_quality --run RUN_DIR --out DIR [--n 500] [--batch 250] [--seed 0]
//       [--samplers ddpm,ddim,…] [--steps 5,10,20,50,100] [--full ddpm] [--sigmas karras]
//       [--guidance 1] [--threads 0]
//
// --full: the samplers that also run with all T steps (the reference; T network calls
// per image is the expensive part). The distance of N train images to the test split is
// printed as the floor: the value a perfect sampler gets with the same N.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/plot.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"

namespace {
using Clock = std::chrono::steady_clock;
using namespace diffuse;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Pixels in [−1, 1] as (N, C·H·W) after the 8-bit round trip the PNGs would see.
torch::Tensor pixels(const torch::Tensor& images) {
  return to_uint8(images).to(torch::kFloat64).div(127.5).sub(1.0).flatten(1);
}
}  // namespace

int main(int argc, char** argv) try {
  std::string run_dir, out_dir, samplers_s = "ddpm,ddim,euler,euler-ancestral,heun,dpm++2m,dpm++2m-sde,unipc",
                                steps_s = "5,10,20,50,100", full_s = "ddpm", sigmas_s = "karras";
  int64_t n = 500, batch = 250, threads = 0;
  uint64_t seed = 0;
  double guidance = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--run") run_dir = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--n") n = std::stoll(next());
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--samplers") samplers_s = next();
    else if (a == "--steps") steps_s = next();
    else if (a == "--full") full_s = next();
    else if (a == "--sigmas") sigmas_s = next();
    else if (a == "--guidance") guidance = std::stod(next());
    else if (a == "--threads") threads = std::stoll(next());
    else
      throw Error("unknown argument " + a, "valid: --run --out --n --batch --seed --samplers --steps --full "
                                           "--sigmas --guidance --threads");
  }
  if (run_dir.empty() || out_dir.empty()) throw Error("--run and --out are required");
  set_intra_op_threads(threads, true);
  auto run = load_run(run_dir, true, "cpu");
  if (run.config.unet.image_size == 0 || run.config.data.rfind("fashion-mnist", 0) != 0)
    throw Error("this benchmark needs a Fashion-MNIST image run", run_dir + " was trained on " + run.config.data);
  const auto& sch = run.denoiser->schedule();
  const int64_t C = run.config.unet.in_channels, R = run.config.unet.image_size,
                classes = run.config.unet.num_classes;
  GuidedDenoiser guided(*run.denoiser, guidance, classes);
  const Denoiser& den = classes > 0 ? static_cast<const Denoiser&>(guided) : *run.denoiser;
  ensure_dir(out_dir);

  auto test = load_fashion_mnist("", "test"), train = load_fashion_mnist("", "train");
  auto ref = gaussian_stats(pixels(test.images.to(torch::kFloat32).div(127.5).sub(1.0)));
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed + 7);
  auto pick = torch::randperm(train.images.size(0), g, torch::kLong).slice(0, 0, n);
  const double floor = frechet_distance(
      gaussian_stats(pixels(train.images.index_select(0, pick).to(torch::kFloat32).div(127.5).sub(1.0))), ref);
  std::printf("# sampler quality: run %s (step %lld, T = %lld), N = %lld, pixel Fréchet distance to the test "
              "split; floor (N train images) %.3f\n",
              run_dir.c_str(), (long long)run.step, (long long)sch.T(), (long long)n, floor);

  nlohmann::json results = nlohmann::json::array();
  std::map<std::string, plot::Series> curves;
  std::string table = "| sampler | steps | network calls | pixel FD | s / image |\n|---|---:|---:|---:|---:|\n";
  const auto full = split(full_s);
  for (const auto& name : split(samplers_s)) {
    std::vector<int64_t> steps;
    for (const auto& s : split(steps_s)) steps.push_back(std::stoll(s));
    if (std::find(full.begin(), full.end(), name) != full.end()) steps.push_back(sch.T());
    for (int64_t S : steps) {
      SamplerConfig cfg;
      cfg.kind = parse_sampler_kind(name);
      cfg.steps = S;
      // All T steps are the model's own timesteps; fewer use the σ schedule asked for.
      cfg.sigmas = S == sch.T() ? SigmaSchedule::Timesteps : parse_sigma_schedule(sigmas_s);
      const int64_t calls = network_calls(sch, cfg);
      std::vector<torch::Tensor> parts;
      const auto t0 = Clock::now();
      for (int64_t first = 0; first < n; first += batch) {
        const int64_t b = std::min(batch, n - first);
        NoiseStream init(seed, first, b), steps_noise(mix_seed(seed, 1), first, b);
        auto x_T = init.randn({C, R, R});
        Conditioning cond;
        if (classes > 0) cond.labels = torch::arange(first, first + b, torch::kLong) % classes;
        parts.push_back(sample(den, x_T, cfg, steps_noise, {}, cond));
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      auto x = torch::cat(parts);
      const double fd = frechet_distance(gaussian_stats(pixels(x)), ref);
      std::printf("%-16s steps %5lld  calls %5lld  pixel FD %8.3f  %.4f s/image\n", name.c_str(), (long long)S,
                  (long long)calls, fd, secs / double(n));
      std::fflush(stdout);
      char row[256];
      std::snprintf(row, sizeof row, "| %s | %lld | %lld | %.3f | %.4f |\n", name.c_str(), (long long)S,
                    (long long)calls, fd, secs / double(n));
      table += row;
      results.push_back({{"sampler", name}, {"steps", S}, {"network_calls", calls}, {"pixel_fd", fd},
                         {"seconds_per_image", secs / double(n)}, {"sigmas", to_string(cfg.sigmas)}});
      auto& c = curves[name];
      c.label = name;
      c.style = plot::SeriesStyle::Line;
      c.x.push_back(std::log10(double(calls)));
      c.y.push_back(fd);
      // After every row, so that a long sweep that is stopped keeps what it measured.
      write_file_atomic(out_dir + "/results.json", [&](std::ostream& o) {
        o << nlohmann::json{{"run", run_dir}, {"n", n}, {"floor_train_vs_test", floor}, {"results", results}}.dump(2);
      });
      write_file_atomic(out_dir + "/table.md", [&](std::ostream& o) { o << table; });
    }
  }
  plot::Panel p;
  p.title = "quality versus network calls (N = " + std::to_string(n) + ")";
  p.xlabel = "log10 network calls per image";
  p.ylabel = "pixel Fréchet distance to the test split";
  for (auto& [k, s] : curves) p.series.push_back(s);
  plot::Series fl;
  fl.x = {0.5, 3.2};
  fl.y = {floor, floor};
  fl.label = "floor (train vs test)";
  fl.color = 7;
  p.series.push_back(fl);
  plot::save_png({"", {p}, 0, 720, 480}, out_dir + "/quality.png");
  std::printf("\n%s\nwrote %s/table.md, results.json, quality.png\n", table.c_str(), out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  if (auto* d = dynamic_cast<const diffuse::Error*>(&e); d && !d->hint().empty())
    std::fprintf(stderr, "  %s\n", d->hint().c_str());
  return 1;
}
