#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "train/trainer_state.hpp"

namespace diffuse {

std::string checkpoint_path(const std::string& run_dir) { return run_dir + "/checkpoint.safetensors"; }

void put_module(std::map<std::string, torch::Tensor>& out, const std::string& prefix,
                torch::nn::Module& m) {
  for (const auto& p : m.named_parameters()) out[prefix + p.key()] = p.value().detach();
  for (const auto& b : m.named_buffers()) out[prefix + b.key()] = b.value().detach();
}

void get_module(const std::map<std::string, torch::Tensor>& in, const std::string& prefix,
                torch::nn::Module& m, const std::string& path) {
  torch::NoGradGuard g;
  auto load = [&](const std::string& name, torch::Tensor& dst) {
    auto it = in.find(prefix + name);
    if (it == in.end())
      throw Error("'" + path + "' has no tensor '" + prefix + name + "'",
                  "the checkpoint does not match the model in its config");
    if (it->second.sizes() != dst.sizes())
      throw Error("'" + path + "': tensor '" + prefix + name + "' has the wrong shape");
    dst.copy_(it->second);
  };
  for (auto& p : m.named_parameters()) load(p.key(), p.value());
  for (auto& b : m.named_buffers()) load(b.key(), b.value());
}

std::map<std::string, std::string> checkpoint_metadata(const TrainConfig& c, int64_t step,
                                                       const std::vector<std::string>& class_names) {
  return {{"format", kCheckpointFormat},
          {"format_version", std::to_string(kCheckpointVersion)},
          {"step", std::to_string(step)},
          {"config", train_config_to_json(c)},
          {"class_names", nlohmann::json(class_names).dump()}};
}

CheckpointHeader read_checkpoint_header(const std::map<std::string, std::string>& md,
                                        const std::string& path) {
  auto get = [&](const std::string& k) {
    auto it = md.find(k);
    if (it == md.end())
      throw Error("'" + path + "' is not a diffuse checkpoint (no '" + k + "' in its metadata)");
    return it->second;
  };
  if (get("format") != kCheckpointFormat)
    throw Error("'" + path + "' is not a diffuse checkpoint");
  if (std::stoi(get("format_version")) > kCheckpointVersion)
    throw Error("'" + path + "' was written by a newer diffuse (format version " +
                get("format_version") + ")", "update diffuse");
  CheckpointHeader h;
  h.config = train_config_from_json(get("config"), {}, "the config in '" + path + "'");
  h.step = std::stoll(get("step"));
  if (auto it = md.find("class_names"); it != md.end())
    h.class_names = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  return h;
}

}  // namespace diffuse
