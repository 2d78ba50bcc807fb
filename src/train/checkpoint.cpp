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
      throw Error("'" + path + "': tensor '" + prefix + name + "' has shape " + c10::str(it->second.sizes()) +
                      " where the model of its config has " + c10::str(dst.sizes()),
                  "the checkpoint does not match the model in its config (another model size?)");
    if (!it->second.is_floating_point() && dst.is_floating_point())
      throw Error("'" + path + "': tensor '" + prefix + name + "' holds " +
                  std::string(c10::toString(it->second.scalar_type())) + " values, not floating point");
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
  // A whole decimal number in [lo, hi], or an error naming the key.
  auto integer = [&](const std::string& key, int64_t lo, int64_t hi) {
    const std::string v = get(key);
    size_t used = 0;
    int64_t x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (v.empty() || used != v.size() || x < lo || x > hi)
      throw Error("'" + path + "' has a corrupt checkpoint header: '" + key + "' is '" + v + "'",
                  "the file is damaged; use another checkpoint");
    return x;
  };
  const int64_t version = integer("format_version", 1, 1 << 20);
  if (version > kCheckpointVersion)
    throw Error("'" + path + "' was written by a newer diffuse (format version " + std::to_string(version) +
                    ", this one reads up to " + std::to_string(kCheckpointVersion) + ")",
                "update diffuse");
  CheckpointHeader h;
  h.config = train_config_from_json(get("config"), {}, "the config in '" + path + "'");
  {
    TrainConfig v = h.config;
    v.device = "cpu";  // a run trained on a GPU still loads where there is none
    validate(v);
  }
  h.step = integer("step", 0, int64_t(1) << 53);
  if (auto it = md.find("class_names"); it != md.end()) {
    try {
      h.class_names = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception&) {
      throw Error("'" + path + "' has a corrupt checkpoint header: 'class_names' is not a list of names");
    }
  }
  return h;
}

}  // namespace diffuse
