// The analytic Gaussian denoiser, and the DDPM sampler driven by it reproducing
// N(μ, Σ) in 8 dimensions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "diffuse/denoiser.hpp"
#include "diffuse/sampler.hpp"

using namespace diffuse;

namespace {
struct Gauss8 {
  torch::Tensor mean, cov;
};
Gauss8 make_gauss8() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  auto A = torch::randn({8, 8}, g, torch::kFloat64) * 0.5;
  auto cov = torch::matmul(A, A.t()) + 0.05 * torch::eye(8, torch::kFloat64);
  auto mean = torch::linspace(-1, 1, 8, torch::kFloat64);
  return {mean, cov};
}
NoiseSchedule gauss_schedule(int64_t T) {
  ScheduleConfig c;
  c.T = T;
  c.beta_end = 0.02 * 1000.0 / double(T);  // the same total noise as T = 1000
  c.beta_start = 1e-4 * 1000.0 / double(T);
  return make_schedule(c);
}
}  // namespace

TEST(GaussianDenoiser, MatchesDirectPosteriorSolve) {
  auto g = make_gauss8();
  auto s = gauss_schedule(1000);
  GaussianDenoiser d(g.mean, g.cov, s);
  auto x = torch::randn({3, 8}, torch::kFloat64);
  auto t = torch::tensor({0, 300, 999}, torch::kLong);
  auto p = d.predict(x, t);
  for (int64_t i = 0; i < 3; ++i) {
    const double ab = s.alpha_bar(t[i].item<int64_t>()), a = std::sqrt(ab), sd = std::sqrt(1 - ab);
    // E[x₀|x_t] = μ + aΣ(a²Σ + s²I)⁻¹(x_t − aμ)
    auto K = a * g.cov * 1.0;
    auto S = a * a * g.cov + sd * sd * torch::eye(8, torch::kFloat64);
    auto want = g.mean + torch::matmul(K, torch::linalg::solve(S, (x[i] - a * g.mean).unsqueeze(1), true).squeeze(1));
    EXPECT_TRUE(torch::allclose(p.x0[i], want, 1e-9, 1e-9));
    EXPECT_TRUE(torch::allclose(p.eps[i], (x[i] - a * want) / sd, 1e-9, 1e-9));
  }
}

TEST(GaussianDenoiser, RejectsBadCovariance) {
  auto s = gauss_schedule(100);
  EXPECT_THROW(GaussianDenoiser(torch::zeros({3}), torch::eye(4), s), std::runtime_error);
  auto asym = torch::eye(3, torch::kFloat64);
  asym[0][1] = 0.5;
  EXPECT_THROW(GaussianDenoiser(torch::zeros({3}), asym, s), std::runtime_error);
}

class DdpmOracle : public ::testing::TestWithParam<DdpmVariance> {};

TEST_P(DdpmOracle, ReproducesGaussianMeanAndCovariance) {
  auto g = make_gauss8();
  auto s = gauss_schedule(250);
  GaussianDenoiser d(g.mean, g.cov, s);
  const int64_t N = 6000;
  NoiseStream init(11, 0, N), steps(12, 0, N);
  SamplerConfig cfg;
  cfg.variance = GetParam();
  auto x = sample(d, init.randn({8}, torch::dtype(torch::kFloat64)), cfg, steps).to(torch::kFloat64);
  auto mean = x.mean(0);
  auto xc = x - mean;
  auto cov = torch::matmul(xc.t(), xc) / double(N - 1);
  // Mean: each coordinate within 5 standard errors √(Σ_ii/N).
  auto se = (g.cov.diag() / double(N)).sqrt();
  EXPECT_TRUE(((mean - g.mean).abs() < 5 * se).all().item<bool>())
      << "mean " << mean << "\nwant " << g.mean;
  // Covariance: entrywise, Var(Ĉ_ij) ≈ (Σ_ii Σ_jj + Σ_ij²)/N.
  auto dg = g.cov.diag();
  auto cov_se = ((torch::outer(dg, dg) + g.cov.pow(2)) / double(N)).sqrt();
  const double worst = ((cov - g.cov).abs() / cov_se).max().item<double>();
  EXPECT_LT(worst, 5.0) << "covariance off by " << worst << " standard errors";
  // The sampler is not trivially right: the un-denoised noise is far off.
  EXPECT_GT((torch::eye(8, torch::kFloat64) - g.cov).abs().max().item<double>(), 0.5);
}

INSTANTIATE_TEST_SUITE_P(Variances, DdpmOracle,
                         ::testing::Values(DdpmVariance::BetaTilde, DdpmVariance::Beta),
                         [](const auto& info) { return info.param == DdpmVariance::Beta ? "Beta" : "BetaTilde"; });

TEST(NoiseStream, SampleDependsOnlyOnSeedAndIndex) {
  NoiseStream all(5, 0, 6), tail(5, 4, 2);
  auto a = all.randn({3}), b = tail.randn({3});
  EXPECT_TRUE(torch::equal(a.slice(0, 4, 6), b));
  NoiseStream other(6, 0, 6);
  EXPECT_FALSE(torch::equal(all.randn({3}), other.randn({3})));
}
