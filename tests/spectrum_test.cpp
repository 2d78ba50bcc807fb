// Covariance spectra and the SVD reshaping of white noise (seed 002) against closed forms.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "diffuse/error.hpp"
#include "diffuse/spectrum.hpp"

using namespace diffuse;

namespace {

torch::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Σ = Q diag(λ) Qᵀ with Q (D, r) orthonormal columns: a rank-r Gaussian whose nonzero
// eigenvalues are exactly λ. Samples x = μ + Q diag(√λ) w, w ~ N(0, I_r).
struct LowRank {
  torch::Tensor mean, Q, lambda, cov;  // (D), (D, r), (r), (D, D)
};
LowRank low_rank(int64_t D, std::vector<double> lambda, torch::Generator& g) {
  LowRank lr;
  const int64_t r = int64_t(lambda.size());
  lr.lambda = torch::tensor(lambda, torch::kFloat64);
  lr.Q = std::get<0>(torch::linalg::qr(torch::randn({D, r}, g, torch::kFloat64)));
  lr.mean = torch::randn({D}, g, torch::kFloat64);
  lr.cov = torch::matmul(lr.Q * lr.lambda, lr.Q.t());
  return lr;
}

// A smooth (squared-exponential) covariance over D points, like a continuous signal's.
torch::Tensor smooth_cov(int64_t D, double length) {
  auto i = torch::arange(D, torch::kFloat64);
  auto d = i.unsqueeze(0) - i.unsqueeze(1);
  return torch::exp(-(d * d) / (2 * length * length)) + 1e-6 * torch::eye(D, torch::kFloat64);
}

}  // namespace

TEST(Spectrum, LowRankGaussianMatchesTheClosedForm) {
  auto g = seeded(3);
  const int64_t D = 20, N = 20000;
  auto lr = low_rank(D, {4.0, 2.0, 1.0}, g);
  auto w = torch::randn({N, 3}, g, torch::kFloat64);
  auto x = lr.mean + torch::matmul(w * lr.lambda.sqrt(), lr.Q.t());  // (N, D)
  auto s = spectrum_of(x);
  ASSERT_EQ(s.dim(), D);
  EXPECT_EQ(s.n, N);
  // Σ̂ → Σ: relative Frobenius error O(√(2/N)) ≈ 1%.
  EXPECT_LT((s.cov - lr.cov).norm().item<double>() / lr.cov.norm().item<double>(), 0.05);
  EXPECT_LT((s.mean - lr.mean).abs().max().item<double>(), 0.05);
  // Nonzero eigenvalues λ = 4, 2, 1 (each within 5σ, σ = λ√(2/N)); the other 17 are zero.
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(s.eigenvalues[i].item<double>(), lr.lambda[i].item<double>(),
                                          5 * lr.lambda[i].item<double>() * std::sqrt(2.0 / N));
  EXPECT_LT(s.eigenvalues.slice(0, 3).max().item<double>(), 1e-10);
  EXPECT_GE(s.eigenvalues.min().item<double>(), 0.0);
  // Descending order, and the eigenvectors diagonalise Σ̂: Σ̂ U = U diag(λ).
  EXPECT_TRUE((s.eigenvalues.slice(0, 0, D - 1) >= s.eigenvalues.slice(0, 1)).all().item<bool>());
  EXPECT_LT((torch::matmul(s.cov, s.eigenvectors) - s.eigenvectors * s.eigenvalues).abs().max().item<double>(), 1e-9);
  // The eigenvectors of the nonzero eigenvalues span Q's columns.
  auto top = s.eigenvectors.slice(1, 0, 3);
  EXPECT_LT((torch::matmul(torch::matmul(lr.Q, lr.Q.t()), top) - top).abs().max().item<double>(), 1e-6);

  const auto sum = summarize(s, 0.99);
  EXPECT_EQ(sum.effective_rank, 3);  // 6/7 of the variance in two eigenvalues < 99%
  EXPECT_NEAR(sum.total_variance, 7.0, 7.0 * 5 * std::sqrt(2.0 / N));
  EXPECT_NEAR(sum.participation_ratio, 49.0 / 21.0, 0.1);  // (4+2+1)² / (16+4+1)
  EXPECT_EQ(summarize(s, 0.5).effective_rank, 1);
}

TEST(Spectrum, ExactGaussianSpectrum) {
  auto cov = torch::diag(torch::tensor({1.0, 9.0, 0.0, 4.0}, torch::kFloat64));
  auto s = spectrum_of_gaussian(torch::zeros({4}, torch::kFloat64), cov);
  EXPECT_TRUE(torch::allclose(s.eigenvalues, torch::tensor({9.0, 4.0, 1.0, 0.0}, torch::kFloat64), 0, 1e-12));
  EXPECT_EQ(s.n, 0);
}

TEST(Spectrum, EffectiveRankAndSpectrumError) {
  auto lam = torch::tensor({1.0, 4.0, 0.0, 2.0}, torch::kFloat64);  // any order
  EXPECT_EQ(effective_rank(lam, 0.99), 3);
  EXPECT_EQ(effective_rank(lam, 0.5), 1);
  EXPECT_EQ(effective_rank(lam, 4.0 / 7.0), 1);  // exactly at the boundary
  EXPECT_EQ(effective_rank(lam, 0.6), 2);
  EXPECT_EQ(effective_rank(lam, 1.0), 3);
  EXPECT_EQ(effective_rank(torch::zeros({3}, torch::kFloat64), 0.99), 0);
  EXPECT_THROW(effective_rank(lam, 0.0), Error);
  EXPECT_THROW(effective_rank(lam, 1.5), Error);
  EXPECT_DOUBLE_EQ(relative_spectrum_error(lam, lam), 0.0);
  EXPECT_NEAR(relative_spectrum_error(2 * lam, lam), 1.0, 1e-12);
  EXPECT_THROW(relative_spectrum_error(lam, lam.slice(0, 1)), Error);
}

TEST(Spectrum, WhiteNoiseSpectrumIsFlatAroundOne) {
  auto g = seeded(5);
  const int64_t N = 4000, D = 50;
  auto s = spectrum_of(torch::randn({N, D}, g, torch::kFloat64));
  // Mean eigenvalue tr Σ̂ / D → 1 (std √(2/(N D)) ≈ 0.003).
  EXPECT_NEAR(s.eigenvalues.mean().item<double>(), 1.0, 0.015);
  // All eigenvalues inside the Marchenko–Pastur edges (1 ∓ √(D/N))² = [0.79, 1.24],
  // with 10% slack for finite-size fluctuations of the extremes.
  const auto [lo, hi] = marchenko_pastur_edges(N, D);
  EXPECT_NEAR(lo, std::pow(1 - std::sqrt(50.0 / 4000), 2), 1e-12);
  EXPECT_GT(s.eigenvalues.min().item<double>(), 0.9 * lo);
  EXPECT_LT(s.eigenvalues.max().item<double>(), 1.1 * hi);
  // Not low-rank: 99% of the variance needs nearly every direction, and the
  // participation ratio is D / (1 + D/N) (the MP second moment is 1 + D/N).
  const auto sum = summarize(s);
  EXPECT_GE(sum.effective_rank, D - 2);
  EXPECT_NEAR(sum.participation_ratio, D / (1.0 + double(D) / N), 0.02 * D);
}

TEST(Spectrum, ReshapedNoiseHasTheTargetCovariance) {
  auto g = seeded(7);
  const int64_t D = 30, N = 20000;
  auto cov = smooth_cov(D, 3.0);
  auto mean = torch::linspace(-1, 1, D, torch::kFloat64);
  auto target = spectrum_of_gaussian(mean, cov);
  // x = μ + U Λ^{1/2} z
  auto x = reshape_noise(target, torch::randn({N, D}, g, torch::kFloat64));
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{N, D}));
  auto s = spectrum_of(x);
  // Each entry of Σ̂ has variance (Σᵢᵢ Σⱼⱼ + Σᵢⱼ²)/N: within 5σ everywhere.
  auto d = cov.diag();
  auto sd = ((d.unsqueeze(0) * d.unsqueeze(1) + cov * cov) / double(N)).sqrt();
  EXPECT_TRUE(((s.cov - cov).abs() <= 5 * sd).all().item<bool>());
  EXPECT_LT((s.mean - mean).abs().max().item<double>(), 5 * std::sqrt(1.0 / N));
  // The smooth covariance is low-rank in effect, and so is the reshaped noise.
  EXPECT_EQ(summarize(s).effective_rank, summarize(target).effective_rank);
  EXPECT_LT(summarize(target).effective_rank, D / 2);
  EXPECT_LT(relative_spectrum_error(s.eigenvalues, target.eigenvalues), 0.05);
  EXPECT_THROW(reshape_noise(target, torch::randn({4, D + 1}, g, torch::kFloat64)), Error);
}

TEST(Spectrum, AppendixTransformMatchesTheCovarianceExactly) {
  // f(X) = (X − μ̂) V Ψ V₁ᵀ + μ₁ gives sample covariance C₁ exactly, not just in expectation.
  auto g = seeded(11);
  const int64_t D = 10, M = 500;
  auto target = spectrum_of_gaussian(torch::ones({D}, torch::kFloat64), smooth_cov(D, 1.5));
  auto y = match_covariance(torch::randn({M, D}, g, torch::kFloat64), target);
  auto s = spectrum_of(y);
  EXPECT_LT((s.cov - target.cov).abs().max().item<double>(), 1e-9);
  EXPECT_LT((s.mean - target.mean).abs().max().item<double>(), 1e-12);
  // Too few vectors for an invertible C.
  EXPECT_THROW(match_covariance(torch::randn({D, D}, g, torch::kFloat64), target), Error);
}

TEST(Spectrum, BadInputsThrow) {
  EXPECT_THROW(spectrum_of(torch::zeros({5})), Error);
  EXPECT_THROW(spectrum_of(torch::zeros({1, 5})), Error);
  auto x = torch::zeros({4, 3});
  x[1][1] = std::nan("");
  EXPECT_THROW(spectrum_of(x), Error);
  EXPECT_THROW(spectrum_of_gaussian(torch::zeros({3}), torch::eye(4)), Error);
  EXPECT_THROW(analyze_spectrum(torch::randn({10, 3}), torch::randn({10, 4})), Error);
  EXPECT_THROW(analyze_spectrum(torch::randn({10, 3}), torch::randn({10, 3}), torch::randn({10, 2})), Error);
}

TEST(Spectrum, AnalysisAndFigure) {
  auto g = seeded(13);
  const auto dir = std::filesystem::temp_directory_path() / ("spectrum_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto png_ok = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    return f && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G';
  };
  // Vectors (with samples), 2-D points, flattened 1×6×6 images, and a 450-dim set
  // whose covariance heatmaps are block-averaged.
  auto lr = low_rank(24, {3.0, 1.0, 0.5}, g);
  auto data = lr.mean + torch::matmul(torch::randn({300, 3}, g, torch::kFloat64) * lr.lambda.sqrt(), lr.Q.t());
  auto a = analyze_spectrum(data, torch::randn({300, 24}, g, torch::kFloat64), data.flip(0) * 1.1);
  EXPECT_TRUE(a.samples_spectrum.eigenvalues.defined());
  EXPECT_LT(relative_spectrum_error(a.reshaped_spectrum.eigenvalues, a.data_spectrum.eigenvalues), 0.3);
  a.title = "test";
  save_spectrum_figure((dir / "v.png").string(), a);
  EXPECT_TRUE(png_ok(dir / "v.png"));

  auto b = analyze_spectrum(torch::randn({200, 2}, g), torch::randn({200, 2}, g));
  EXPECT_FALSE(b.samples.defined());
  save_spectrum_figure((dir / "p.png").string(), b);
  EXPECT_TRUE(png_ok(dir / "p.png"));

  auto c = analyze_spectrum(torch::rand({100, 36}, g), torch::randn({100, 36}, g), torch::rand({50, 36}, g));
  c.image_shape = {1, 6, 6};
  save_spectrum_figure((dir / "i.png").string(), c);
  EXPECT_TRUE(png_ok(dir / "i.png"));

  auto d = analyze_spectrum(torch::randn({60, 450}, g), torch::randn({60, 450}, g));
  save_spectrum_figure((dir / "big.png").string(), d);
  EXPECT_TRUE(png_ok(dir / "big.png"));
  std::filesystem::remove_all(dir);
}
