// diffuse — training configuration, the Trainer and run folders.
//
// A run folder holds everything of one run:
//   config.json               the resolved configuration
//   checkpoint.safetensors    model, EMA and optimizer state, data normaliser,
//                             the config in the metadata (written atomically)
//   log.csv                   step,loss,lr,grad_norm,it_per_s,elapsed_s
//   loss.png                  the loss curve
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "diffuse/data.hpp"
#include "diffuse/denoiser.hpp"
#include "diffuse/diffusion.hpp"
#include "diffuse/nn/mlp.hpp"
#include "diffuse/nn/autoencoder_kl.hpp"
#include "diffuse/nn/unet.hpp"
#include "diffuse/nn/vae.hpp"
#include "diffuse/schedule.hpp"

namespace diffuse {

class Distributed;  // distributed.hpp

// Numeric precision of the forward/backward pass; the master weights stay fp32.
enum class Precision { Fp32, Bf16 };  // bf16: autocast on CPU (AMX/AVX512-BF16) or CUDA
std::string to_string(Precision p);
Precision parse_precision(const std::string& name);  // "fp32", "bf16"

// Memory layout of an image network's weights and activations. Which is faster depends on the
// machine, the network and the batch (NCHW was 16% faster than channels-last for fmnist-base
// here; oneDNN's channels-last convolutions win elsewhere), so Auto times both at start-up.
enum class MemoryLayout {
  Auto,          // train: time a few training steps in each, keep the faster (choose_layout); sample: NCHW
  Nchw,          // contiguous (B, C, H, W); the fused GroupNorm + SiLU kernel runs on it
  ChannelsLast,  // NHWC strides (oneDNN's blocked convolutions)
};
std::string to_string(MemoryLayout l);
MemoryLayout parse_memory_layout(const std::string& name);  // "auto", "nchw", "channels-last"

// What a run trains (--model).
enum class ModelKind {
  Diffusion,  // a denoiser ε_θ(x_t, t) (MLP for vectors, U-Net for images): DDPM
  Vae,        // seed 003's variational autoencoder (nn/vae.hpp), images only; loss −ELBO
  AutoencoderKL,  // latent diffusion's KL autoencoder (nn/autoencoder_kl.hpp), images only; the
                  // first stage of `train --latent`
};
std::string to_string(ModelKind k);
ModelKind parse_model_kind(const std::string& name);  // "diffusion", "vae", "autoencoder-kl"
std::vector<std::string> model_kind_names();

// A run made by `diffuse distill` (progressive distillation, Salimans & Ho 2022; distill.hpp,
// docs/distill.md): where it comes from and how far it got. Absent (teacher empty) for every
// other run; config.json has a "distill" section only when it is set.
struct DistillInfo {
  std::string teacher;             // the teacher's run folder, as given to --run
  PredictionType teacher_prediction = PredictionType::Epsilon;  // what the teacher's network predicts
  int64_t teacher_steps = 0;       // N₀: DDIM grid points of the teacher (--from-steps)
  int64_t target_steps = 0;        // grid points of the last round's student (--to-steps)
  int64_t steps = 0;               // grid points the weights are (being) distilled for: DDIM with
                                   // this many trailing-spacing steps samples the run
  double guidance = 1.0;           // classifier-free guidance scale baked into the targets
  double clip_x0 = 0.0;            // the teacher's x̂₀ clamp in its DDIM steps (0: none)
  int64_t convert_steps = 0;       // optimizer steps that first refit the teacher as v-prediction
  int64_t round_steps = 0;         // optimizer steps per halving
  int64_t rounds_done = 0;         // halvings finished
  bool active() const { return !teacher.empty(); }
};

struct TrainConfig {
  ModelKind model_kind = ModelKind::Diffusion;  // what the run trains
  std::string data = "signals";    // data spec (see data.hpp)
  std::string data_dir;            // fashion-mnist: folder of the IDX files ("": Debian's)
  int64_t image_size = 0;          // folder:PATH, emoji: image side (0: the data's default, 28 / 32)
  std::string background = "white";  // emoji: colour behind the glyphs (white, black, #rrggbb)
  ScheduleConfig schedule;         // the noise schedule
  PredictionType prediction = PredictionType::Epsilon;  // what the network predicts
  LossConfig loss;                 // loss weighting
  MlpOptions model;                // network for vector data (model.dim is set from the data)
  UNetOptions unet;                // network for image data (channels and size set from the data;
                                   // VAE runs keep the data's channels and size here too)
  VaeOptions vae;                  // model_kind vae: the network (channels and size set from the data)
  // model_kind autoencoder-kl: the network (channels and sample_size set from the data; the
  // scaling_factor measured when training finishes). Latent runs: a copy of their autoencoder's.
  AutoencoderKLOptions autoencoder;
  double kl_weight = 1e-6;         // autoencoder-kl: loss = MSE + kl_weight · KL (both per pixel element)
  // Latent diffusion: the folder of a finished autoencoder-kl run. The diffusion model trains on
  // its latents μ_φ(x) · scaling_factor of that run's data (encoded once, held in memory), and
  // its checkpoint keeps a copy of the autoencoder, so the run samples on its own.
  std::string latent;
  bool class_conditional = false;  // condition on the data's labels (and learn the null class)
  double label_dropout = 0.1;      // class_conditional: P(label → null) per sample, for guidance
  Precision precision = Precision::Fp32;  // bf16 autocast for the network's forward/backward
  MemoryLayout layout = MemoryLayout::Auto;  // images: NCHW or channels-last (auto: timed at start-up)
  bool normalize = true;           // standardise each data dimension (fitted on 10 000 draws)
  int64_t steps = 5000;            // optimizer steps
  int64_t batch = 256;             // batch size
  double lr = 1e-3;                // peak learning rate (AdamW)
  double weight_decay = 0.0;       // AdamW decoupled weight decay
  double adam_beta1 = 0.9;         // AdamW β₁
  double adam_beta2 = 0.999;       // AdamW β₂
  int64_t warmup = 100;            // linear LR warmup steps
  double min_lr_ratio = 0.05;      // cosine decay ends at lr · min_lr_ratio
  double grad_clip = 1.0;          // max global gradient norm (0: off)
  double ema_decay = 0.999;        // EMA of weights (warm-up: min(decay, (1+s)/(10+s)))
  uint64_t seed = 0;               // seeds data draws, timesteps, noise and initial weights
  int64_t threads = 0;             // intra-op threads (0: $OMP_NUM_THREADS, else all cores for images, 1 for vectors and VAE runs)
  int64_t log_every = 100;         // steps between log lines
  int64_t checkpoint_every = 1000; // steps between checkpoints
  int64_t sample_every = 0;        // images: steps between sample grids in RUN_DIR/samples/ (0: off)
  int64_t sample_n = 16;           // images: samples per grid (EMA weights, fixed seed, classes in turn)
  int64_t picture_scale = 0;       // images: grids enlarged by this factor (0: auto, see picture_scale; 1: native)
  std::string device = "auto";     // "auto" (CUDA if available), "cpu", "cuda", "cuda:N"
  DistillInfo distill;             // distilled runs only (see above); `train` refuses a config with it
};

void validate(const TrainConfig& c);  // throws diffuse::Error naming the field and valid range
std::string train_config_to_json(const TrainConfig& c);  // pretty JSON, every field
// Reads JSON over `base`; unknown keys are an error that lists the valid keys.
TrainConfig train_config_from_json(const std::string& json_text, const TrainConfig& base = {},
                                   const std::string& source = "config");
TrainConfig load_train_config_file(const std::string& path, const TrainConfig& base = {});
// The data options a run was trained with (data_dir, image_size, background).
DataOptions data_options(const TrainConfig& c);

// Named presets (fmnist-tiny, fmnist-base): complete configs to start from.
std::vector<std::string> preset_names();
TrainConfig preset_config(const std::string& name);  // throws, listing the valid names

torch::Device resolve_device(const std::string& name);  // throws for unknown or unavailable

// A network as the trainer and samplers use it: its parameters and its forward.
struct Network {
  std::shared_ptr<torch::nn::Module> module;
  ModelFn forward;        // diffusion: the denoiser's network; VAE: unset
  ConvVae vae{nullptr};   // model_kind vae: the autoencoder (module points at it)
  AutoencoderKL autoencoder{nullptr};  // model_kind autoencoder-kl: the network (module points at it)
};
// The network of a config (MLP for vector data, U-Net for images, ConvVae for VAE runs), on
// `device`. Data-derived fields (model.dim, unet.* / vae.in_channels, image_size, num_classes)
// must be set.
Network make_network(const TrainConfig& c, const torch::Device& device = torch::kCPU);

// The memory layout a training run of c uses: c.layout unless Auto; Auto times `reps` training
// steps (forward, loss, backward, after one untimed warm-up) of c's U-Net in each layout on
// random input of the per-process batch `batch` and keeps the faster. Not image U-Net runs,
// or not on the CPU: NCHW without timing (oneDNN's layouts are a CPU question).
struct LayoutChoice {
  MemoryLayout layout = MemoryLayout::Nchw;
  double nchw_s = 0, channels_last_s = 0;  // seconds per step; 0 when not timed
  bool timed() const { return nchw_s > 0 && channels_last_s > 0; }
};
LayoutChoice choose_layout(const TrainConfig& c, const torch::Device& device, int64_t batch, int reps = 2);
// The faster of two timings (ties go to NCHW, the fused GroupNorm + SiLU path).
MemoryLayout faster_layout(double nchw_s, double channels_last_s);
// Intra-op threads for --threads `requested`: itself if > 0; for 0, OMP_NUM_THREADS when it is
// set to a positive number, else all cores for image networks and 1 for vector ones.
int intra_op_threads(int64_t requested, bool image_network);
void set_intra_op_threads(int64_t requested, bool image_network);  // at::set_num_threads(intra_op_threads(…))

struct TrainHooks {
  const std::atomic<bool>* stop = nullptr;         // set (e.g. by SIGINT): save and return
  std::function<bool(int64_t step)> stop_after;    // true after `step`: save and return
  bool quiet = false;                              // no progress lines
  // Data-parallel context (distributed.hpp), or null for one process. With W > 1 ranks,
  // `batch` stays the global batch (each rank computes batch/W rows of it), so a run gives
  // the same weights, and resumes, whatever the world size; rank 0 alone writes files.
  Distributed* dist = nullptr;
};

enum class TrainStatus { Finished, Stopped };
struct TrainResult {
  TrainStatus status;
  int64_t step;       // steps done
  double last_loss;   // mean loss of the last logged interval
  double allreduce_ms = 0;  // distributed: mean time per step spent finishing the gradient all-reduce
};

// Trains into run_dir. resume: continue from run_dir/checkpoint.safetensors with
// its saved config; only `steps`, `threads`, `device`, the log/checkpoint/sample intervals,
// `picture_scale` and `data_dir` (when not empty: the same data, moved) are taken from `cfg`.
// A non-finite loss throws, leaving the last good checkpoint in place.
TrainResult train(TrainConfig cfg, const std::string& run_dir, bool resume,
                  const TrainHooks& hooks = {});

// A trained run, loaded for sampling.
struct LoadedRun {
  TrainConfig config;
  Network network;        // weights: EMA (default) or raw, in eval mode
  Normalizer normalizer;
  int64_t step = 0;
  std::vector<std::string> class_names;  // of the training data, if labelled
  std::unique_ptr<ModelDenoiser> denoiser;  // diffusion runs; null for VAE runs
  std::string dir;                          // the run folder it was loaded from

  AutoencoderKL autoencoder{nullptr};       // latent runs: the (frozen) autoencoder that decodes

  bool is_vae() const { return config.model_kind == ModelKind::Vae; }
  bool is_autoencoder() const { return config.model_kind == ModelKind::AutoencoderKL; }
  bool is_latent() const { return !config.latent.empty(); }
  // The model's samples as images: latent runs decode z / scaling_factor (clamped to [−1, 1]);
  // other runs return x unchanged.
  torch::Tensor to_pixels(const torch::Tensor& x) const;
  // Images (B, C, H, W) in [−1, 1] in the model's space: latent runs encode them, z = μ_φ(x) ·
  // scaling_factor (the posterior mean, as the training latents); other runs return x.
  torch::Tensor to_model_space(const torch::Tensor& images) const;
  // {C, H, W} of the images the run makes (latent runs: the decoder's, not the latents').
  std::vector<int64_t> image_shape() const;
  // The denoiser of a diffusion run; for a VAE or autoencoder run an Error saying that `what`
  // (e.g. "restoration") needs a diffusion run.
  const ModelDenoiser& diffusion(const std::string& what) const;
};
LoadedRun load_run(const std::string& run_dir, bool ema = true, const std::string& device = "auto");
std::string checkpoint_path(const std::string& run_dir);

}  // namespace diffuse
