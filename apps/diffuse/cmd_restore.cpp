// diffuse inpaint | upscale | colorize | edit: restorations with a trained image run.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {
namespace {

enum class Task { Inpaint, Upscale, Colorize, Edit };

// DPS's step size ζ by default. Latent runs step through the decoder, whose Jacobian makes the
// same ζ far longer: on the Fashion-MNIST latent run of docs/latent.md (half:right inpainting,
// 8 test images × 4 draws, PSNR against the originals) ζ = 0.02 / 0.05 / 0.1 / 0.25 / 0.5 / 1
// gave 13.0 / 15.4 / 16.6 / 15.8 / 15.4 / 14.6 dB (unguided: 8.6), the pixel run 16.4 at ζ = 1.
constexpr double kDpsScalePixel = 1.0, kDpsScaleLatent = 0.1;

struct RestoreOpts {
  Task task;
  std::string run, image, out, truth, mask, method, cls, weights = "ema", device = "auto";
  bool method_given = false;  // --method on the command line (else latent runs use dps)
  int64_t n = 1, factor = 0, threads = 0, jump_length = RestoreConfig{}.jump_length,
          resample = RestoreConfig{}.resample;
  uint64_t seed = 0;
  // dps_scale −1: by the run (kDpsScalePixel, kDpsScaleLatent)
  double sigma_y = 0, guidance = 1.0, strength = RestoreConfig{}.strength, dps_scale = -1;
  SamplerFlags sampler;
};

std::string dims(const std::vector<int64_t>& s) {
  return std::to_string(s[0]) + "-channel " + std::to_string(s[2]) + "×" + std::to_string(s[1]);
}

// An 8-bit image file as (1, C, H, W) in [−1, 1], checked against the expected shape.
torch::Tensor read_input(const std::string& path, const std::vector<int64_t>& want, const std::string& what) {
  auto img = read_image(path);
  const std::vector<int64_t> got(img.sizes().begin(), img.sizes().end());
  if (got != want)
    throw Error(what + " " + path + " is " + dims(got) + ", expected " + dims(want),
                "the run's images are fixed in size and channels; resize or convert the input");
  return img.to(torch::kFloat32).div(127.5).sub(1.0).unsqueeze(0);
}

// Images in [−1, 1] → 8-bit; an image of fewer channels is repeated to C for the figure.
torch::Tensor to_figure(const torch::Tensor& x, int64_t C, int64_t size) {
  auto y = x;
  if (y.size(1) != C) y = y.expand({y.size(0), C, y.size(2), y.size(3)});
  if (y.size(2) != size) y = y.repeat_interleave(size / y.size(2), 2).repeat_interleave(size / y.size(3), 3);
  return to_uint8(y.contiguous());
}

void run_task(const RestoreOpts& o) {
  if (o.n < 1) throw Error("--n must be >= 1");
  if (o.weights != "ema" && o.weights != "raw") throw Error("--weights must be ema or raw");
  auto run = load_run(o.run, o.weights == "ema", o.device);
  if (!is_image_spec(run.config.data)) throw Error(o.run + " is a vector run", "restoration needs an image run");
  run.diffusion("restoration");  // a VAE or autoencoder run: the error before any file is read
  const bool latent = run.is_latent();
  RestoreConfig cfg;
  cfg.sampler = o.sampler.resolve(!latent);  // latents are unbounded: no x̂₀ clip by default
  cfg.jump_length = o.jump_length;
  cfg.resample = o.resample;
  cfg.strength = o.strength;
  cfg.dps_scale = o.dps_scale == -1 ? (latent ? kDpsScaleLatent : kDpsScalePixel) : o.dps_scale;
  // A latent run's only measurement-guided method is dps (through the decoder): its default.
  const std::string method = latent && !o.method_given ? "dps" : o.method;
  cfg.method = o.task == Task::Edit ? RestoreMethod::Sdedit : parse_restore_method(method);
  if (o.task != Task::Edit && cfg.method == RestoreMethod::Sdedit)
    throw Error("sdedit is the method of 'diffuse edit'", "here: repaint (inpaint only), ddnm or dps");

  const torch::Device dev = resolve_device(o.device);
  set_intra_op_threads(o.threads, true);
  const int64_t K = run.config.unet.num_classes;
  const std::vector<int64_t> shape = run.image_shape();  // the images (latent runs: the decoder's)
  const int64_t C = shape[0], R = shape[1];
  const std::vector<int64_t> model_shape{run.config.unet.in_channels, run.config.unet.image_size,
                                         run.config.unet.image_size};
  // Latent runs: images in through the encoder (sdedit), out through the decoder; dps
  // differentiates through it. D(z / s), unclamped (the output is clamped below).
  LatentCodec codec;
  if (latent) {
    AutoencoderKL ae = run.autoencoder;
    const double s = run.config.autoencoder.scaling_factor;
    codec.encode = [&run](const torch::Tensor& x) { return run.to_model_space(x); };
    codec.decode = [ae, s](const torch::Tensor& z) mutable { return ae->decode(z / s); };
  }

  // The degradation (checked against the method before any file is read), then y.
  Degradation A;
  switch (o.task) {
    case Task::Inpaint: A = Degradation::mask(parse_mask(o.mask, R, R, o.seed)); break;
    case Task::Upscale:
      if (o.factor != 2 && o.factor != 4) throw Error("--factor must be 2 or 4");
      A = Degradation::downsample(o.factor);
      break;
    case Task::Colorize:
      if (C != 3)
        throw Error("colorize needs a model of RGB images; " + o.run + " makes " + std::to_string(C) + "-channel images",
                    "train on RGB data, e.g. --data folder:PATH with color images");
      A = Degradation::gray();
      if (o.factor > 1) A = A.then(Degradation::downsample(o.factor));
      break;
    case Task::Edit: A = Degradation::identity(); break;
  }
  if (o.sigma_y < 0) throw Error("--sigma-y must be >= 0");
  A.sigma_y = o.sigma_y;
  validate(cfg, A, latent);
  torch::Tensor input, y;
  switch (o.task) {
    case Task::Inpaint:
      input = read_input(o.image, shape, "--image");
      y = A.apply(input);
      break;
    case Task::Upscale: input = y = read_input(o.image, A.measurement_shape(shape), "--image (the low-resolution image)"); break;
    case Task::Colorize: input = y = read_input(o.image, A.measurement_shape(shape), "--image (the gray image)"); break;
    case Task::Edit: input = y = read_input(o.image, shape, "--image"); break;
  }
  torch::Tensor truth;
  if (!o.truth.empty()) truth = read_input(o.truth, shape, "--truth");

  // Conditioning: a class with guidance, or the null class (unconditional) of a conditional run.
  Conditioning cond;
  std::unique_ptr<GuidedDenoiser> guided;
  const Denoiser* den = &run.diffusion("restoration");
  if (!o.cls.empty()) {
    if (K == 0) throw Error("--class needs a class-conditional run");
    cond.labels = torch::full({o.n}, parse_class(o.cls, run.class_names, K), torch::kLong).to(dev);
    guided = std::make_unique<GuidedDenoiser>(*run.denoiser, o.guidance, K);
    den = guided.get();
  } else if (K > 0) {
    cond.labels = torch::full({o.n}, K, torch::kLong).to(dev);
  }

  NoiseStream init(o.seed, 0, o.n), noise(mix_seed(o.seed, 1), 0, o.n);
  auto x_T = init.randn(model_shape, torch::TensorOptions().device(dev));
  auto ys = y.to(dev).expand({o.n, -1, -1, -1}).contiguous();
  std::printf("%s: %s with %s, %lld restoration%s …\n", to_string(cfg.method).c_str(), A.describe().c_str(),
              to_string(cfg.sampler.kind).c_str(), (long long)o.n, o.n == 1 ? "" : "s");
  std::fflush(stdout);
  auto x = restore(*den, A, ys, x_T, cfg, noise, cond, {}, latent ? &codec : nullptr).cpu();
  // A colorization keeps its gray input: into the pixel range by lowering saturation, not by a
  // clamp that would change the luma (docs/restoration.md).
  x = o.task == Task::Colorize && o.factor <= 1 ? keep_luma(x, ys.cpu()) : x.clamp(-1, 1);

  // Figure: input | measurement (A⁺y) | restorations | truth.
  std::vector<torch::Tensor> cols{to_figure(input, C, R), to_figure(A.pinv(y), C, R), to_uint8(x)};
  if (truth.defined()) cols.push_back(to_uint8(truth));
  auto row = torch::cat(cols);
  write_picture(o.out, make_grid(row, row.size(0), 2));  // enlarged to be seen; OUT_k.png stay native
  const std::string stem = o.out.size() > 4 && o.out.substr(o.out.size() - 4) == ".png" ? o.out.substr(0, o.out.size() - 4)
                                                                                     : o.out;
  auto u8 = to_uint8(x);
  for (int64_t k = 0; k < o.n; ++k) write_png(stem + "_" + std::to_string(k) + ".png", u8[k]);
  if (truth.defined()) {
    // PSNR = 10 log10(peak² / MSE) on [0, 1] images
    auto mse = (x - truth).div(2).pow(2).flatten(1).mean(1);
    for (int64_t k = 0; k < o.n; ++k)
      std::printf("restoration %lld: PSNR %.2f dB against --truth\n", (long long)k,
                  10 * std::log10(1.0 / std::max(mse[k].item<double>(), 1e-12)));
  }
  std::printf("wrote %s (input | measurement | %lld restoration%s%s) and %s_0.png …\n", o.out.c_str(), (long long)o.n,
              o.n == 1 ? "" : "s", truth.defined() ? " | truth" : "", stem.c_str());
}

CLI::App* add_task(CLI::App& app, Task task, const std::string& name, const std::string& help) {
  auto o = std::make_shared<RestoreOpts>();
  o->task = task;
  o->method = task == Task::Inpaint ? "repaint" : "ddnm";
  o->sampler.steps = 100;
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("--run", o->run, "trained image run")->required();
  cmd->add_option("--image", o->image,
                  task == Task::Upscale    ? "the low-resolution image (size / factor), PNG or JPEG"
                  : task == Task::Colorize ? "the gray image, PNG or JPEG"
                                           : "the image, PNG or JPEG, at the run's size and channels")
      ->required();
  cmd->add_option("--out", o->out, "figure PNG (input | measurement | restorations | truth); OUT_k.png each")
      ->required();
  if (task == Task::Inpaint)
    cmd->add_option("--mask", o->mask, "box:x,y,w,h | half:left|right|top|bottom | random:p | FILE.png (white = fill)")
        ->required();
  if (task == Task::Upscale) cmd->add_option("--factor", o->factor, "2 or 4")->required();
  if (task == Task::Colorize) cmd->add_option("--factor", o->factor, "also upscale a gray image by 2 or 4");
  if (task == Task::Edit) {
    cmd->add_option("--strength", o->strength, "noise level to start from, (0, 1]: more changes more")
        ->capture_default_str();
  } else {
    cmd->add_option("--method", o->method,
                    task == Task::Inpaint ? "repaint, ddnm or dps (latent runs: dps, their default)"
                                          : "ddnm or dps (repaint fills masks only; latent runs: dps, their default)")
        ->capture_default_str();
    cmd->add_option("--sigma-y", o->sigma_y, "measurement noise σ_y in [−1, 1] units (DDNM+)")->capture_default_str();
    cmd->add_option("--dps-scale", o->dps_scale, "dps: step size ζ (default: 1 for pixel-space runs, 0.1 for latent runs)");
  }
  if (task == Task::Inpaint) {
    cmd->add_option("--jump-length", o->jump_length, "repaint: steps between resampling jumps")->capture_default_str();
    cmd->add_option("--resample", o->resample, "repaint: times each segment is run (1: no resampling)")
        ->capture_default_str();
  }
  cmd->add_option("--truth", o->truth, "the original image: shown last, PSNR printed");
  cmd->add_option("--n", o->n, "restorations to draw")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed")->capture_default_str();
  cmd->add_option("--class", o->cls, "class-conditional runs: this class (number or name); default unconditional");
  cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale with --class")->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)->capture_default_str();
  add_sampler_flags(*cmd, o->sampler);
  cmd->callback([o, cmd] {
    const auto* method = cmd->get_option_no_throw("--method");  // edit has none
    o->method_given = method && method->count() > 0;
    o->n = quick_n(o->n);
    run_task(*o);
  });
  return cmd;
}

}  // namespace

void add_restore(CLI::App& app) {
  add_task(app, Task::Inpaint, "inpaint", "fill masked pixels (repaint, ddnm, dps)");
  add_task(app, Task::Upscale, "upscale", "super-resolution ×2 or ×4 (ddnm, dps)");
  add_task(app, Task::Colorize, "colorize", "gray → RGB with an RGB model (ddnm, dps)");
  add_task(app, Task::Edit, "edit", "SDEdit: noise an image to --strength and denoise it");
}

}  // namespace diffuse::cli
