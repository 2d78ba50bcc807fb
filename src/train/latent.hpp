// Internal: latent diffusion (Rombach et al. 2022) — an autoencoder-kl run's latents as the
// data of a diffusion run, the latent scale factor, and the diffusers-style export of a
// trained autoencoder.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "diffuse/data.hpp"
#include "diffuse/nn/autoencoder_kl.hpp"

namespace diffuse {

// The latents μ_φ(x) · scale of every image of a finite image source, (N, L, S/f, S/f) float32
// on the CPU, encoded in batches of `batch` under no_grad. The posterior mean, not a sample:
// with the small KL weight of these autoencoders σ_φ is ~1e-2 of the latents' spread, and a
// cached sample would fix that noise anyway.
torch::Tensor encode_images(AutoencoderKL& ae, const DataSource& images, double scale, const torch::Device& device,
                            int64_t batch = 256);

// The scale factor of Rombach et al. §4.3.2: 1 / std of the latents μ_φ(x) over (up to)
// `max_images` training images (the first ones of the set), so that the diffusion model sees
// latents of unit variance, as it sees images in [−1, 1].
double measure_latent_scale(AutoencoderKL& ae, const DataSource& images, const torch::Device& device,
                            int64_t max_images = 10000);

// Images of the latents z = μ_φ(x) · scale a diffusion model works with: D(z / scale), clamped
// to [−1, 1], under no_grad (on the autoencoder's device; the result stays there).
torch::Tensor decode_latents(AutoencoderKL& ae, const torch::Tensor& z, double scale);

// The latents a diffusion model of scale `scale` works with, z = μ_φ(x) · scale, of images x
// in [−1, 1] (B, C, H, W), under no_grad (on the autoencoder's device).
torch::Tensor encode_latents(AutoencoderKL& ae, const torch::Tensor& x, double scale);

// A finite source over the latents (N, L, h, w) with the labels and class names of `images`
// (the set they were encoded from). sample() draws like the image sources (uniform indices
// from the step's generator); spec() is that of the images.
std::unique_ptr<DataSource> make_latent_source(const DataSource& images, torch::Tensor latents);

// Writes DIR/config.json (diffusers' AutoencoderKL config of `options`, e.g. with the measured
// scaling_factor) and DIR/diffusion_pytorch_model.safetensors (the weights under diffusers'
// names), each atomically.
void export_diffusers_autoencoder(const std::string& dir, AutoencoderKL& ae, const AutoencoderKLOptions& options);

}  // namespace diffuse
