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
// Both are sized by measurement on 2 cores (docs/images.md): with ~1 hour of CPU, a 1.6 M-parameter
// U-Net trained for more steps beats a 6.5 M one trained for 3× fewer; dropout only costs time
// (random numbers are slow on the CPU) when training sees about two epochs.
const Preset kPresets[] = {
    // fmnist-tiny's objective by FD after 4 one-core minutes (bench/time_to_quality, N = 1000,
    // docs/time_to_quality.md): min-SNR-5 weighting with v-prediction 22.94 against 34.91 for
    // unweighted ε; min-SNR alone 27.80, + cosine 26.91, + batch 64 36.94, + EMA 0.995 27.13,
    // + no attention 29.51; lr 4e-3 (unweighted) 35.07.
    {"fmnist-tiny", "Fashion-MNIST, small class-conditional U-Net, T = 250: the demo (~8 min)",
     R"({"data": "fashion-mnist", "class_conditional": true, "label_dropout": 0.1,
         "prediction": "v", "loss": {"weighting": "min-snr"},
         "schedule": {"kind": "linear", "T": 250, "beta_start": 4e-4, "beta_end": 0.08},
         "unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "blocks_per_level": 1,
                  "attention_resolutions": [7], "head_channels": 32, "dropout": 0.0, "groups": 8},
         "steps": 800, "batch": 32, "lr": 2e-3, "warmup": 100, "ema_decay": 0.99,
         "log_every": 50, "checkpoint_every": 200, "sample_every": 400, "sample_n": 20})"},
    {"fmnist-base", "Fashion-MNIST, class-conditional U-Net, T = 1000: best quality per hour",
     R"({"data": "fashion-mnist", "class_conditional": true, "label_dropout": 0.1,
         "schedule": {"kind": "linear", "T": 1000},
         "unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "blocks_per_level": 2,
                  "attention_resolutions": [7], "head_channels": 32, "dropout": 0.0, "groups": 8},
         "steps": 3600, "batch": 64, "lr": 1e-3, "warmup": 200, "ema_decay": 0.998,
         "log_every": 50, "checkpoint_every": 250, "sample_every": 1000, "sample_n": 20})"},
    // Emoji (3×32×32, 9 classes, 3 201 training images), sized by measurement on a quiet machine
    // (2026-11-30, batch 64, 2 threads, docs/colour.md): base 32 with three levels (32, 16, 8) and
    // no dropout trains at 0.67 it/s (43 images/s); a fourth level (…, 4) costs 22% (0.52 it/s)
    // and dropout 0.1 another 12% (0.46 it/s). The hour is ~48 epochs of the set. By FD after 20
    // minutes of training (bench/time_to_quality, docs/colour.md) this network (28.97) beat one
    // block per level (32.69) and base 48 (39.81).
    {"emoji-tiny", "emoji 32×32, small class-conditional U-Net, T = 250: the colour demo (~7 min)",
     R"({"data": "emoji", "class_conditional": true, "label_dropout": 0.1,
         "schedule": {"kind": "linear", "T": 250, "beta_start": 4e-4, "beta_end": 0.08},
         "unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "blocks_per_level": 1,
                  "attention_resolutions": [8], "head_channels": 32, "dropout": 0.0, "groups": 8},
         "steps": 800, "batch": 32, "lr": 2e-3, "warmup": 100, "ema_decay": 0.99,
         "log_every": 50, "checkpoint_every": 200, "sample_every": 400, "sample_n": 18})"},
    {"emoji-32", "emoji 32×32, class-conditional U-Net, T = 1000: best quality per hour (61 min)",
     R"({"data": "emoji", "class_conditional": true, "label_dropout": 0.1,
         "schedule": {"kind": "linear", "T": 1000},
         "unet": {"base_channels": 32, "channel_mult": [1, 2, 2], "blocks_per_level": 2,
                  "attention_resolutions": [8], "head_channels": 32, "dropout": 0.0, "groups": 8},
         "steps": 2200, "batch": 64, "lr": 1e-3, "warmup": 200, "ema_decay": 0.998,
         "log_every": 50, "checkpoint_every": 250, "sample_every": 1100, "sample_n": 18})"},
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
