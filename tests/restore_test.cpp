// Restoration against the exact Gaussian posterior. For a prior x ~ N(μ, Σ) on tiny
// 1×4×4 images and a noise-free measurement y = A x, the posterior is Gaussian with
//   E[x | y] = μ + Σ Aᵀ (A Σ Aᵀ)⁻¹ (y − A μ).
// The analytic Gaussian denoiser stands in for the network.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffuse/denoiser.hpp"
#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"

using namespace diffuse;

namespace {

constexpr int64_t kC = 1, kH = 4, kW = 4, kD = kC * kH * kW;

// The Gaussian denoiser on images: (B, C, H, W) ↔ (B, D).
class ImageGaussian : public Denoiser {
 public:
  ImageGaussian(torch::Tensor mean, torch::Tensor cov, NoiseSchedule s) : g_(mean, cov, std::move(s)) {}
  Prediction predict(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) const override {
    auto p = g_.predict(x.reshape({x.size(0), kD}), t, c);
    return {p.eps.reshape(x.sizes()).to(x.dtype()), p.x0.reshape(x.sizes()).to(x.dtype())};
  }
  const NoiseSchedule& schedule() const override { return g_.schedule(); }
  const GaussianDenoiser& gaussian() const { return g_; }

 private:
  GaussianDenoiser g_;
};

// Smooth prior: Σ_ij = 0.4 exp(−|p_i − p_j| / 1.5) + 0.01 δ_ij over pixel positions p.
ImageGaussian prior() {
  auto ij = torch::stack(torch::meshgrid({torch::arange(kH), torch::arange(kW)}, "ij"), -1).reshape({kD, 2});
  auto d = torch::cdist(ij.to(torch::kFloat64), ij.to(torch::kFloat64));
  auto cov = 0.4 * torch::exp(-d / 1.5) + 0.01 * torch::eye(kD, torch::kFloat64);
  auto mean = torch::linspace(-0.2, 0.3, kD, torch::kFloat64);
  return ImageGaussian(mean, cov, make_schedule(ScheduleConfig{}));
}

// A as a matrix (m, D), by applying it to the basis images.
torch::Tensor matrix_of(const Degradation& A) {
  auto basis = torch::eye(kD, torch::kFloat64).reshape({kD, kC, kH, kW});
  return A.apply(basis).reshape({kD, -1}).t().contiguous();
}

torch::Tensor posterior_mean(const ImageGaussian& p, const torch::Tensor& Am, const torch::Tensor& y) {
  const auto& mu = p.gaussian().mean();
  const auto& S = p.gaussian().cov();
  auto K = torch::matmul(torch::matmul(S, Am.t()), torch::linalg::pinv(torch::matmul(torch::matmul(Am, S), Am.t())));
  return mu + torch::matmul(K, y - torch::matmul(Am, mu));
}

struct Outcome {
  torch::Tensor mean, exact, y, samples;
  double naive_error;  // max |x̃ − E[x|y]| of x̃ = A⁺y + (I − A⁺A)μ, which ignores the correlations
};

Outcome run(RestoreMethod method, const Degradation& A, int64_t K, int64_t steps, double dps_scale = 1.0) {
  auto p = prior();
  // one draw from the prior is the unknown image
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  auto L = torch::linalg::cholesky(p.gaussian().cov());
  auto x = p.gaussian().mean() + torch::matmul(L, torch::randn({kD}, g, torch::kFloat64));
  auto img = x.reshape({1, kC, kH, kW});
  auto y = A.apply(img);
  RestoreConfig cfg;
  cfg.method = method;
  cfg.sampler.steps = steps;
  cfg.jump_length = 5;
  cfg.resample = 3;
  cfg.dps_scale = dps_scale;
  NoiseStream init(11, 0, K), noise(12, 0, K);
  auto x_T = init.randn({kC, kH, kW}, torch::dtype(torch::kFloat64));
  auto out = restore(p, A, y.expand({K, -1, -1, -1}).contiguous(), x_T, cfg, noise);
  auto Am = matrix_of(A);
  auto exact = posterior_mean(p, Am, y.reshape({-1}));
  auto mu = p.gaussian().mean().reshape({1, kC, kH, kW});
  auto naive = (A.pinv(y) + mu - A.pinv(A.apply(mu))).reshape({-1});
  return {out.reshape({K, kD}).mean(0), exact, y, out, (naive - exact).abs().max().item<double>()};
}

Degradation left_half_known() {
  auto known = torch::zeros({kH, kW});
  known.slice(1, 0, kW / 2).fill_(1);
  return Degradation::mask(known);
}

}  // namespace

TEST(Restore, PseudoInversesSatisfyAApinvIsIdentity) {
  auto y = torch::randn({2, 1, 2, 2}, torch::kFloat64);
  auto down = Degradation::downsample(2);
  EXPECT_TRUE(torch::allclose(down.apply(down.pinv(y)), y));
  auto rgb = Degradation::gray().then(Degradation::downsample(2));
  EXPECT_TRUE(torch::allclose(rgb.apply(rgb.pinv(y)), y));
  EXPECT_EQ(rgb.measurement_shape({3, 8, 8}), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(rgb.describe(), "downsample×2 ∘ gray");
  EXPECT_THROW(Degradation::gray().measurement_shape({1, 8, 8}), Error);
}

TEST(Restore, MaskSpecs) {
  auto box = parse_mask("box:1,0,2,3", 4, 4);
  EXPECT_EQ(box.sum().item<double>(), 16 - 6);
  EXPECT_EQ(box[0][1].item<double>(), 0.0);
  EXPECT_EQ(box[3][1].item<double>(), 1.0);
  EXPECT_EQ(parse_mask("half:top", 4, 4).slice(0, 0, 2).sum().item<double>(), 0.0);
  const double kept = parse_mask("random:0.5", 64, 64, 1).mean().item<double>();
  EXPECT_NEAR(kept, 0.5, 0.03);
  try {
    parse_mask("circle:3", 4, 4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.hint()).find("box:x,y,w,h"), std::string::npos);
  }
  EXPECT_THROW(parse_mask("box:3,3,4,4", 4, 4), Error);
}

TEST(Restore, RepaintKeepsKnownPixelsExactly) {
  auto A = left_half_known();
  auto r = run(RestoreMethod::Repaint, A, 64, 50);
  auto known = A.known().to(torch::kFloat64);
  auto diff = (r.samples - r.y) * known;  // y is m ⊙ x: the known pixels
  EXPECT_EQ(diff.abs().max().item<double>(), 0.0);
  // and the unknown ones follow the posterior mean
  auto err = ((r.mean - r.exact).reshape({kC, kH, kW}) * (1 - known)).abs().max().item<double>();
  EXPECT_LT(err, 0.5 * r.naive_error) << "max error of the mean on unknown pixels";
}

// DDNM and DPS are approximate posterior samplers even with the exact denoiser: their
// mean does not converge to E[x | y] as steps grow (measured, 50 … 1000 steps and 512 …
// 4096 samples: max error 0.05–0.1 for DDNM, growing past 200 steps for DPS at fixed ζ,
// whose gradient steps add up), but it lands far closer than x̃ = A⁺y + (I − A⁺A)μ,
// which uses y and the prior mean but not the prior's correlations (0.28 for the mask,
// 0.16 for downsampling; the posterior's largest standard deviation is 0.61).
TEST(Restore, DdnmMeanApproachesThePosteriorMean) {
  for (auto A : {left_half_known(), Degradation::downsample(2)}) {
    auto r = run(RestoreMethod::Ddnm, A, 2048, 100);
    const double err = (r.mean - r.exact).abs().max().item<double>();
    std::printf("ddnm %-14s max |mean − E[x|y]| = %.4f  (x̃: %.4f)\n", A.describe().c_str(), err, r.naive_error);
    EXPECT_LT(err, 0.5 * r.naive_error) << A.describe();
    // the measurement is met exactly: A x = y
    EXPECT_LT((A.apply(r.samples) - r.y).abs().max().item<double>(), 1e-6) << A.describe();
  }
}

TEST(Restore, DpsMeanApproachesThePosteriorMean) {
  for (auto A : {left_half_known(), Degradation::downsample(2)}) {
    auto r = run(RestoreMethod::Dps, A, 2048, 50, 0.5);
    const double err = (r.mean - r.exact).abs().max().item<double>();
    std::printf("dps  %-14s max |mean − E[x|y]| = %.4f  (x̃: %.4f)\n", A.describe().c_str(), err, r.naive_error);
    EXPECT_LT(err, 0.5 * r.naive_error) << A.describe();
  }
}

TEST(Restore, ErrorsSayWhy) {
  RestoreConfig c;
  c.method = RestoreMethod::Repaint;
  try {
    validate(c, Degradation::downsample(2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repaint fills masked pixels"), std::string::npos) << e.what();
  }
  c.method = RestoreMethod::Dps;
  c.sampler.kind = SamplerKind::Euler;
  EXPECT_THROW(validate(c, Degradation::downsample(2)), Error);
  c.method = RestoreMethod::Ddnm;
  EXPECT_NO_THROW(validate(c, Degradation::downsample(2)));  // ddnm runs with every sampler
  c.method = RestoreMethod::Sdedit;
  c.strength = 1.5;
  EXPECT_THROW(validate(c, Degradation::identity()), Error);
}
