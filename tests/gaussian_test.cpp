// The analytic Gaussian denoiser, and the DDPM sampler driven by it reproducing
// N(μ, Σ) in 8 dimensions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

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
  // Each coordinate of the mean within 5 standard errors √(Σ_ii/N), each entry of the
  // covariance within 5 of its standard error √((Σ_ii Σ_jj + Σ_ij²)/N); the largest of
  // these errors, in standard errors:
  auto dg = g.cov.diag();
  auto se = (dg / double(N)).sqrt();
  auto cov_se = ((torch::outer(dg, dg) + g.cov.pow(2)) / double(N)).sqrt();
  auto worst_error = [&](const torch::Tensor& y) {
    auto m = y.mean(0);
    auto yc = y - m;
    auto c = torch::matmul(yc.t(), yc) / double(N - 1);
    return std::max(((m - g.mean).abs() / se).max().item<double>(), ((c - g.cov).abs() / cov_se).max().item<double>());
  };
  const double worst = worst_error(x);
  EXPECT_LT(worst, 5.0) << "mean or covariance off by " << worst << " standard errors";
  // The check has teeth: a sampler that skipped denoising (returned x_T), one that returned
  // the data mean only, and one 10 % too wide (covariance × 1.21) all fail it.
  auto x_T = NoiseStream(11, 0, N).randn({8}, torch::dtype(torch::kFloat64));
  const double skipped = worst_error(x_T), mean_only = worst_error(g.mean.expand({N, 8}));
  const double too_wide = worst_error(g.mean + 1.1 * (x - g.mean));
  EXPECT_GT(skipped, 20.0);
  EXPECT_GT(mean_only, 20.0);
  EXPECT_GT(too_wide, 5.0);
  std::printf("DDPM %s: worst error %.2f standard errors; x_T %.1f, mean only %.1f, 10%% too wide %.1f\n",
              to_string(GetParam()).c_str(), worst, skipped, mean_only, too_wide);
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
