// diffuse — how well an autoencoder (a VAE run or an autoencoder-kl run) gives its images back:
// PSNR and SSIM per image, and the reconstruction x̂ = D(μ_φ(x)) of a run.
#pragma once
#include <torch/types.h>

#include "diffuse/train.hpp"

namespace diffuse {

// PSNR per image (B): 10 log10(R² / MSE), MSE over the C·H·W values, R the data range
// (2 for images in [−1, 1]). Identical images give +inf.
torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& y, double data_range = 2.0);

// SSIM per image (B) (Wang et al. 2004, as skimage's structural_similarity with
// gaussian_weights=True, use_sample_covariance=False): local statistics under an 11×11 Gaussian
// window of σ = 1.5 over the valid positions, per channel,
//   SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
//   C1 = (0.01 R)², C2 = (0.03 R)²,
// averaged over positions and channels. Images need H, W >= 11. Float64 inside.
torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& y, double data_range = 2.0);

// The reconstruction of images x (B, C, H, W) in [−1, 1] by a VAE or autoencoder-kl run:
// the decoder's image of the posterior mean, D(μ_φ(x)) (VAE: the mean of p_θ(x | μ_φ(x))),
// in [−1, 1], on the CPU. Other runs: an Error.
torch::Tensor reconstruct(const LoadedRun& run, const torch::Tensor& x);

}  // namespace diffuse
