// Restoration quality on test images of a Fashion-MNIST or emoji run: for each task (a
// degradation of N test images) and method, the restorations' PSNR and SSIM against the
// originals and their Fréchet distance (the project's feature network for the data, diffuse
// eval fd), beside simple baselines per task:
//   box       centred box of half the side missing  repaint, ddnm, dps   vs neighbour fill
//   random    50% of the pixels missing              repaint, ddnm, dps   vs neighbour fill
//   sr2, sr4  ×2 / ×4 super-resolution               ddnm, dps            vs bicubic upsampling
//   sdedit    the centre box replaced by uniform noise sdedit             vs the damaged input
//   colorize  RGB → luma (8-bit gray input)          ddnm, dps            vs the gray kept as is and
//             the per-class mean colour (its chroma, from the train split, on the gray)
// Restorations are unconditional (the null class of a class-conditional run). Colorizations
// pass through keep_luma (their luma is the input's, in range); the table gives the luma
// error of the 8-bit outputs, and results.json the error of a plain clamp instead.
// Test images: Fashion-MNIST the first N (default 500); emoji N spread evenly over the
// test split (default all 446: the file is in group order). FD reference: Fashion-MNIST
// the 10 000 test images (floor: N other test images), emoji the train split (floor: the N
// originals themselves).
//
//   bench_restoration --run RUN_DIR --out DIR [--n N] [--batch 250] [--steps 25]
//       [--tasks box,random,sr4,sdedit | colorize,sr2,sr4] [--seed 0] [--strength 0.5] [--dps-scale 1]
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/data.hpp"
#include "bench_util.hpp"
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

using diffuse::bench::split;

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
  const int64_t C = x.size(1);  // each channel on its own
  auto k = torch::tensor({{0., 1., 0.}, {1., 0., 1.}, {0., 1., 0.}}, x.options()).view({1, 1, 3, 3}).repeat({C, 1, 1, 1});
  const auto same = torch::nn::functional::Conv2dFuncOptions().padding(1).groups(C);
  for (int it = 0; it < 64 && !known.all().item<bool>(); ++it) {
    auto sum = torch::nn::functional::conv2d(x * known, k, same), cnt = torch::nn::functional::conv2d(known, k, same);
    auto fill = known.eq(0) & cnt.gt(0);
    x = torch::where(fill, sum / cnt.clamp_min(1), x);
    known = torch::where(fill, torch::ones_like(known), known);
  }
  return x;
}

// The input a method is given, drawn for the figure at the image's size and channels.
torch::Tensor shown_input(const Degradation& A, const torch::Tensor& input, int64_t C) {
  auto x = A.is_identity() ? input : A.pinv(A.apply(input));
  if (x.size(1) != C) x = x.expand({x.size(0), C, x.size(2), x.size(3)});
  return x;
}

// Luma error of 8-bit RGB outputs against the 8-bit gray input, in gray levels: the max and
// mean over pixels of |0.299 R + 0.587 G + 0.114 B − gray|.
std::pair<double, double> luma_error(const torch::Tensor& x, const torch::Tensor& gray) {
  auto u = to_uint8(x).to(torch::kFloat64), g = to_uint8(gray).to(torch::kFloat64);
  auto e = (Degradation::gray().apply(u) - g).abs();
  return {e.max().item<double>(), e.mean().item<double>()};
}

}  // namespace

int main(int argc, char** argv) try {
  std::string run_dir, out_dir, tasks_s;
  int64_t n = 0, batch = 250, steps = 25, threads = 0;
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
  const std::string family = featnet_data_family(run.config.data);
  if (family.empty()) throw Error("this benchmark needs a Fashion-MNIST or emoji run, not " + run.config.data);
  const bool emoji = family == "emoji";
  if (tasks_s.empty()) tasks_s = emoji ? "colorize,sr2,sr4" : "box,random,sr4,sdedit";
  ensure_dir(out_dir);
  const int64_t C = run.config.unet.in_channels, R = run.config.unet.image_size, K = run.config.unet.num_classes;
  const DataOptions dopt = data_options(run.config);
  auto test = make_data_source(data_split_spec(run.config.data, "test"), dopt);
  const int64_t size = test->size();
  if (n == 0) n = emoji ? size : 500;
  if (n < 2 || n > (emoji ? size : size / 2))
    throw Error("--n " + std::to_string(n) + " is out of range",
                "2 … " + std::to_string(emoji ? size : size / 2) + " for " + test->spec());
  auto index = emoji ? torch::arange(n, torch::kLong).mul(size).div(n, "floor") : torch::arange(n, torch::kLong);
  auto picked = test->items(index);
  auto truth = picked.x;  // (n, C, R, R) in [−1, 1]
  const auto labels = picked.labels;

  // FD: the data's feature network, if one is available for C×R×R images.
  std::unique_ptr<FeatNet> featnet;
  std::string featnet_note;
  try {
    featnet = std::make_unique<FeatNet>(FeatNet::load(find_featnet(family, C, R, emoji ? run.config.background : "").path));
  } catch (const Error& e) {
    featnet_note = std::string("no FD: ") + e.what();
    std::printf("# %s\n", featnet_note.c_str());
  }
  GaussianStats ref;
  double floor = std::nan("");
  if (featnet) {
    if (emoji) {
      auto train = make_data_source(data_split_spec(run.config.data, "train"), dopt);
      ref = gaussian_stats(featnet->features(train->items(torch::arange(train->size(), torch::kLong)).x));
      floor = frechet_distance(gaussian_stats(featnet->features(truth)), ref);
    } else {
      ref = gaussian_stats(featnet->features(test->items(torch::arange(size, torch::kLong)).x));
      floor = frechet_distance(gaussian_stats(featnet->features(test->items(torch::arange(n, 2 * n, torch::kLong)).x)), ref);
    }
  }
  auto fd_of = [&](const torch::Tensor& x) {
    return featnet ? frechet_distance(gaussian_stats(featnet->features(to_uint8(x))), ref) : std::nan("");
  };
  std::printf("# restoration: run %s, %lld images of %s, %lld steps; FD floor (%s) %.3f\n", run_dir.c_str(),
              (long long)n, test->spec().c_str(), (long long)steps,
              emoji ? "the originals against the train split" : "other test images against the test split", floor);

  const bool with_luma = tasks_s.find("colorize") != std::string::npos;
  nlohmann::json results = nlohmann::json::array();
  std::string table = std::string("| task | method | calls / image | PSNR dB | SSIM | FD | s / image |") +
                      (with_luma ? " luma error max / mean |\n" : "\n") + "|---|---|---:|---:|---:|---:|---:|" +
                      (with_luma ? "---:|\n" : "\n");
  // The figure of a task: every n/8-th image, one row each: input | baselines | methods | original.
  std::vector<torch::Tensor> figure_cols;
  const auto figure_rows = torch::arange(8, torch::kLong).mul(n).div(8, "floor");
  auto record = [&](const std::string& task, const std::string& method, int64_t calls, const torch::Tensor& x,
                    double secs, const torch::Tensor& gray) {
    const double p = psnr(x, truth), s = ssim(x, truth), fd = fd_of(x);
    char fd_s[32] = "—", luma_s[64] = "";
    if (!std::isnan(fd)) std::snprintf(fd_s, sizeof fd_s, "%.3f", fd);
    nlohmann::json row{{"task", task}, {"method", method}, {"network_calls", calls}, {"psnr", p}, {"ssim", s},
                       {"seconds_per_image", secs / double(n)}};
    if (!std::isnan(fd)) row["fd"] = fd;
    if (gray.defined()) {
      const auto [mx, mean] = luma_error(x, gray);
      std::snprintf(luma_s, sizeof luma_s, " %.2f / %.3f |", mx, mean);
      row["luma_error_max"] = mx;
      row["luma_error_mean"] = mean;
    } else if (with_luma) {
      std::snprintf(luma_s, sizeof luma_s, " — |");
    }
    std::printf("%-8s %-26s calls %4lld  PSNR %6.2f  SSIM %.4f  FD %8s  %.4f s/image%s\n", task.c_str(),
                method.c_str(), (long long)calls, p, s, fd_s, secs / double(n), luma_s);
    std::fflush(stdout);
    char line[320];
    std::snprintf(line, sizeof line, "| %s | %s | %lld | %.2f | %.4f | %s | %.4f |%s\n", task.c_str(), method.c_str(),
                  (long long)calls, p, s, fd_s, secs / double(n), luma_s);
    table += line;
    results.push_back(row);
    write_file_atomic(out_dir + "/results.json", [&](std::ostream& o) {
      nlohmann::json j{{"run", run_dir}, {"data", test->spec()}, {"n", n}, {"steps", steps}, {"results", results}};
      if (!std::isnan(floor)) j["fd_floor"] = floor;
      if (!featnet_note.empty()) j["fd_note"] = featnet_note;
      o << j.dump(2);
    });
    write_file_atomic(out_dir + "/table.md", [&](std::ostream& o) { o << table; });
    std::string stem = method.substr(0, method.find(' '));
    if (stem == "baseline:") stem = "baseline_" + method.substr(10, method.find(' ', 10) - 10);
    write_picture(out_dir + "/" + task + "_" + stem + ".png", make_grid(to_uint8(x.slice(0, 0, 32)), 16, 2));
    figure_cols.push_back(x.index_select(0, figure_rows));
  };

  for (const auto& task : split(tasks_s)) {
    Degradation A;
    torch::Tensor input = truth;  // what the method is given (sdedit: the damaged image)
    std::vector<std::string> methods;
    std::vector<std::pair<std::string, torch::Tensor>> baselines;
    torch::Tensor gray;  // colorize: the 8-bit gray input
    const int64_t q = R / 4;  // the centred box: q … 3q − 1 (7 … 20 at 28×28)
    if (task == "box" || task == "random") {
      auto known = parse_mask(task == "box" ? "box:" + std::to_string(q) + "," + std::to_string(q) + "," +
                                                  std::to_string(2 * q) + "," + std::to_string(2 * q)
                                            : "random:0.5",
                              R, R, seed);
      A = Degradation::mask(known);
      methods = {"repaint", "ddnm", "dps"};
      baselines.push_back({"neighbour fill", neighbour_fill(truth, known.view({1, 1, R, R}))});
    } else if (task == "sr2" || task == "sr4") {
      A = Degradation::downsample(task == "sr2" ? 2 : 4);
      methods = {"ddnm", "dps"};
      baselines.push_back({"bicubic", torch::nn::functional::interpolate(
                                          A.apply(truth), torch::nn::functional::InterpolateFuncOptions()
                                                              .size(std::vector<int64_t>{R, R})
                                                              .mode(torch::kBicubic)
                                                              .align_corners(false))
                                          .clamp(-1, 1)});
    } else if (task == "sdedit") {
      A = Degradation::identity();
      auto g = at::make_generator<at::CPUGeneratorImpl>(seed + 3);
      auto box = torch::zeros({1, 1, R, R});
      box.slice(2, q, 3 * q).slice(3, q, 3 * q).fill_(1);
      input = torch::where(box.gt(0), torch::rand(truth.sizes(), g) * 2 - 1, truth);
      methods = {"sdedit"};
      baselines.push_back({"damaged input", input});
    } else if (task == "colorize") {
      if (C != 3) throw Error("colorize needs an RGB run", "e.g. an emoji run");
      A = Degradation::gray();
      gray = to_uint8(A.apply(truth)).to(torch::kFloat32).div(127.5).sub(1.0);  // as an 8-bit gray PNG gives it
      methods = {"ddnm", "dps"};
      baselines.push_back({"gray kept", gray.expand_as(truth).contiguous()});
      // The per-class mean chroma x − wᵀx·1 of the train split, put on the gray image.
      auto train = make_data_source(data_split_spec(run.config.data, "train"), dopt);
      auto tr = train->items(torch::arange(train->size(), torch::kLong));
      auto chroma = tr.x - A.apply(tr.x);
      auto sums = torch::zeros({train->num_classes(), C, R, R}).index_add_(0, tr.labels, chroma);
      auto counts = torch::bincount(tr.labels, {}, train->num_classes()).to(torch::kFloat32).clamp_min(1);
      auto mean_chroma = sums / counts.view({-1, 1, 1, 1});
      baselines.push_back({"class mean colour", keep_luma(gray + mean_chroma.index_select(0, labels), gray)});
    } else {
      throw Error("unknown task " + task, "valid: box, random, sr2, sr4, sdedit, colorize");
    }
    figure_cols.clear();
    figure_cols.push_back((gray.defined() ? gray.expand_as(truth) : shown_input(A, input, C)).index_select(0, figure_rows));
    for (const auto& [name, x] : baselines) record(task, "baseline: " + name, 0, x, 0.0, gray);
    const auto y = gray.defined() ? gray : A.apply(input);
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
        auto x_T = init.randn({C, R, R});
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
        auto yb = y.slice(0, first, first + b);
        auto x = restore(counting, A, yb, x_T, cfg, noise, cond);
        parts.push_back(gray.defined() ? keep_luma(x, yb) : x.clamp(-1, 1));
        if (gray.defined()) parts.push_back(x.clamp(-1, 1));  // the plain clamp, for its luma error
        calls = counting.calls;
      }
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (gray.defined()) {
        std::vector<torch::Tensor> kept, clamped;
        for (size_t i = 0; i < parts.size(); i += 2) {
          kept.push_back(parts[i]);
          clamped.push_back(parts[i + 1]);
        }
        const auto [mx, mean] = luma_error(torch::cat(clamped), gray);
        std::printf("%-8s %-26s a plain clamp instead of keep_luma: luma error max %.2f mean %.3f\n", task.c_str(),
                    m.c_str(), mx, mean);
        record(task, m, calls, torch::cat(kept), secs, gray);
        results.back()["luma_error_clamp_max"] = mx;
        results.back()["luma_error_clamp_mean"] = mean;
      } else {
        record(task, m, calls, torch::cat(parts), secs, gray);
      }
    }
    figure_cols.push_back(truth.index_select(0, figure_rows));
    // rows = images, columns = input | baselines | methods | original
    auto fig = torch::stack(figure_cols, 1).flatten(0, 1);
    write_picture(out_dir + "/figure_" + task + ".png", make_grid(to_uint8(fig), int64_t(figure_cols.size()), 2));
  }
  std::printf("\n%s\nwrote %s/table.md, results.json, a grid per row and figure_TASK.png (input | baselines | "
              "methods | original)\n", table.c_str(), out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  if (auto* d = dynamic_cast<const diffuse::Error*>(&e); d && !d->hint().empty())
    std::fprintf(stderr, "  %s\n", d->hint().c_str());
  return 1;
}
