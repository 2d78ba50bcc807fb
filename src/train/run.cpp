// Loading a trained run for sampling.
#include <torch/torch.h>

#include <filesystem>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/train.hpp"
#include "train/trainer_state.hpp"

namespace diffuse {

LoadedRun load_run(const std::string& run_dir, bool ema, const std::string& device) {
  const std::string ckpt = checkpoint_path(run_dir);
  if (!std::filesystem::exists(ckpt))
    throw Error("no checkpoint at '" + ckpt + "'", "pass --run with the folder given to 'diffuse train --out'");
  auto file = load_safetensors(ckpt);
  auto h = read_checkpoint_header(file.metadata, ckpt);
  LoadedRun r;
  r.config = h.config;
  r.step = h.step;
  r.class_names = h.class_names;
  const torch::Device dev = resolve_device(device);
  r.network = make_network(r.config, dev);
  get_module(file.tensors, ema ? "ema." : "model.", *r.network.module, ckpt);
  r.network.module->eval();
  if (file.tensors.count("norm.mean")) r.normalizer = {file.tensors.at("norm.mean"), file.tensors.at("norm.std")};
  r.denoiser = std::make_unique<ModelDenoiser>(r.network.forward, make_schedule(r.config.schedule),
                                               r.config.prediction);
  return r;
}

}  // namespace diffuse
