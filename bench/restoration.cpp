// Restoration quality on Fashion-MNIST test images: for each task (a degradation of the
// first N test images) and method, the restorations' PSNR and SSIM against the
// originals and their Fréchet distance to the test split (the project's feature
// network, diffuse eval fd), beside a simple baseline per task:
//   box      centered 14×14 box missing        repaint, ddnm, dps   vs neighbour fill
//   random   50% of the pixels missing          repaint, ddnm, dps   vs neighbour fill
//   sr4      ×4 super-resolution (7×7 → 28×28)  ddnm, dps            vs bicubic upsampling
//   sdedit   a 14×14 box of uniform noise        sdedit               vs the damaged input
// Restorations are unconditional (the null class of a class-conditional run).
//
//   bench_restoration --run RUN_DIR --out DIR [--n 500] [--batch 250] [--steps 25]
//       [--tasks box,random,sr4,sdedit] [--seed 0] [--strength 0.5] [--dps-scale 1]
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/train.hpp"

namespace {
using namespace diffuse;
using Clock = std::chrono::steady_clock;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// PSNR per image on [0, 1]: 10 log10(1 / MSE), averaged.
double psnr(const torch::Tensor& a, const torch::Tensor& b) {
  auto mse = (a - b).div(2).pow(2).flatten(1).mean(1).clamp_min(1e-10);
  return (10 * torch::log10(1 / mse)).mean().item<double>();
}

// SSIM (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, on [0, 1]
// images, valid positions only (as skimage with gaussian_weights=True), averaged.
double ssim(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.to(torch::kFloat64).add(1).div(2), y = b.to(torch::kFloat64).add(1).div(2);
  auto g = torch::exp(-torch::arange(-5, 6, torch::kFloat64).pow(2) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  auto w = torch::outer(g, g).view({1, 1, 11, 11}).repeat({x.size(1), 1, 1, 1});
  auto f = [&](const torch::Tensor& t) { return torch::nn::functional::conv2d(t, w, torch::nn::functional::Conv2dFuncOptions().groups(x.size(1))); };
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto mx = f(x), my = f(y);
  auto sxx = f(x * x) - mx * mx, syy = f(y * y) - my * my, sxy = f(x * y) - mx * my;
  auto s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
  return s.mean().item<double>();
}

// Neighbour fill: unknown pixels take the mean of their known 4-neighbours, repeated
// until every pixel is known.
torch::Tensor neighbour_fill(torch::Tensor x, torch::Tensor known) {
  known = known.expand_as(x).clone();
  x = x * known;
  auto k = torch::tensor({{0., 1., 0.}, {1., 0., 1.}, {0., 1., 0.}}, x.options()).view({1, 1, 3, 3});
  for (int it = 0; it < 64 && !known.all().item<bool>(); ++it) {
    auto sum = torch::nn::functional::conv2d(x * known, k, torch::nn::functional::Conv2dFuncOptions().padding(1)), cnt = torch::nn::functional::conv2d(known, k, torch::nn::functional::Conv2dFuncOptions().padding(1));
    auto fill = known.eq(0) & cnt.gt(0);
    x = torch::where(fill, sum / cnt.clamp_min(1), x);
    known = torch::where(fill, torch::ones_like(known), known);
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string run_dir, out_dir, tasks_s = "box,random,sr4,sdedit";
  int64_t n = 500, batch = 250, steps = 25, threads = 0;
  uint64_t seed = 0;
  double strength = 0.5, dps_scale = 1.0;
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
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--tasks") tasks_s = next();
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--strength") strength = std::stod(next());
    else if (a == "--dps-scale") dps_scale = std::stod(next());
    else if (a == "--threads") threads = std::stoll(next());
    else throw Error("unknown argument " + a, "valid: --run --out --n --batch --steps --tasks --seed --strength --dps-scale --threads");
  }
  if (run_dir.empty() || out_dir.empty()) throw Error("--run and --out are required");
  set_intra_op_threads(threads, true);
  auto run = load_run(run_dir, true, "cpu");
  if (run.config.data.rfind("fashion-mnist", 0) != 0) throw Error("this benchmark needs a Fashion-MNIST run");
  ensure_dir(out_dir);
  auto featnet = load_default_featnet();
  auto test = load_fashion_mnist("", "test");
  const auto ref = gaussian_stats(featnet.features(test.images));
  auto truth = test.images.slice(0, 0, n).to(torch::kFloat32).div(127.5).sub(1.0);  // (n, 1, 28, 28)
  const int64_t K = run.config.unet.num_classes;
  auto fd_of = [&](const torch::Tensor& x) { return frechet_distance(gaussian_stats(featnet.features(to_uint8(x))), ref); };
  auto floor_imgs = test.images.slice(0, n, 2 * n);  // other test images: the FD floor at this N
  const double floor = frechet_distance(gaussian_stats(featnet.features(floor_imgs)), ref);
  std::printf("# restoration: run %s, %lld test images, %lld steps; FD floor (%lld other test images) %.3f\n",
              run_dir.c_str(), (long long)n, (long long)steps, (long long)n, floor);

  nlohmann::json results = nlohmann::json::array();
  std::string table = "| task | method | calls / image | PSNR dB | SSIM | FD | s / image |\n|---|---|---:|---:|---:|---:|---:|\n";
  auto record = [&](const std::string& task, const std::string& method, int64_t calls, const torch::Tensor& x,
                    double secs) {
    const double p = psnr(x, truth), s = ssim(x, truth), fd = fd_of(x);
    std::printf("%-7s %-22s calls %4lld  PSNR %6.2f  SSIM %.4f  FD %8.3f  %.4f s/image\n", task.c_str(),
                method.c_str(), (long long)calls, p, s, fd, secs / double(n));
    std::fflush(stdout);
    char row[256];
    std::snprintf(row, sizeof row, "| %s | %s | %lld | %.2f | %.4f | %.3f | %.4f |\n", task.c_str(), method.c_str(),
                  (long long)calls, p, s, fd, secs / double(n));
    table += row;
    results.push_back({{"task", task}, {"method", method}, {"network_calls", calls}, {"psnr", p}, {"ssim", s},
                       {"fd", fd}, {"seconds_per_image", secs / double(n)}});
    write_file_atomic(out_dir + "/results.json", [&](std::ostream& o) {
      o << nlohmann::json{{"run", run_dir}, {"n", n}, {"steps", steps}, {"fd_floor", floor}, {"results", results}}.dump(2);
    });
    write_file_atomic(out_dir + "/table.md", [&](std::ostream& o) { o << table; });
    write_png(out_dir + "/" + task + "_" + method.substr(0, method.find(' ')) + ".png",
              make_grid(to_uint8(x.slice(0, 0, 32)), 16, 2));
  };

  for (const auto& task : split(tasks_s)) {
    Degradation A;
    torch::Tensor input = truth;  // what the method is given (sdedit: the damaged image)
    std::vector<std::string> methods;
    torch::Tensor baseline;
    std::string baseline_name;
    if (task == "box" || task == "random") {
      auto known = parse_mask(task == "box" ? "box:7,7,14,14" : "random:0.5", 28, 28, seed);
      A = Degradation::mask(known);
      methods = {"repaint", "ddnm", "dps"};
      baseline = neighbour_fill(truth, known.view({1, 1, 28, 28}));
      baseline_name = "neighbour fill";
    } else if (task == "sr4") {
      A = Degradation::downsample(4);
      methods = {"ddnm", "dps"};
      baseline = torch::nn::functional::interpolate(
                     A.apply(truth), torch::nn::functional::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{28, 28}).mode(torch::kBicubic).align_corners(false))
                     .clamp(-1, 1);
      baseline_name = "bicubic";
    } else if (task == "sdedit") {
      A = Degradation::identity();
      auto g = at::make_generator<at::CPUGeneratorImpl>(seed + 3);
      auto box = torch::zeros({1, 1, 28, 28});
      box.slice(2, 7, 21).slice(3, 7, 21).fill_(1);
      input = torch::where(box.gt(0), torch::rand(truth.sizes(), g) * 2 - 1, truth);
      methods = {"sdedit"};
      baseline = input;
      baseline_name = "damaged input";
    } else {
      throw Error("unknown task " + task, "valid: box, random, sr4, sdedit");
    }
    record(task, "baseline: " + baseline_name, 0, baseline, 0.0);
    const auto y = A.apply(input);
    for (const auto& m : methods) {
      RestoreConfig cfg;
      cfg.method = parse_restore_method(m);
      cfg.sampler.steps = steps;
      if (cfg.method == RestoreMethod::Ddnm) {  // DDNM's paper setting: DDIM with η = 0.85
        cfg.sampler.kind = SamplerKind::Ddim;
        cfg.sampler.eta = 0.85;
      }
      cfg.jump_length = 5;
      cfg.resample = 3;
      cfg.strength = strength;
      cfg.dps_scale = dps_scale;
      std::vector<torch::Tensor> parts;
      int64_t calls = 0;
      const auto t0 = Clock::now();
      for (int64_t first = 0; first < n; first += batch) {
        const int64_t b = std::min(batch, n - first);
        NoiseStream init(seed, first, b), noise(mix_seed(seed, 1), first, b);
        auto x_T = init.randn({1, 28, 28});
        Conditioning cond;
        if (K > 0) cond.labels = torch::full({b}, K, torch::kLong);
        // count the network calls of one batch
        struct Counting : Denoiser {
          const Denoiser& inner;
          mutable int64_t calls = 0;
          explicit Counting(const Denoiser& d) : inner(d) {}
          Prediction predict(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) const override {
            ++calls;
            return inner.predict(x, t, c);
          }
          const NoiseSchedule& schedule() const override { return inner.schedule(); }
        } counting(*run.denoiser);
        parts.push_back(restore(counting, A, y.slice(0, first, first + b), x_T, cfg, noise, cond).clamp(-1, 1));
        calls = counting.calls;
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      record(task, m, calls, torch::cat(parts), secs);
    }
  }
  std::printf("\n%s\nwrote %s/table.md, results.json and a grid per row\n", table.c_str(), out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  if (auto* d = dynamic_cast<const diffuse::Error*>(&e); d && !d->hint().empty())
    std::fprintf(stderr, "  %s\n", d->hint().c_str());
  return 1;
}
