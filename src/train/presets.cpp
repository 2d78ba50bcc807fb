// Named training presets (--preset NAME): JSON configs compiled into the binary.
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

namespace diffuse {

namespace {
struct Preset {
  const char* name;
  const char* what;
  const char* json;
};
// Sizes are starting points; see docs/images.md for what each was measured to do.
const Preset kPresets[] = {
    {"fmnist-tiny", "Fashion-MNIST, small class-conditional U-Net: the demo",
     R"({"data": "fashion-mnist", "class_conditional": true, "label_dropout": 0.1,
         "schedule": {"kind": "linear", "T": 1000},
         "unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "blocks_per_level": 1,
                  "attention_resolutions": [7], "head_channels": 32, "dropout": 0.0, "groups": 8},
         "steps": 3000, "batch": 64, "lr": 1e-3, "warmup": 200, "ema_decay": 0.995,
         "log_every": 50, "checkpoint_every": 500})"},
    {"fmnist-base", "Fashion-MNIST, the Ho et al. U-Net at 28×28, class-conditional",
     R"({"data": "fashion-mnist", "class_conditional": true, "label_dropout": 0.1,
         "schedule": {"kind": "linear", "T": 1000},
         "unet": {"base_channels": 64, "channel_mult": [1, 2, 2], "blocks_per_level": 2,
                  "attention_resolutions": [14], "head_channels": 32, "dropout": 0.1, "groups": 32},
         "steps": 20000, "batch": 128, "lr": 2e-4, "warmup": 500, "ema_decay": 0.9995,
         "log_every": 50, "checkpoint_every": 1000})"},
};
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.push_back(p.name);
  return out;
}

TrainConfig preset_config(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name) return train_config_from_json(p.json, {}, "preset '" + name + "'");
  throw Error("unknown preset '" + name + "'", "valid presets: " + join(preset_names()));
}

}  // namespace diffuse
