// frechet_distance_of_samples (the SVD of A Bᵀ when a set has fewer samples than dimensions,
// as raw 32×32 RGB pixels do) against frechet_distance of the fitted Gaussians, the
// eigendecomposition route that tests/frechet_test.cpp checks against closed forms and scipy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/metrics.hpp"

using namespace diffuse;

namespace {
// n samples of a correlated, shifted D-dim distribution: x = z M + shift
torch::Tensor draw(int64_t n, int64_t D, double shift, uint64_t seed) {
  torch::manual_seed(seed);
  auto M = torch::randn({D, D}, torch::kFloat64) / std::sqrt(double(D));
  return torch::matmul(torch::randn({n, D}, torch::kFloat64), M) + shift;
}
double via_covariances(const torch::Tensor& x, const torch::Tensor& y) {
  return frechet_distance(gaussian_stats(x), gaussian_stats(y));
}
}  // namespace

TEST(FrechetOfSamples, ClosedFormOfAScaledAndShiftedCopy) {
  // y = c·x + s (s added to every coordinate): μ₂ = cμ₁ + s, Σ₂ = c²Σ₁, so
  //   d² = ‖(c − 1)μ₁ + s‖² + (1 − c)² tr Σ₁   exactly, however rank-deficient Σ₁ is (N < D)
  const int64_t D = 300;
  auto x = draw(40, D, 0.1, 1);
  const double c = 2.0, s = 0.5;
  auto y = c * x + s;
  const auto g = gaussian_stats(x);
  const double want = ((c - 1.0) * g.mean + s).pow(2).sum().item<double>() + (1 - c) * (1 - c) * g.cov.trace().item<double>();
  EXPECT_NEAR(frechet_distance_of_samples(x, y), want, 1e-10 * want);
  EXPECT_NEAR(frechet_distance_of_samples(y, x), want, 1e-10 * want);  // symmetric
}

TEST(FrechetOfSamples, EqualsTheCovarianceRouteWhenSamplesAreFewerThanDimensions) {
  // The covariance route takes √ of the D − N + 1 zero eigenvalues that rounding leaves at
  // ±1e-16 (≈1e-8 each after clamping), so the two agree to ~1e-7 relative, not to rounding.
  const int64_t D = 300;
  auto x = draw(40, D, 0.0, 1), y = draw(70, D, 0.3, 2);  // both N < D: rank-deficient covariances
  const double want = via_covariances(x, y);
  EXPECT_GT(want, 1.0);
  EXPECT_NEAR(frechet_distance_of_samples(x, y), want, 1e-7 * want);
  // one set below D, the other above
  auto z = draw(500, D, -0.2, 3);
  const double want2 = via_covariances(x, z);
  EXPECT_NEAR(frechet_distance_of_samples(x, z), want2, 1e-7 * want2);
  // float32 input is computed in float64
  EXPECT_NEAR(frechet_distance_of_samples(x.to(torch::kFloat32), z.to(torch::kFloat32)), want2, 1e-5 * want2);
}

TEST(FrechetOfSamples, SameSetIsZeroAndLargeSetsTakeTheCovarianceRoute) {
  auto x = draw(30, 100, 0.0, 4);
  EXPECT_NEAR(frechet_distance_of_samples(x, x), 0.0, 1e-9);
  auto a = draw(200, 20, 0.0, 5), b = draw(300, 20, 1.0, 6);  // N ≥ D
  EXPECT_DOUBLE_EQ(frechet_distance_of_samples(a, b), via_covariances(a, b));
  EXPECT_THROW(frechet_distance_of_samples(a, draw(10, 21, 0.0, 7)), Error);
}
