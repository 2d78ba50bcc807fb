// diffuse forward: draw the forward process q(x_t | x_0) the way seed 002 does.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/diffusion.hpp"
#include "diffuse/error.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse::cli {

void add_forward(CLI::App& app) {
  struct Opts {
    std::string data, out;
    int64_t n = 2000;
    uint64_t seed = 0;
    ScheduleFlags sched;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("forward", "draw the forward (noising) process of a data spec to PNG");
  cmd->add_option("--data", o->data, "data spec: " + join(vector_spec_names()))->required();
  cmd->add_option("--out", o->out, "output PNG")->required();
  cmd->add_option("--n", o->n, "vectors drawn (curves show the first 8; histograms use all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  add_schedule_flags(*cmd, o->sched);
  cmd->callback([o] {
    if (o->n < 1) throw Error("--n must be >= 1");
    const ScheduleConfig sc = o->sched.resolve(ScheduleConfig{});
    const NoiseSchedule s = make_schedule(sc);
    auto src = make_vector_source(o->data);
    auto g = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    auto raw = src->sample(o->n, g);
    // As the model sees it: standardised per dimension (the trainer's default).
    auto x0 = Normalizer::fit(raw).encode(raw);
    const int64_t T = s.T();
    std::vector<Snapshot> snaps = {{"x_0 (standardised data)", x0}};
    for (int64_t t : {T / 10, T / 4, T / 2, T - 1}) {
      auto tt = torch::full({o->n}, t, torch::kLong);
      auto xt = q_sample(s, x0, tt, torch::randn(x0.sizes(), g));
      char title[96];
      std::snprintf(title, sizeof title, "t = %lld (ᾱ = %.3g)", (long long)t, s.alpha_bar(t));
      snaps.push_back({title, xt});
    }
    save_process_figure(o->out, "forward process q(x_t | x_0), " + o->data + ", " + to_string(sc.kind) + " schedule, T = " + std::to_string(T), snaps, true);
    std::printf("wrote %s\n", o->out.c_str());
  });
}

}  // namespace diffuse::cli
