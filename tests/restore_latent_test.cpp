// Restoration of latent runs through a LatentCodec: DPS measures A D(x̂₀) with the gradient
// through the decoder, SDEdit encodes its input, the result is decoded; repaint and DDNM are
// refused. The oracle: a Gaussian prior z ~ N(μ, Σ) on 1×4×4 "latents" with its exact
// denoiser, and a linear invertible decoder D(z) = M z. Then x = M z ~ N(Mμ, M Σ Mᵀ), and for
// y = A x the posterior E[x | y] is the Gaussian closed form of restore_oracle.hpp with that
// prior — the latent DPS mean must land near it as the pixel DPS mean does (restore_test.cpp).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"
#include "restore_oracle.hpp"

using namespace diffuse;
using namespace diffuse::restore_oracle;

namespace {

constexpr int64_t kC = 1, kH = 4, kW = 4, kD = kC * kH * kW;

// M = I + 0.3 R, R standard normal / 4 (seeded): mixes every pixel with every latent, well
// conditioned.
torch::Tensor mixing_matrix() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  return torch::eye(kD, torch::kFloat64) + 0.3 * torch::randn({kD, kD}, g, torch::kFloat64) / 4.0;
}

LatentCodec linear_codec(const torch::Tensor& M) {
  LatentCodec c;
  const auto Minv = torch::linalg::inv(M);
  c.decode = [M](const torch::Tensor& z) { return torch::matmul(z.reshape({z.size(0), kD}), M.t()).reshape(z.sizes()); };
  c.encode = [Minv](const torch::Tensor& x) {
    return torch::matmul(x.reshape({x.size(0), kD}), Minv.t()).reshape(x.sizes());
  };
  return c;
}

Degradation left_half_known() {
  auto known = torch::zeros({kH, kW});
  known.slice(1, 0, kW / 2).fill_(1);
  return Degradation::mask(known);
}

torch::Tensor run(const Denoiser& d, const Degradation& A, const torch::Tensor& y, const RestoreConfig& cfg, int64_t K,
                  const LatentCodec* codec) {
  NoiseStream init(11, 0, K), noise(12, 0, K);
  auto x_T = init.randn({kC, kH, kW}, torch::dtype(torch::kFloat64));
  return restore(d, A, y.expand({K, -1, -1, -1}).contiguous(), x_T, cfg, noise, {}, {}, codec);
}

}  // namespace

TEST(RestoreLatent, DpsThroughTheDecoderApproachesThePixelPosteriorMean) {
  auto pz = smooth_prior(kC, kH, kW);  // the latents' prior
  const auto M = mixing_matrix();
  const auto codec = linear_codec(M);
  // the images' prior: x = M z
  ImageGaussian px({kC, kH, kW}, torch::matmul(M, pz.mean()), torch::matmul(torch::matmul(M, pz.cov()), M.t()),
                   pz.schedule());
  for (auto A : {left_half_known(), Degradation::downsample(2)}) {
    auto img = px.draw(1, 3);
    auto y = A.apply(img);
    RestoreConfig cfg;
    cfg.method = RestoreMethod::Dps;
    cfg.sampler.steps = 50;
    cfg.dps_scale = 0.5;
    auto out = run(pz, A, y, cfg, 2048, &codec);  // images: decoded
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2048, kC, kH, kW}));
    auto mean = out.reshape({-1, kD}).mean(0);
    auto exact = posterior(px, matrix_of(A, px.shape()), y.reshape({1, -1}), 0.0).mean.reshape({-1});
    auto mu = px.mean().reshape({1, kC, kH, kW});
    auto naive = (A.pinv(y) + mu - A.pinv(A.apply(mu))).reshape({-1});
    const double err = (mean - exact).abs().max().item<double>(),
                 naive_err = (naive - exact).abs().max().item<double>();
    // without guidance the decoded draws follow the prior, N(Mμ, MΣMᵀ): far from E[x | y]
    RestoreConfig free = cfg;
    free.dps_scale = 0;
    auto prior_mean = run(pz, A, y, free, 2048, &codec).reshape({-1, kD}).mean(0);
    const double prior_err = (prior_mean - exact).abs().max().item<double>();
    std::printf("latent dps %-14s max |mean − E[x|y]| = %.4f  (x̃: %.4f, unguided: %.4f)\n", A.describe().c_str(), err,
                naive_err, prior_err);
    EXPECT_LT(err, 0.5 * naive_err) << A.describe();
    EXPECT_LT(err, 0.5 * prior_err) << A.describe();
  }
}

TEST(RestoreLatent, AnIdentityCodecChangesNothing) {
  auto p = smooth_prior(kC, kH, kW);
  LatentCodec id;
  id.encode = [](const torch::Tensor& x) { return x; };
  id.decode = [](const torch::Tensor& z) { return z; };
  auto img = p.draw(1, 4);
  RestoreConfig dps;
  dps.method = RestoreMethod::Dps;
  dps.sampler.steps = 10;
  auto A = Degradation::downsample(2);
  auto y = A.apply(img);
  EXPECT_TRUE(torch::equal(run(p, A, y, dps, 4, &id), run(p, A, y, dps, 4, nullptr)));
  RestoreConfig sde;
  sde.method = RestoreMethod::Sdedit;
  sde.sampler.kind = SamplerKind::Ddim;
  sde.sampler.steps = 10;
  EXPECT_TRUE(torch::equal(run(p, Degradation::identity(), img, sde, 4, &id),
                           run(p, Degradation::identity(), img, sde, 4, nullptr)));
}

// SDEdit of a latent run starts from the encoded input and returns the decoding: with D = M·
// and E = M⁻¹·, restoring in latents equals restoring E(x) without a codec, then D.
TEST(RestoreLatent, SdeditEncodesTheInputAndDecodesTheResult) {
  auto p = smooth_prior(kC, kH, kW);
  const auto codec = linear_codec(mixing_matrix());
  auto img = p.draw(1, 6);
  RestoreConfig sde;
  sde.method = RestoreMethod::Sdedit;
  sde.sampler.kind = SamplerKind::Ddim;
  sde.sampler.steps = 10;
  auto latent = run(p, Degradation::identity(), img, sde, 3, &codec);
  auto by_hand = codec.decode(run(p, Degradation::identity(), codec.encode(img), sde, 3, nullptr));
  EXPECT_LT((latent - by_hand).abs().max().item<double>(), 1e-10);
}

TEST(RestoreLatent, RepaintAndDdnmAreRefused) {
  RestoreConfig c;
  for (auto m : {RestoreMethod::Repaint, RestoreMethod::Ddnm}) {
    c.method = m;
    try {
      validate(c, left_half_known(), /*latent=*/true);
      FAIL() << to_string(m);
    } catch (const Error& e) {
      const std::string what = std::string(e.what()) + " " + e.hint();
      EXPECT_NE(what.find("a latent run's x0 is a latent"), std::string::npos) << what;
      EXPECT_NE(what.find("--method dps"), std::string::npos) << what;
    }
  }
  c.method = RestoreMethod::Dps;
  EXPECT_NO_THROW(validate(c, left_half_known(), true));
}
