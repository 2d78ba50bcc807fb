// diffuse — distances between sample sets.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace diffuse {

// Sliced Wasserstein-2 distance between point sets a (N, D) and b (M, D):
//   SW₂(a, b)² = E_θ W₂²(θᵀa, θᵀb),  θ uniform on the unit sphere,
// estimated with `projections` random directions (seeded) and, per direction,
// the 1-D W₂ between the empirical quantile functions (N and M may differ:
// both are evaluated at max(N, M) evenly spaced quantile levels). Float64.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections = 512,
                          uint64_t seed = 0);

// A Gaussian fitted to a set of feature vectors (N, D): mean (D) and unbiased
// covariance (D, D), float64.
struct GaussianStats {
  torch::Tensor mean, cov;
  int64_t n = 0;
};
GaussianStats gaussian_stats(const torch::Tensor& x);

// Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Dowson & Landau 1982; FID):
//   d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}
// with tr (Σ₁Σ₂)^{1/2} = Σ_i √λ_i(Σ₁^{1/2} Σ₂ Σ₁^{1/2}), a symmetric PSD matrix whose
// eigenvalues come from eigh (stable where scipy's sqrtm of the non-symmetric
// product is not), in float64. Returns d² (as FID does).
double frechet_distance(const GaussianStats& a, const GaussianStats& b);
// The same distance between the Gaussians fitted to two sample sets x (N₁, D) and y (N₂, D),
// cheap when min(N₁, N₂) < D (raw pixels): with centred A (N₁, D), B (N₂, D),
//   Σ₁Σ₂ = AᵀA BᵀB / ((N₁−1)(N₂−1)) has the nonzero eigenvalues of (ABᵀ)(ABᵀ)ᵀ / ((N₁−1)(N₂−1)),
// so tr (Σ₁Σ₂)^{1/2} = Σ_i σ_i(ABᵀ) / √((N₁−1)(N₂−1)) and tr Σ₁ = ‖A‖²_F / (N₁−1): an SVD of
// the N₁ × N₂ matrix ABᵀ instead of eigendecompositions of D × D ones. Otherwise (both
// N ≥ D) frechet_distance of the fitted Gaussians. float64.
double frechet_distance_of_samples(const torch::Tensor& x, const torch::Tensor& y);

// Improved precision and recall (Kynkäänniemi et al. 2019). The manifold of a set Φ is
// the union of balls around its points, each with the radius to that point's k-th
// nearest neighbour in Φ (itself excluded):
//   precision = |{φ ∈ fake : φ ∈ manifold(real)}| / |fake|   (are the samples realistic?)
//   recall    = |{φ ∈ real : φ ∈ manifold(fake)}| / |real|   (is the data covered?)
// real (N, D), fake (M, D); Euclidean distances in float64, computed in blocks.
struct PrecisionRecall {
  double precision = 0, recall = 0;
  int64_t k = 3;
};
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = 3);

}  // namespace diffuse
