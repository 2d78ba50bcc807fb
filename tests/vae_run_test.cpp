// VAE runs (--model vae): the config round trip and its checks, a short training run on the
// Fashion-MNIST test split whose −ELBO falls, exact resume, and a loaded run that draws images
// through draw_samples (as `diffuse sample`, `eval fd` and the server do) with the per-sample
// seeding of diffusion runs, while the diffusion-only tools refuse it by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/train.hpp"
#include "test_util.hpp"

using namespace diffuse;

namespace {

std::string vae_run_dir(const std::string& name) { return test::fresh_dir("diffuse_vae_run_" + name); }

TrainConfig tiny_vae_config() {
  TrainConfig c;
  c.model_kind = ModelKind::Vae;
  c.data = "fashion-mnist:test";
  c.vae.latent_dim = 8;
  c.vae.base_channels = 8;
  c.vae.likelihood = VaeLikelihood::DiscretizedLogistic;
  c.batch = 32;
  c.steps = 150;
  c.lr = 2e-3;
  c.warmup = 5;
  c.log_every = 25;
  c.checkpoint_every = 1000;
  c.threads = 1;
  return c;
}

TrainHooks vae_quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

// The loss column of log.csv.
}  // namespace

TEST(VaeRun, ConfigRoundTripsAndIsChecked) {
  TrainConfig c = tiny_vae_config();
  c.vae.likelihood = VaeLikelihood::Bernoulli;
  c.vae.latent_dim = 12;
  TrainConfig r = train_config_from_json(train_config_to_json(c));
  EXPECT_EQ(r.model_kind, ModelKind::Vae);
  EXPECT_EQ(r.vae.latent_dim, 12);
  EXPECT_EQ(r.vae.base_channels, 8);
  EXPECT_EQ(r.vae.likelihood, VaeLikelihood::Bernoulli);
  EXPECT_EQ(train_config_from_json("{}").model_kind, ModelKind::Diffusion);  // old configs stay diffusion runs

  EXPECT_NE(test::error_text([] { parse_model_kind("gan"); }).find("diffusion, vae"), std::string::npos);
  auto vectors = tiny_vae_config();
  vectors.data = "signals";
  EXPECT_NE(test::error_text([&] { validate(vectors); }).find("needs image data"), std::string::npos);
  auto cond = tiny_vae_config();
  cond.class_conditional = true;
  EXPECT_NE(test::error_text([&] { validate(cond); }).find("unconditional"), std::string::npos);
  auto bf16 = tiny_vae_config();
  bf16.precision = Precision::Bf16;
  EXPECT_NE(test::error_text([&] { validate(bf16); }).find("fp32"), std::string::npos);
  EXPECT_NO_THROW(validate(tiny_vae_config()));
}

TEST(VaeRun, TrainsLoadsAndDrawsLikeADiffusionRun) {
  const auto dir = vae_run_dir("train");
  auto res = train(tiny_vae_config(), dir, false, vae_quiet());
  EXPECT_EQ(res.status, TrainStatus::Finished);
  auto losses = test::logged_losses(dir);
  ASSERT_EQ(losses.size(), 6u);
  // −ELBO in nats/dim: it falls (the untrained decoder puts wide logistics around 0).
  EXPECT_LT(losses.back(), 0.85 * losses.front()) << losses.front() << " → " << losses.back();
  EXPECT_GT(losses.back(), 0.0);

  auto run = load_run(dir, true, "cpu");
  EXPECT_TRUE(run.is_vae());
  EXPECT_EQ(run.denoiser, nullptr);
  EXPECT_EQ(run.config.vae.in_channels, 1);
  EXPECT_EQ(run.config.vae.image_size, 28);
  EXPECT_EQ(run.config.unet.image_size, 28);  // the data's shape, read by every image tool
  EXPECT_NE(test::error_text([&] { run.diffusion("restoration"); }).find("is a VAE run"), std::string::npos);

  DrawConfig dc;
  dc.n = 5;
  dc.batch = 5;
  dc.seed = 3;
  auto all = draw_samples(run, dc, torch::kCPU);
  EXPECT_EQ(all.samples.sizes(), (std::vector<int64_t>{5, 1, 28, 28}));
  EXPECT_FALSE(all.labels.defined());
  EXPECT_GE(all.samples.min().item<double>(), -1.0);
  EXPECT_LE(all.samples.max().item<double>(), 1.0);
  EXPECT_GT(all.samples.std().item<double>(), 0.05);  // not one flat image
  dc.batch = 2;  // any batch size draws the same images
  EXPECT_TRUE(torch::equal(draw_samples(run, dc, torch::kCPU).samples, all.samples));
  DrawConfig one;  // sample 3 of seed 3 vs sample 0 of seed 7: different z, different images
  one.n = 1;
  one.seeds = {7};
  auto seven = draw_samples(run, one, torch::kCPU).samples;
  DrawConfig seven_first;
  seven_first.n = 2;
  seven_first.seed = 7;
  // The same z; decoded in a batch of 1 or 2 (convolution kernels may differ in the last bits).
  EXPECT_TRUE(torch::allclose(seven, draw_samples(run, seven_first, torch::kCPU).samples.slice(0, 0, 1), 0, 1e-5));
  EXPECT_FALSE(torch::equal(seven, all.samples.slice(0, 3, 4)));
}

TEST(VaeRun, ResumesBitForBit) {
  const auto straight = vae_run_dir("straight"), split = vae_run_dir("split");
  TrainConfig c = tiny_vae_config();
  c.steps = 16;
  train(c, straight, false, vae_quiet());
  TrainHooks h = vae_quiet();
  h.stop_after = [](int64_t step) { return step == 7; };
  EXPECT_EQ(train(c, split, false, h).status, TrainStatus::Stopped);
  EXPECT_EQ(train(c, split, true, vae_quiet()).step, 16);
  auto a = load_safetensors(checkpoint_path(straight)).tensors, b = load_safetensors(checkpoint_path(split)).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}
