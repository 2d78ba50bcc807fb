// diffuse data: write fresh draws of a vector data spec as CSV.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

namespace diffuse::cli {

void add_data(CLI::App& app) {
  struct Opts {
    std::string data, out;
    int64_t n = 1000;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("data", "write fresh draws of a vector data spec to CSV (one vector a row)");
  cmd->add_option("--data", o->data, "data spec: " + join(data_spec_names()))->required();
  cmd->add_option("--n", o->n, "number of vectors")->capture_default_str();
  cmd->add_option("--out", o->out, "output CSV file")->required();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->callback([o] {
    if (o->n < 1) throw Error("--n must be >= 1");
    if (is_image_spec(o->data))
      throw Error("'diffuse data' writes vector data as CSV; '" + o->data + "' is image data",
                  "vector specs: signals, toy:NAME, csv:PATH");
    auto src = make_data_source(o->data);
    auto g = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    write_csv(o->out, src->sample(o->n, g).x);
    std::printf("wrote %lld vectors of dimension %lld to %s\n", (long long)o->n, (long long)src->shape()[0],
                o->out.c_str());
  });
}

}  // namespace diffuse::cli
