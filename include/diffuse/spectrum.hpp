// diffuse — covariance spectra of vector data (seed 002, "从协方差的角度理解扩散模型").
//
// Seed 002 argues that meaningful signals are low-rank: the covariance of its
// random-sinusoid signals has few large eigenvalues, while white noise has a flat
// spectrum (every eigenvalue ≈ 1). Its appendix reshapes white noise to the data
// covariance through the SVD of that covariance. This header gives the pieces:
// the spectrum of a set of vectors, summaries of it, the reshaping, and the figure
// that `diffuse eval spectrum` draws. Everything is computed in float64.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace diffuse {

// Mean, covariance and its eigendecomposition Σ = U diag(λ) Uᵀ
// (Σ symmetric PSD, so its SVD is this eigendecomposition: U = V, Λ = diag(λ)).
struct Spectrum {
  torch::Tensor mean;          // (D) float64
  torch::Tensor cov;           // (D, D) float64
  torch::Tensor eigenvalues;   // (D) float64, descending, clamped at 0
  torch::Tensor eigenvectors;  // (D, D) float64, column i belongs to eigenvalue i
  int64_t n = 0;               // vectors it was estimated from (0: given exactly)
  int64_t dim() const { return mean.numel(); }
};

// The sample spectrum of x (N, D), N ≥ 2, with the unbiased covariance
//   Σ̂ = (X − μ̂)ᵀ (X − μ̂) / (N − 1).
// Throws diffuse::Error for other shapes or non-finite values.
Spectrum spectrum_of(const torch::Tensor& x);
// The spectrum of a given Gaussian N(mean, cov): mean (D), cov (D, D) symmetric PSD.
Spectrum spectrum_of_gaussian(const torch::Tensor& mean, const torch::Tensor& cov);

// Summaries of a spectrum λ₁ ≥ … ≥ λ_D ≥ 0.
struct SpectrumSummary {
  double total_variance = 0;      // tr Σ = Σᵢ λᵢ
  double top_eigenvalue = 0;      // λ₁
  int64_t effective_rank = 0;     // smallest k with Σ_{i≤k} λᵢ ≥ fraction · Σᵢ λᵢ
  double participation_ratio = 0; // (Σᵢ λᵢ)² / Σᵢ λᵢ²  (1 for rank one, D for white noise)
  double rank_fraction = 0.99;    // the fraction used for effective_rank
};
// Throws diffuse::Error unless 0 < fraction ≤ 1.
SpectrumSummary summarize(const Spectrum& s, double fraction = 0.99);
// effective_rank alone, on eigenvalues (D) in any order.
int64_t effective_rank(const torch::Tensor& eigenvalues, double fraction = 0.99);

// Relative L1 error between two spectra, both sorted descending:
//   Σᵢ |λᵢ(a) − λᵢ(b)| / Σᵢ λᵢ(b)
// (0: the same spectrum; b is the reference, e.g. the data).
double relative_spectrum_error(const torch::Tensor& eig_a, const torch::Tensor& eig_b);

// Marchenko–Pastur edges (1 ∓ √(D/N))²: where the sample-covariance eigenvalues
// of N white-noise vectors in D dimensions fall as N, D → ∞ (for D ≤ N).
std::pair<double, double> marchenko_pastur_edges(int64_t n, int64_t dim);

// White noise z (M, D) ~ N(0, I) reshaped to the target N(μ, Σ):
//   x = μ + U Λ^{1/2} z
// so that Cov(x) = U Λ^{1/2} I Λ^{1/2} Uᵀ = Σ. This is seed 002's appendix
// f_{C→C₁}(X) = X V Ψ V₁ᵀ with C = I (V = I, Λ = I, Ψ = Λ₁^{1/2}), in row form
// x_rowᵀ = zᵀ Λ₁^{1/2} V₁ᵀ, plus the mean. Returns (M, D) float64.
torch::Tensor reshape_noise(const Spectrum& target, const torch::Tensor& z);

// Seed 002's appendix in full: the rows of x (M, D), M ≥ 2, with sample covariance
// C = V Λ Vᵀ, are mapped by
//   f(X) = (X − μ̂) V Ψ V₁ᵀ + μ₁,   Ψ = (Λ₁ Λ⁻¹)^{1/2}   (diagonal, Ψ = Ψᵀ)
// so that their sample covariance is exactly C₁ = V₁ Λ₁ V₁ᵀ:
//   Ψ Vᵀ C V Ψ = Ψ Λ Ψ = Λ₁.
// Needs C of full rank (throws diffuse::Error otherwise, e.g. for M ≤ D).
torch::Tensor match_covariance(const torch::Tensor& x, const Spectrum& target);

// Everything `diffuse eval spectrum` computes and draws.
struct SpectrumAnalysis {
  std::string title;                 // figure title, e.g. "signals (n = 2000)"
  std::vector<int64_t> image_shape;  // {C, H, W} if the vectors are flattened images, else empty
  torch::Tensor data;                // (N, D) data vectors
  torch::Tensor noise;               // (N, D) white noise z ~ N(0, I)
  torch::Tensor reshaped;            // (N, D) reshape_noise(data_spectrum, z)
  torch::Tensor samples;             // (M, D) generated vectors, or undefined
  Spectrum data_spectrum, noise_spectrum, reshaped_spectrum;
  Spectrum samples_spectrum;         // set if samples are
};
// data (N, D), noise (N', D) standard normal; samples (M, D) may be undefined.
// Throws diffuse::Error for mismatched dimensions.
SpectrumAnalysis analyze_spectrum(const torch::Tensor& data, const torch::Tensor& noise,
                                  const torch::Tensor& samples = {});

// The figure: covariance heatmaps (data, white noise, reshaped noise[, samples]),
// eigenvalue spectra on a log scale, data vectors beside reshaped-noise vectors
// [and samples], cumulative explained variance. Written atomically as a PNG.
void save_spectrum_figure(const std::string& path, const SpectrumAnalysis& a, double rank_fraction = 0.99);

}  // namespace diffuse
