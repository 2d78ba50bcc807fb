// diffuse eval: metrics. `eval swd` compares two CSV sets of vectors; the other
// subcommands live in cmd_eval_*.cpp, one file each.
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"

namespace diffuse::cli {

void add_eval(CLI::App& app) {
  auto* eval = app.add_subcommand("eval", "evaluate samples");
  eval->require_subcommand(1);
  struct Opts {
    std::string a, b;
    int64_t projections = 512;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* swd = eval->add_subcommand("swd", "sliced Wasserstein-2 distance between two CSV sets of vectors");
  swd->add_option("--a", o->a, "first CSV (e.g. DIR/samples.csv)")->required();
  swd->add_option("--b", o->b, "second CSV (e.g. fresh data from 'diffuse data')")->required();
  swd->add_option("--projections", o->projections, "random directions")->capture_default_str();
  swd->add_option("--seed", o->seed, "seed of the directions")->capture_default_str();
  add_eval_featnet(*eval);
  add_eval_fd(*eval);
  add_eval_nll(*eval);
  add_eval_spectrum(*eval);
  add_eval_recon(*eval);
  swd->callback([o] {
    auto a = read_csv(o->a), b = read_csv(o->b);
    if (a.size(1) != b.size(1))
      throw Error("the two sets have different dimensions (" + std::to_string(a.size(1)) + " vs " +
                  std::to_string(b.size(1)) + ")");
    std::printf("sliced_wasserstein_2 %.6f  (n_a=%lld, n_b=%lld, dim=%lld, projections=%lld)\n",
                sliced_wasserstein(a, b, o->projections, o->seed), (long long)a.size(0),
                (long long)b.size(0), (long long)a.size(1), (long long)o->projections);
  });
}

}  // namespace diffuse::cli
