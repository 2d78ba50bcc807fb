// Training throughput of the image U-Net, against this machine's convolution peak measured in
// the same run. Prints a Markdown table (and, with --profile, the ops that dominate a step).
//
//   bench_train_throughput [--preset fmnist-base] [--config FILE.json] [--batch 128] [--steps 6] [--threads N]
//                          [--precision fp32,bf16] [--channels-last 0,1,auto] [--fused 0] [--profile]
//                          [--image-size 28] [--channels 1] [--classes 10]   (emoji-32: 32, 3, 9)
//
// --fused 0,1 times every row with the unfused GroupNorm + SiLU ops (0, the library's default)
// and the fused kernel (1; nn/group_norm_silu.hpp). The fused kernel runs for fp32 NCHW only: the
// bf16 and channels-last rows take the unfused ops either way.
//
// FLOPs per image are counted by diffuse::unet_forward_flops from the architecture; a
// training step costs 3× the forward (forward + backward for inputs and weights), the usual
// convention. Peak: the best forward GFLOP/s of a 3×3, 128→128 convolution over 128×28×28
// in the same precision, NCHW and channels-last, through the same LibTorch.
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/nn/group_norm_silu.hpp"
#include "diffuse/train.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

// Forward GFLOP/s of a 3×3 convolution C→C over N×C×R×R, the best of `reps` after a warm-up.
double conv_peak(diffuse::Precision p, bool channels_last, int reps = 5) {
  torch::NoGradGuard g;
  const int64_t N = 128, C = 128, R = 28;
  auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto dt = p == diffuse::Precision::Bf16 ? torch::kBFloat16 : torch::kFloat32;
  auto x = torch::randn({N, C, R, R}).to(dt).contiguous(fmt);
  auto w = torch::randn({C, C, 3, 3}).mul(0.05).to(dt).contiguous(fmt);
  auto b = torch::zeros({C}).to(dt);
  const double flops = 2.0 * N * C * C * 9 * R * R;
  double best = 0;
  for (int i = 0; i < reps + 1; ++i) {
    auto t0 = Clock::now();
    auto y = torch::conv2d(x, w, b, 1, 1);
    const double s = seconds_since(t0);
    if (i > 0) best = std::max(best, flops / s / 1e9);
  }
  return best;
}

struct StepResult {
  double images_per_s = 0;
  double step_s = 0;
};

// Time `steps` training steps (forward, ε-MSE loss, backward, AdamW) of the config's network on
// random batches, after 2 warm-up steps.
StepResult time_training(const diffuse::TrainConfig& cfg, int steps, bool profile) {
  auto net = diffuse::make_network(cfg);
  net.module->train();
  torch::optim::AdamW opt(net.module->parameters(), torch::optim::AdamWOptions(cfg.lr));
  const int64_t B = cfg.batch, C = cfg.unet.in_channels, R = cfg.unet.image_size;
  auto step = [&] {
    auto x = torch::randn({B, C, R, R});
    auto eps = torch::randn({B, C, R, R});
    auto t = torch::randint(0, 1000, {B}, torch::kLong);
    diffuse::Conditioning cond;
    if (cfg.unet.num_classes > 0) cond.labels = torch::randint(0, cfg.unet.num_classes, {B}, torch::kLong);
    opt.zero_grad();
    auto loss = torch::mse_loss(net.forward(x, t, cond), eps);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 2; ++i) step();
  if (profile) {
    using namespace torch::autograd::profiler;
    std::map<std::string, double> self_us;
    double total_us = 0;
    {
      TLSLegacyProfilerGuard guard(
          torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU),
          [&](const thread_event_lists& lists) {
            // Self time of each op: its span minus the spans of the ops it called.
            for (const auto& events : lists) {
              struct Open { const LegacyEvent* e; double child_us; };
              std::vector<Open> stack;
              for (const auto& e : events) {
                if (e.kind() == EventKind::PushRange) {
                  stack.push_back({&e, 0.0});
                } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
                  const auto open = stack.back();
                  stack.pop_back();
                  const double us = open.e->cpuElapsedUs(e);
                  self_us[open.e->name()] += us - open.child_us;
                  if (!stack.empty()) stack.back().child_us += us;
                  else total_us += us;
                }
              }
            }
          });
      step();
    }
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [name, us] : self_us) rows.push_back({us, name});
    std::sort(rows.rbegin(), rows.rend());
    std::printf("\nprofile of one step (%s, %s, GroupNorm + SiLU %s): self time by op, top 25 of %.0f ms on all threads\n",
                diffuse::to_string(cfg.precision).c_str(), cfg.layout == diffuse::MemoryLayout::ChannelsLast ? "channels-last" : "NCHW",
                diffuse::fused_group_norm_silu() ? "fused" : "unfused", total_us / 1e3);
    for (size_t i = 0; i < rows.size() && i < 25; ++i)
      std::printf("  %8.1f ms  %5.1f%%  %s\n", rows[i].first / 1e3, 100 * rows[i].first / total_us,
                  rows[i].second.c_str());
  }
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  StepResult r;
  r.step_s = seconds_since(t0) / steps;
  r.images_per_s = double(B) / r.step_s;
  return r;
}
}  // namespace

int main(int argc, char** argv) try {
  std::string preset = "fmnist-base", config_file, precisions = "fp32,bf16", layouts = "0,1", fused = "0";
  int64_t batch = 128, image_size = 28, channels = 1, classes = 10;
  int steps = 6, threads = int(std::max(1u, std::thread::hardware_concurrency()));
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw diffuse::Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--preset") preset = next();
    else if (a == "--config") config_file = next();
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--precision") precisions = next();
    else if (a == "--channels-last") layouts = next();
    else if (a == "--fused") fused = next();
    else if (a == "--profile") profile = true;
    else if (a == "--image-size") image_size = std::stoll(next());
    else if (a == "--channels") channels = std::stoll(next());
    else if (a == "--classes") classes = std::stoll(next());
    else
      throw diffuse::Error("unknown argument " + a,
                           "valid: --preset --config --batch --steps --threads --precision --channels-last --fused "
                           "--profile --image-size --channels --classes");
  }
  at::set_num_threads(threads);
  torch::manual_seed(0);

  // --config FILE.json: the preset's settings overridden by the file's.
  auto cfg = diffuse::preset_config(preset);
  if (!config_file.empty()) cfg = diffuse::load_train_config_file(config_file, cfg);
  cfg.batch = batch;
  cfg.unet.in_channels = channels;
  cfg.unet.image_size = image_size;
  cfg.unet.num_classes = cfg.class_conditional ? classes : 0;
  const double fwd = diffuse::unet_forward_flops(cfg.unet);
  const double train_flops = 3.0 * fwd;
  int64_t params = 0;
  for (const auto& p : diffuse::UNet(cfg.unet)->parameters()) params += p.numel();

  std::printf("# training throughput: preset %s%s, %lld×%lld×%lld images, batch %lld, %d threads, LibTorch %s\n",
              preset.c_str(), config_file.empty() ? "" : (" + " + config_file).c_str(), (long long)channels,
              (long long)image_size, (long long)image_size, (long long)batch, threads, TORCH_VERSION);
  std::printf("model: %.2f M parameters, %.3f GFLOP forward per image (counted), %.3f GFLOP per "
              "trained image (3× forward)\n", params / 1e6, fwd / 1e9, train_flops / 1e9);
  // The U-Net options, for tools/reference/unet_throughput.py --unet.
  std::printf("unet: %s\n\n",
              nlohmann::json::parse(diffuse::train_config_to_json(cfg))["unet"].dump().c_str());
  std::printf("| precision | layout | GroupNorm + SiLU | peak conv GFLOP/s | images/s | s/step | model GFLOP/s | of peak |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const auto& pname : split(precisions)) {
    const auto p = diffuse::parse_precision(pname);
    const double peak = std::max(conv_peak(p, false), conv_peak(p, true));
    for (const auto& l : split(layouts)) {
      for (const auto& f : split(fused)) {
        cfg.precision = p;
        diffuse::set_fused_group_norm_silu(f == "1");
        // auto: what `diffuse train` does by default — time both at start-up, keep the faster
        cfg.layout = l == "auto" ? diffuse::MemoryLayout::Auto
                     : l == "1"  ? diffuse::MemoryLayout::ChannelsLast
                                 : diffuse::MemoryLayout::Nchw;
        if (cfg.layout == diffuse::MemoryLayout::Auto) cfg.layout = diffuse::choose_layout(cfg, torch::kCPU, cfg.batch).layout;
        const auto r = time_training(cfg, steps, profile);
        const double gflops = r.images_per_s * train_flops / 1e9;
        std::printf("| %s | %s | %s | %.0f | %.1f | %.2f | %.1f | %.0f%% |\n", pname.c_str(),
                    cfg.layout == diffuse::MemoryLayout::ChannelsLast ? "channels-last" : "NCHW", f == "1" ? "fused" : "unfused", peak,
                    r.images_per_s, r.step_s, gflops, 100 * gflops / peak);
        std::fflush(stdout);
      }
    }
  }
  return 0;
} catch (const diffuse::Error& e) {
  std::fprintf(stderr, "error: %s%s%s\n", e.what(), e.hint().empty() ? "" : "; ", e.hint().c_str());
  return 2;
} catch (const c10::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what_without_backtrace());
  return 2;
}
