// Internal: the restoration methods (one file each) and what they share.
#pragma once
#include <torch/torch.h>

#include "diffuse/restore.hpp"

namespace diffuse::restore_detail {

torch::Tensor run_ddnm(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                       const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                       const StepCallback& callback);
torch::Tensor run_repaint(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                          const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                       const StepCallback& callback);
// latent: measure A D(x̂₀) through the decoder (null: A x̂₀).
torch::Tensor run_dps(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const torch::Tensor& x_T,
                      const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                      const StepCallback& callback, const LatentCodec* latent);
torch::Tensor run_sdedit(const Denoiser& d, const torch::Tensor& image, const torch::Tensor& x_T,
                         const RestoreConfig& cfg, NoiseStream& noise, const Conditioning& cond,
                       const StepCallback& callback);

// One ancestral DDPM step from grid point ᾱ = ab to ab_prev (Ho et al. 2020; seed 002):
//   μ = β √ᾱ' / (1 − ᾱ) · x̂₀ + √(1 − β) (1 − ᾱ') / (1 − ᾱ) · x_t,  β = 1 − ᾱ/ᾱ',
//   x' = μ + √β̃ z,  β̃ = (1 − ᾱ')/(1 − ᾱ) β;  no noise when `last`.
torch::Tensor ddpm_step(const torch::Tensor& x, const torch::Tensor& x0, double ab, double ab_prev, bool last,
                        NoiseStream& noise);

}  // namespace diffuse::restore_detail
