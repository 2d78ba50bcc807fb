// Quality versus cost of every sampler on a trained image run: for each sampler and
// number of steps, N samples (classes in turn for class-conditional runs, drawn as
// `diffuse sample` draws them), their Fréchet distance to the test split in the
// features of the project's Fashion-MNIST network (diffuse eval fd) and in pixel space,
// and the wall time per image. Samples are cached in OUT/samples/, so that a stopped
// sweep resumes where it stopped.
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
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/draw.hpp"
#include "bench_util.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
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

using diffuse::bench::split;

// 8-bit images as (N, C·H·W) pixels in [−1, 1].
torch::Tensor pixels(const torch::Tensor& u8) { return u8.to(torch::kFloat64).div(127.5).sub(1.0).flatten(1); }
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
  ensure_dir(out_dir + "/samples");
  auto featnet = load_default_featnet();

  // Reference statistics: the test split; floor: N train images against it.
  auto test = load_fashion_mnist("", "test"), train = load_fashion_mnist("", "train");
  const auto ref_feat = gaussian_stats(featnet.features(test.images)), ref_pix = gaussian_stats(pixels(test.images));
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed + 7);
  auto floor_imgs = train.images.index_select(0, torch::randperm(train.images.size(0), g, torch::kLong).slice(0, 0, n));
  const double floor = frechet_distance(gaussian_stats(featnet.features(floor_imgs)), ref_feat);
  const double floor_pix = frechet_distance(gaussian_stats(pixels(floor_imgs)), ref_pix);
  std::printf("# sampler quality: run %s (step %lld, T = %lld), N = %lld, Fréchet distance to the test split in "
              "the features of %s and in pixels; floor (N train images) %.3f / %.3f\n",
              run_dir.c_str(), (long long)run.step, (long long)sch.T(), (long long)n, default_featnet_path().c_str(),
              floor, floor_pix);

  nlohmann::json results = nlohmann::json::array();
  std::map<std::string, plot::Series> curves, pix_curves;
  std::string table =
      "| sampler | steps | network calls | FD | pixel FD | s / image |\n|---|---:|---:|---:|---:|---:|\n";
  const auto full = split(full_s);
  for (const auto& name : split(samplers_s)) {
    std::vector<int64_t> steps;
    for (const auto& s : split(steps_s)) steps.push_back(std::stoll(s));
    if (std::find(full.begin(), full.end(), name) != full.end()) steps.push_back(sch.T());
    for (int64_t S : steps) {
      DrawConfig dc;
      dc.n = n;
      dc.batch = batch;
      dc.seed = seed;
      dc.guidance = guidance;
      dc.sampler.kind = parse_sampler_kind(name);
      dc.sampler.steps = S;
      // All T steps are the model's own timesteps; fewer use the σ schedule asked for.
      dc.sampler.sigmas = S == sch.T() ? SigmaSchedule::Timesteps : parse_sigma_schedule(sigmas_s);
      const int64_t calls = network_calls(sch, dc.sampler);
      // Samples are kept, so that a stopped sweep resumes and metrics can be recomputed.
      const std::string cache = out_dir + "/samples/" + name + "_" + std::to_string(S) + ".safetensors";
      torch::Tensor images;
      double secs_per_image = 0;
      if (std::filesystem::exists(cache)) {
        auto f = load_safetensors(cache);
        images = f.tensors.at("images");
        secs_per_image = std::stod(f.metadata.at("seconds_per_image"));
      }
      if (!images.defined() || images.size(0) != n) {
        const auto t0 = Clock::now();
        images = to_uint8(draw_samples(run, dc, torch::kCPU).samples);
        secs_per_image = std::chrono::duration<double>(Clock::now() - t0).count() / double(n);
        save_safetensors(cache, {{"images", images}}, {{"seconds_per_image", std::to_string(secs_per_image)}});
      }
      const double fd = frechet_distance(gaussian_stats(featnet.features(images)), ref_feat);
      const double fd_pix = frechet_distance(gaussian_stats(pixels(images)), ref_pix);
      std::printf("%-16s steps %5lld  calls %5lld  FD %8.3f  pixel FD %8.3f  %.4f s/image\n", name.c_str(),
                  (long long)S, (long long)calls, fd, fd_pix, secs_per_image);
      std::fflush(stdout);
      char row[256];
      std::snprintf(row, sizeof row, "| %s | %lld | %lld | %.3f | %.3f | %.4f |\n", name.c_str(), (long long)S,
                    (long long)calls, fd, fd_pix, secs_per_image);
      table += row;
      results.push_back({{"sampler", name}, {"steps", S}, {"network_calls", calls}, {"fd", fd}, {"pixel_fd", fd_pix},
                         {"seconds_per_image", secs_per_image}, {"sigmas", to_string(dc.sampler.sigmas)}});
      for (auto* m : {&curves, &pix_curves}) {
        auto& c = (*m)[name];
        c.label = name;
        c.x.push_back(std::log10(double(calls)));
        c.y.push_back(m == &curves ? fd : fd_pix);
      }
      // After every row, so that a long sweep that is stopped keeps what it measured.
      write_file_atomic(out_dir + "/results.json", [&](std::ostream& o) {
        o << nlohmann::json{{"run", run_dir}, {"n", n}, {"floor_train_vs_test", floor},
                            {"floor_pixels_train_vs_test", floor_pix}, {"results", results}}
                 .dump(2);
      });
      write_file_atomic(out_dir + "/table.md", [&](std::ostream& o) { o << table; });
    }
  }
  auto panel = [&](const std::map<std::string, plot::Series>& cs, double fl, const std::string& what) {
    plot::Panel p;
    p.title = what + " (N = " + std::to_string(n) + ")";
    p.xlabel = "log10 network calls per image";
    p.ylabel = what;
    p.logy = true;
    for (auto& [k, s] : cs) p.series.push_back(s);
    plot::Series f;
    f.x = {0.5, 3.2};
    f.y = {fl, fl};
    f.label = "floor (train vs test)";
    f.color = 9;  // the samplers take palette colours 0 … 7
    p.series.push_back(f);
    return p;
  };
  plot::save_png({"sampler quality versus cost", {panel(curves, floor, "Fréchet distance (featnet)"),
                                                  panel(pix_curves, floor_pix, "pixel Fréchet distance")},
                  2, 1200, 500},
                 out_dir + "/quality.png");
  std::printf("\n%s\nwrote %s/table.md, results.json, quality.png\n", table.c_str(), out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  if (auto* d = dynamic_cast<const diffuse::Error*>(&e); d && !d->hint().empty())
    std::fprintf(stderr, "  %s\n", d->hint().c_str());
  return 1;
}
