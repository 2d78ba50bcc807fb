// The forward process (closed form vs Markov chain), parameterizations and losses.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "diffuse/diffusion.hpp"
#include "diffuse/schedule.hpp"

using namespace diffuse;

namespace {
NoiseSchedule linear_schedule(int64_t T = 1000) {
  ScheduleConfig c;
  c.T = T;
  return make_schedule(c);
}
torch::Tensor full_t(int64_t n, int64_t t) { return torch::full({n}, t, torch::kLong); }
}  // namespace

TEST(Forward, ChainMatchesClosedForm) {
  // Step-by-step x_t = √(1−β_t) x_{t−1} + √β_t ε from a fixed x₀ must have the
  // closed-form law N(√ᾱ_t x₀, (1 − ᾱ_t) I) (seed 002, 通过链式推导实现状态跨越).
  torch::manual_seed(0);
  auto s = linear_schedule(200);
  const int64_t N = 20000, D = 4;
  auto x0 = torch::tensor({1.5, -0.5, 0.25, 2.0}, torch::kFloat64).expand({N, D});
  auto x = x0.clone();
  for (int64_t t = 0; t < s.T(); ++t) {
    x = q_step(s, x, full_t(N, t), torch::randn({N, D}, torch::kFloat64));
    if (t == 20 || t == 100 || t == 199) {
      const double ab = s.alpha_bar(t);
      auto mean = x.mean(0), var = x.var(0);
      auto want = std::sqrt(ab) * x0[0];
      const double se = std::sqrt((1 - ab) / N);  // standard error of the mean
      EXPECT_LT((mean - want).abs().max().item<double>(), 5 * se) << "t=" << t;
      // variance of a sample variance ≈ 2σ⁴/N
      EXPECT_LT((var - (1 - ab)).abs().max().item<double>(), 5 * (1 - ab) * std::sqrt(2.0 / N)) << "t=" << t;
      // and q_sample draws from the same law
      auto y = q_sample(s, x0, full_t(N, t), torch::randn({N, D}, torch::kFloat64));
      EXPECT_LT((y.mean(0) - want).abs().max().item<double>(), 5 * se);
    }
  }
}

TEST(Forward, QSampleIsExactAffineMap) {
  auto s = linear_schedule();
  auto x0 = torch::randn({3, 5}, torch::kFloat64), eps = torch::randn({3, 5}, torch::kFloat64);
  auto t = torch::tensor({0, 400, 999}, torch::kLong);
  auto xt = q_sample(s, x0, t, eps);
  for (int64_t i = 0; i < 3; ++i) {
    const double ab = s.alpha_bar(t[i].item<int64_t>());
    auto want = std::sqrt(ab) * x0[i] + std::sqrt(1 - ab) * eps[i];
    EXPECT_TRUE(torch::allclose(xt[i], want, 1e-12, 1e-12));
  }
}

TEST(Forward, PosteriorMeanIsConditionalMeanOfChain) {
  // Monte Carlo: draw x_{t−1} ~ q(·|x₀), x_t ~ q(·|x_{t−1}); regress x_{t−1} on x_t.
  // For Gaussian q the conditional mean is linear: E[x_{t−1}|x_t] = c0 x₀ + ct x_t.
  torch::manual_seed(1);
  auto s = linear_schedule(100);
  const int64_t N = 200000, t = 60;
  const double x0v = 0.7;
  auto x0 = torch::full({N, 1}, x0v, torch::kFloat64);
  auto xprev = q_sample(s, x0, full_t(N, t - 1), torch::randn({N, 1}, torch::kFloat64));
  auto xt = q_step(s, xprev, full_t(N, t), torch::randn({N, 1}, torch::kFloat64));
  auto xc = xt - xt.mean(), pc = xprev - xprev.mean();
  const double slope = (xc * pc).sum().item<double>() / (xc * xc).sum().item<double>();
  const double intercept = xprev.mean().item<double>() - slope * xt.mean().item<double>();
  EXPECT_NEAR(slope, s.posterior_coef_xt(t), 0.01);
  EXPECT_NEAR(intercept, s.posterior_coef_x0(t) * x0v, 0.01);
  auto resid = xprev - (slope * xt + intercept);
  EXPECT_NEAR(resid.var().item<double>(), s.posterior_variance(t), 0.02 * s.posterior_variance(t));
  // and q_posterior_mean evaluates the same line
  auto m = q_posterior_mean(s, x0.slice(0, 0, 2), xt.slice(0, 0, 2), full_t(2, t));
  auto want = s.posterior_coef_x0(t) * x0v + s.posterior_coef_xt(t) * xt.slice(0, 0, 2);
  EXPECT_TRUE(torch::allclose(m, want, 1e-12, 1e-12));
}

TEST(Parameterization, ConversionsRoundTrip) {
  auto s = linear_schedule();
  auto x0 = torch::randn({4, 6}, torch::kFloat64), eps = torch::randn({4, 6}, torch::kFloat64);
  auto t = torch::tensor({0, 10, 500, 999}, torch::kLong);
  auto xt = q_sample(s, x0, t, eps);
  for (auto p : {PredictionType::Epsilon, PredictionType::Sample, PredictionType::V}) {
    auto ex = to_eps_x0(s, p, xt, t, target_for(s, p, t, x0, eps));
    EXPECT_TRUE(torch::allclose(ex.eps, eps, 1e-8, 1e-8)) << to_string(p);
    EXPECT_TRUE(torch::allclose(ex.x0, x0, 1e-8, 1e-8)) << to_string(p);
  }
  EXPECT_EQ(parse_prediction_type("v"), PredictionType::V);
  EXPECT_THROW(parse_prediction_type("score"), std::runtime_error);
}

TEST(Loss, WeightingsAreTheNamedLossesInEpsSpace) {
  // For every (prediction type, weighting): native weighted MSE == w(t)·‖ε̂ − ε‖²
  // with w = 1, 1/SNR, 1 + 1/SNR, min(SNR, γ)/SNR, max(1, 1/SNR).
  auto s = linear_schedule();
  torch::manual_seed(2);
  auto x0 = torch::randn({5, 3}, torch::kFloat64), eps = torch::randn({5, 3}, torch::kFloat64);
  auto t = torch::tensor({3, 100, 250, 700, 990}, torch::kLong);
  auto xt = q_sample(s, x0, t, eps);
  for (auto p : {PredictionType::Epsilon, PredictionType::Sample, PredictionType::V}) {
    auto out = target_for(s, p, t, x0, eps) + 0.1 * torch::randn({5, 3}, torch::kFloat64);
    auto eps_hat = to_eps_x0(s, p, xt, t, out).eps;
    auto eps_err = (eps_hat - eps).pow(2).mean(1);  // (B)
    for (auto w : {LossWeighting::Simple, LossWeighting::X0, LossWeighting::V, LossWeighting::MinSnr,
                   LossWeighting::TruncatedSnr}) {
      LossConfig cfg;
      cfg.weighting = w;
      cfg.min_snr_gamma = 5;
      auto native = loss_weight(s, p, cfg, t) * (out - target_for(s, p, t, x0, eps)).pow(2).mean(1);
      for (int64_t i = 0; i < 5; ++i) {
        const double snr = s.snr(t[i].item<int64_t>());
        const double we = w == LossWeighting::Simple ? 1
                          : w == LossWeighting::X0   ? 1 / snr
                          : w == LossWeighting::V    ? 1 + 1 / snr
                          : w == LossWeighting::MinSnr ? std::min(snr, 5.0) / snr
                                                       : std::max(1.0, 1 / snr);
        EXPECT_NEAR(native[i].item<double>(), we * eps_err[i].item<double>(),
                    1e-6 * (1 + we * eps_err[i].item<double>()))
            << to_string(p) << " " << to_string(w) << " t=" << t[i].item<int64_t>();
      }
    }
  }
  // x₀ weighting of an x₀ model is plain x₀-MSE, v weighting of a v model plain v-MSE.
  LossConfig x0w;
  x0w.weighting = LossWeighting::X0;
  EXPECT_TRUE(torch::allclose(loss_weight(s, PredictionType::Sample, x0w, t), torch::ones({5}, torch::kFloat64)));
  LossConfig vw;
  vw.weighting = LossWeighting::V;
  EXPECT_TRUE(torch::allclose(loss_weight(s, PredictionType::V, vw, t), torch::ones({5}, torch::kFloat64)));
}
