// diffuse forward: draw the forward process q(x_t | x_0) the way seed 002 does.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/diffusion.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse::cli {

void add_forward(CLI::App& app) {
  struct Opts {
    std::string data, out, data_dir, background = DataOptions{}.background;
    int64_t n = 2000, image_size = 0, picture_scale = 0;
    uint64_t seed = 0;
    ScheduleFlags sched;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("forward", "draw the forward (noising) process of a data spec to PNG");
  cmd->add_option("--data", o->data, "data spec: " + join(data_spec_names()))->required();
  cmd->add_option("--out", o->out, "output PNG")->required();
  cmd->add_option("--n", o->n, "vectors drawn (curves show the first 8; histograms use all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "fashion-mnist: folder of the IDX files (default: Debian's)");
  cmd->add_option("--background", o->background, "emoji: colour behind the glyphs: white, black, #rrggbb")
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "image specs with a size (folder:PATH, emoji): side in pixels (0: the spec's default)")
      ->capture_default_str();
  cmd->add_option("--picture-scale", o->picture_scale, kPictureScaleHelp)->capture_default_str();
  add_schedule_flags(*cmd, o->sched);
  cmd->callback([o] {
    if (o->n < 1) throw Error("--n must be >= 1");
    if (o->image_size < 0) throw Error("--image-size must be >= 0", "0: the data spec's default size");
    picture_scale(1, 1, o->picture_scale);  // a bad factor is an error before drawing
    const ScheduleConfig sc = o->sched.resolve(ScheduleConfig{});
    const NoiseSchedule s = make_schedule(sc);
    DataOptions dopt;
    dopt.data_dir = o->data_dir;
    dopt.background = o->background;
    if (o->image_size > 0) dopt.image_size = o->image_size;
    auto src = make_data_source(o->data, dopt);
    auto g = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    const int64_t T = s.T();
    const std::string title = "forward process q(x_t | x_0), " + o->data + ", " + to_string(sc.kind) +
                              " schedule, T = " + std::to_string(T);
    if (src->is_image()) {
      // Rows: images; columns: x_0 and x_t at evenly spaced t (the same noise ε per image).
      const int64_t rows = std::min<int64_t>(o->n, 8), cols = 9;
      auto x0 = src->sample(rows, g).x;
      auto eps = torch::randn(x0.sizes(), g);
      std::vector<torch::Tensor> frames;
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t t = j == 0 ? -1 : (T - 1) * j / (cols - 1);
        frames.push_back(t < 0 ? x0 : q_sample(s, x0, torch::full({rows}, t, torch::kLong), eps));
      }
      auto grid = torch::stack(frames, 1).flatten(0, 1);  // row-major: image r, column j
      write_picture(o->out, make_grid(to_uint8(grid), cols, 2), o->picture_scale);
      std::printf("wrote %s: %lld images (rows) at x_0 and t = %lld … %lld in %lld columns\n", o->out.c_str(),
                  (long long)rows, (long long)((T - 1) / (cols - 1)), (long long)(T - 1), (long long)cols);
      return;
    }
    auto raw = src->sample(o->n, g).x;
    // As the model sees it: standardised per dimension (the trainer's default).
    auto x0 = Normalizer::fit(raw).encode(raw);
    std::vector<Snapshot> snaps = {{"x_0 (standardised data)", x0}};
    for (int64_t t : {T / 10, T / 4, T / 2, T - 1}) {
      auto tt = torch::full({o->n}, t, torch::kLong);
      auto xt = q_sample(s, x0, tt, torch::randn(x0.sizes(), g));
      char buf[96];
      std::snprintf(buf, sizeof buf, "t = %lld (ᾱ = %.3g)", (long long)t, s.alpha_bar(t));
      snaps.push_back({buf, xt});
    }
    save_process_figure(o->out, title, snaps, true);
    std::printf("wrote %s\n", o->out.c_str());
  });
}

}  // namespace diffuse::cli
