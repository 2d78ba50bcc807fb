// Restoration: the degradation operators and their pseudo-inverses (against torch's
// Moore–Penrose pseudo-inverse of the operator's matrix), mask specs and PNG masks, and
// the methods' means against the exact Gaussian posterior. For a prior x ~ N(μ, Σ) on tiny
// 1×4×4 images and a noise-free measurement y = A x, the posterior is Gaussian with
//   E[x | y] = μ + Σ Aᵀ (A Σ Aᵀ)⁻¹ (y − A μ)
// (restore_oracle.hpp). The analytic Gaussian denoiser stands in for the network; the
// methods' other closed-form checks are in restore_posterior_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/restore.hpp"
#include "restore_oracle.hpp"

using namespace diffuse;
using namespace diffuse::restore_oracle;

namespace {

constexpr int64_t kC = 1, kH = 4, kW = 4, kD = kC * kH * kW;

ImageGaussian prior() { return smooth_prior(kC, kH, kW); }

struct Outcome {
  torch::Tensor mean, exact, y, samples;
  double naive_error;  // max |x̃ − E[x|y]| of x̃ = A⁺y + (I − A⁺A)μ, which ignores the correlations
};

Outcome run(RestoreMethod method, const Degradation& A, int64_t K, int64_t steps, double dps_scale = 1.0) {
  auto p = prior();
  auto img = p.draw(1, 3);  // the unknown image
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
  auto exact = posterior(p, matrix_of(A, p.shape()), y.reshape({1, -1}), 0.0).mean.reshape({-1});
  auto mu = p.mean().reshape({1, kC, kH, kW});
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

// A·A⁺ = I does not pin A⁺ down: for gray, "copy the luma to the three channels" passes it too,
// since the weights sum to 1. The Moore–Penrose pseudo-inverse, A⁺ = Aᵀ(AAᵀ)⁻¹ for these
// full-row-rank operators (and the projection itself for a mask), is unique: compare the
// matrix of A.pinv with torch's pinv of the matrix of A, for each operator and the
// compositions whose A⁺ is the pseudo-inverses in reverse order (operators on different
// axes, and masks aligned with the pooling blocks).
TEST(Restore, PseudoInversesAreMoorePenrose) {
  auto G = matrix_of(Degradation::gray(), {3, 1, 1});  // (1, 3) = wᵀ
  auto copy = torch::ones({3, 1}, torch::kFloat64);
  ASSERT_NEAR(torch::matmul(G, copy).item<double>(), 1.0, 1e-12);            // A·copy = I too …
  ASSERT_GT((copy - torch::linalg::pinv(G)).abs().max().item<double>(), 0.5);  // … but copy is not A⁺

  auto scattered = torch::ones({4, 4});  // known = 1
  scattered[0][1] = 0, scattered[2][2] = 0, scattered[3][0] = 0;
  auto per_channel = torch::ones({3, 4, 4});
  per_channel[0][1][1] = 0, per_channel[2][0][3] = 0;
  auto block = torch::ones({4, 4});  // a missing 2×2 pooling block
  block.slice(0, 0, 2).slice(1, 2, 4).zero_();
  auto low = torch::ones({2, 2});
  low[1][0] = 0;
  using D = Degradation;
  struct Case {
    std::string name;
    Degradation A;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {"gray", D::gray(), {3, 2, 2}},
      {"downsample×2", D::downsample(2), {1, 4, 4}},
      {"downsample×2 rgb", D::downsample(2), {3, 4, 4}},
      {"downsample×4", D::downsample(4), {3, 4, 4}},
      {"mask", D::mask(scattered), {3, 4, 4}},
      {"mask per channel", D::mask(per_channel), {3, 4, 4}},
      {"gray then downsample", D::gray().then(D::downsample(2)), {3, 4, 4}},
      {"downsample then gray", D::downsample(2).then(D::gray()), {3, 4, 4}},
      {"mask then gray", D::mask(scattered).then(D::gray()), {3, 4, 4}},
      {"gray then mask", D::gray().then(D::mask(scattered)), {3, 4, 4}},
      {"block mask then downsample", D::mask(block).then(D::downsample(2)), {3, 4, 4}},
      {"downsample then mask", D::downsample(2).then(D::mask(low)), {3, 4, 4}},
      {"gray, downsample×2, mask", D::gray().then(D::downsample(2)).then(D::mask(low)), {3, 4, 4}},
  };
  for (const auto& c : cases) {
    auto Am = matrix_of(c.A, c.shape);                          // (m, D)
    auto reference = torch::linalg::pinv(Am, 1e-10, false);     // (D, m)
    auto library = pinv_matrix_of(c.A, c.shape);                // (D, m)
    ASSERT_EQ(library.sizes(), reference.sizes()) << c.name;
    EXPECT_LT((library - reference).abs().max().item<double>(), 1e-12) << c.name;
  }
}

// A PNG mask (white = missing, by the mean over channels ≥ 128) is the box it draws.
TEST(Restore, PngMaskIsTheEquivalentBoxMask) {
  const auto dir = std::filesystem::temp_directory_path() / ("diffuse_restore_mask_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto rgb = torch::zeros({3, 4, 4}, torch::kUInt8);
  rgb.slice(1, 0, 3).slice(2, 1, 3).fill_(255);                                  // box:1,0,2,3 is white
  rgb.select(1, 1).select(1, 2).copy_(torch::tensor({200, 100, 84}, torch::kUInt8));  // mean 128: missing
  rgb.select(1, 3).select(1, 0).fill_(127);                                      // mean 127: known
  rgb.select(1, 2).select(1, 3).copy_(torch::tensor({255, 126, 0}, torch::kUInt8));   // mean 127: known
  const std::string rgb_png = (dir / "mask_rgb.png").string(), gray_png = (dir / "mask_gray.png").string();
  write_png(rgb_png, rgb);
  auto gray = torch::zeros({1, 4, 4}, torch::kUInt8);
  gray.slice(1, 0, 3).slice(2, 1, 3).fill_(255);
  gray[0][1][2] = 128, gray[0][3][0] = 127;
  write_png(gray_png, gray);
  auto box = parse_mask("box:1,0,2,3", kH, kW);
  auto from_rgb = parse_mask(rgb_png, kH, kW), from_gray = parse_mask(gray_png, kH, kW);
  EXPECT_TRUE(torch::equal(from_rgb, box)) << from_rgb;
  EXPECT_TRUE(torch::equal(from_gray, box)) << from_gray;
  EXPECT_THROW(parse_mask(rgb_png, 8, 8), Error);  // the images are 8×8, the mask 4×4

  // and restores exactly as the box does
  auto p = prior();
  auto y = p.draw(1, 5).expand({16, -1, -1, -1}).contiguous();
  for (auto method : {RestoreMethod::Repaint, RestoreMethod::Ddnm}) {
    RestoreConfig cfg;
    cfg.method = method;
    cfg.sampler.steps = 20;
    auto a = Degradation::mask(from_rgb), b = Degradation::mask(box);
    auto xa = restore_draws(p, a, a.apply(y), cfg, 7), xb = restore_draws(p, b, b.apply(y), cfg, 7);
    EXPECT_TRUE(torch::equal(xa, xb)) << to_string(method);
    EXPECT_LT(((xa - y) * box).abs().max().item<double>(), 1e-9) << "known pixels kept";
  }
  std::filesystem::remove_all(dir);
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
