// Loading a trained run for sampling.
#include <torch/torch.h>

#include <filesystem>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/train.hpp"
#include "train/latent.hpp"
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
  if (r.config.model_kind == ModelKind::Diffusion)
    r.denoiser = std::make_unique<ModelDenoiser>(r.network.forward, make_schedule(r.config.schedule),
                                                 r.config.prediction);
  if (r.is_latent()) {  // the copy of its autoencoder that the checkpoint keeps
    r.autoencoder = AutoencoderKL(r.config.autoencoder);
    r.autoencoder->to(dev);
    get_module(file.tensors, "autoencoder.", *r.autoencoder, ckpt);
    r.autoencoder->eval();
  }
  r.dir = run_dir;
  return r;
}

const ModelDenoiser& LoadedRun::diffusion(const std::string& what) const {
  const std::string name = dir.empty() ? std::string("this run") : "'" + dir + "'";
  if (is_autoencoder())
    throw Error(name + " is an autoencoder run (model_kind autoencoder-kl); " + what + " needs a diffusion run",
                "train a latent diffusion model on it: diffuse train --latent " + (dir.empty() ? "AE_RUN" : dir) +
                    " --out RUN …");
  if (!denoiser)
    throw Error(name + " is a VAE run (model_kind vae); " + what + " needs a diffusion run",
                "a VAE draws by decoding z ~ N(0, I): 'diffuse sample', 'eval fd' and 'eval nll' work on it");
  return *denoiser;
}

torch::Tensor LoadedRun::to_pixels(const torch::Tensor& x) const {
  if (!is_latent()) return x;
  const auto dev = autoencoder->parameters().front().device();
  AutoencoderKL ae = autoencoder;  // a handle on the run's autoencoder (decode_latents takes it by reference)
  return decode_latents(ae, x.to(dev), config.autoencoder.scaling_factor).to(x.device());
}

torch::Tensor LoadedRun::to_model_space(const torch::Tensor& images) const {
  if (!is_latent()) return images;
  const auto dev = autoencoder->parameters().front().device();
  AutoencoderKL ae = autoencoder;
  return encode_latents(ae, images.to(dev), config.autoencoder.scaling_factor).to(images.device());
}

std::vector<int64_t> LoadedRun::image_shape() const {
  if (is_latent())
    return {config.autoencoder.out_channels, config.autoencoder.sample_size, config.autoencoder.sample_size};
  if (is_image_spec(config.data)) return {config.unet.in_channels, config.unet.image_size, config.unet.image_size};
  return {config.model.dim};
}

}  // namespace diffuse
