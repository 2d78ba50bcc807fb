// Latent diffusion end to end on the Fashion-MNIST test split: an autoencoder-kl run (loss falls,
// the scale factor is 1 / std of its latents and lands in config.json, the diffusers-style
// export under RUN/vae/), then a diffusion run on its latents (the data and shapes come from the
// autoencoder, the checkpoint keeps a copy of it, the loss falls, resume is exact, samples decode
// to images), and the errors for a wrong or unfinished --latent.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "diffuse/data.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/nn/autoencoder_kl.hpp"
#include "diffuse/train.hpp"
#include "test_util.hpp"

using namespace diffuse;

namespace {

std::string latent_dir(const std::string& name) { return test::fresh_dir("diffuse_latent_" + name); }

TrainHooks latent_quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

TrainConfig tiny_autoencoder_config() {
  TrainConfig c;
  c.model_kind = ModelKind::AutoencoderKL;
  c.data = "fashion-mnist:test";
  c.autoencoder.block_out_channels = {8, 16, 16};  // f = 4: 28 → 7
  c.autoencoder.norm_num_groups = 4;
  c.autoencoder.latent_channels = 3;
  c.batch = 16;
  c.steps = 40;
  c.lr = 2e-3;
  c.warmup = 5;
  c.log_every = 10;
  c.checkpoint_every = 1000;
  c.threads = 1;
  return c;
}

TrainConfig tiny_latent_config(const std::string& ae_dir) {
  TrainConfig c;
  c.latent = ae_dir;
  c.class_conditional = true;
  c.schedule.T = 50;
  c.unet.base_channels = 8;
  c.unet.channel_mult = {1, 2};  // 7 → 4
  c.unet.blocks_per_level = 1;
  c.unet.attention_resolutions = {4};
  c.unet.head_channels = 8;
  c.unet.groups = 4;
  c.unet.dropout = 0.0;
  c.layout = MemoryLayout::Nchw;  // runs compared bit for bit: no timed choice between them
  c.batch = 32;
  c.steps = 60;
  c.lr = 2e-3;
  c.warmup = 5;
  c.log_every = 10;
  c.checkpoint_every = 1000;
  c.threads = 1;
  return c;
}

}  // namespace

TEST(LatentRun, AutoencoderThenDiffusionOnItsLatents) {
  // The autoencoder.
  const auto ae_dir = latent_dir("ae");
  EXPECT_EQ(train(tiny_autoencoder_config(), ae_dir, false, latent_quiet()).status, TrainStatus::Finished);
  auto ae_losses = test::logged_losses(ae_dir);
  ASSERT_EQ(ae_losses.size(), 4u);
  EXPECT_LT(ae_losses.back(), 0.7 * ae_losses.front()) << ae_losses.front() << " → " << ae_losses.back();

  auto ae = load_run(ae_dir, true, "cpu");
  EXPECT_TRUE(ae.is_autoencoder());
  EXPECT_EQ(ae.config.autoencoder.in_channels, 1);
  EXPECT_EQ(ae.config.autoencoder.sample_size, 28);
  // The scale factor: 1 / std of μ_φ(x) over the (10 000) images, with the EMA weights.
  const double scale = ae.config.autoencoder.scaling_factor;
  {
    torch::NoGradGuard g;
    auto images = make_data_source("fashion-mnist:test");
    auto x = images->items(torch::arange(images->size(), torch::kLong)).x;
    auto z = ae.network.autoencoder->encode(x).mean;
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{10000, 3, 7, 7}));
    EXPECT_NEAR(scale, 1.0 / z.to(torch::kFloat64).std().item<double>(), 1e-4 * scale);
    EXPECT_NE(scale, 1.0);
  }
  // config.json holds it; RUN/vae/ is diffusers' layout with the same weights and scale.
  EXPECT_NEAR(train_config_from_json(test::read_text(ae_dir + "/config.json")).autoencoder.scaling_factor, scale, 1e-12);
  auto exported = autoencoder_kl_config_from_json(test::read_text(ae_dir + "/vae/config.json"));
  EXPECT_NEAR(exported.scaling_factor, scale, 1e-12);
  EXPECT_EQ(exported.block_out_channels, (std::vector<int64_t>{8, 16, 16}));
  auto w = load_safetensors(ae_dir + "/vae/diffusion_pytorch_model.safetensors").tensors;
  auto ckpt = load_safetensors(checkpoint_path(ae_dir)).tensors;
  for (const char* k : {"encoder.conv_in.weight", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
                        "decoder.up_blocks.0.upsamplers.0.conv.weight", "quant_conv.bias"}) {
    ASSERT_TRUE(w.count(k)) << k;
    EXPECT_TRUE(torch::equal(w.at(k), ckpt.at(std::string("ema.") + k))) << k;
  }
  // An autoencoder run does not sample.
  DrawConfig dc;
  dc.n = 2;
  EXPECT_NE(test::error_text([&] { draw_samples(ae, dc, torch::kCPU); }).find("is an autoencoder run"),
            std::string::npos);

  // Diffusion on its latents: the data, channels and size come from the autoencoder.
  const auto dir = latent_dir("ldm");
  auto res = train(tiny_latent_config(ae_dir), dir, false, latent_quiet());
  EXPECT_EQ(res.status, TrainStatus::Finished);
  auto losses = test::logged_losses(dir);
  EXPECT_LT(losses.back(), 0.8 * losses.front()) << losses.front() << " → " << losses.back();
  auto run = load_run(dir, true, "cpu");
  EXPECT_TRUE(run.is_latent());
  EXPECT_EQ(run.config.data, "fashion-mnist:test");
  EXPECT_EQ(run.config.unet.in_channels, 3);
  EXPECT_EQ(run.config.unet.image_size, 7);
  EXPECT_EQ(run.config.unet.num_classes, 10);
  EXPECT_EQ(run.image_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_NEAR(run.config.autoencoder.scaling_factor, scale, 1e-12);
  auto lck = load_safetensors(checkpoint_path(dir)).tensors;
  EXPECT_TRUE(torch::equal(lck.at("autoencoder.decoder.conv_out.weight"), ckpt.at("ema.decoder.conv_out.weight")));
  // to_pixels undoes the scale: the latents of images decode to the autoencoder's reconstructions.
  {
    torch::NoGradGuard g;
    auto x = make_data_source("fashion-mnist:test")->items(torch::arange(4, torch::kLong)).x;
    auto mu = ae.network.autoencoder->encode(x).mean;
    auto rec = ae.network.autoencoder->decode(mu).clamp(-1, 1);
    EXPECT_TRUE(torch::allclose(run.to_pixels(mu * scale), rec, 0, 1e-5));
    EXPECT_FALSE(torch::allclose(run.to_pixels(mu), rec, 0, 1e-3));
  }
  // Samples decode to images in [−1, 1]; any batch size gives the same ones.
  dc.n = 4;
  dc.batch = 4;
  dc.sampler.steps = 10;
  auto drawn = draw_samples(run, dc, torch::kCPU);
  EXPECT_EQ(drawn.samples.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_GE(drawn.samples.min().item<double>(), -1.0);
  EXPECT_LE(drawn.samples.max().item<double>(), 1.0);
  EXPECT_EQ(drawn.labels.sizes(), (std::vector<int64_t>{4}));
  dc.batch = 3;
  EXPECT_TRUE(torch::allclose(draw_samples(run, dc, torch::kCPU).samples, drawn.samples, 0, 1e-5));

  // Resume is exact: stopped at step 25 and resumed = straight through.
  const auto split = latent_dir("ldm_split");
  TrainHooks h = latent_quiet();
  h.stop_after = [](int64_t step) { return step == 25; };
  EXPECT_EQ(train(tiny_latent_config(ae_dir), split, false, h).status, TrainStatus::Stopped);
  EXPECT_EQ(train(tiny_latent_config(ae_dir), split, true, latent_quiet()).step, 60);
  auto a = load_safetensors(checkpoint_path(dir)).tensors, b = load_safetensors(checkpoint_path(split)).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;

  // --latent must name a finished autoencoder run.
  EXPECT_NE(test::error_text([&] { train(tiny_latent_config(dir), latent_dir("bad1"), false, latent_quiet()); })
                .find("is not an autoencoder run"),
            std::string::npos);
  auto short_ae = tiny_autoencoder_config();
  const auto unfinished = latent_dir("ae_unfinished");
  TrainHooks stop = latent_quiet();
  stop.stop_after = [](int64_t step) { return step == 2; };
  train(short_ae, unfinished, false, stop);
  EXPECT_NE(test::error_text([&] { train(tiny_latent_config(unfinished), latent_dir("bad2"), false, latent_quiet()); })
                .find("--resume"),
            std::string::npos);
}

TEST(LatentRun, AutoencoderConfigIsChecked) {
  auto c = tiny_autoencoder_config();
  c.class_conditional = true;
  EXPECT_NE(test::error_text([&] { validate(c); }).find("unconditional"), std::string::npos);
  c = tiny_autoencoder_config();
  c.latent = "somewhere";
  EXPECT_NE(test::error_text([&] { validate(c); }).find("latent cannot be set"), std::string::npos);
  c = tiny_autoencoder_config();
  c.kl_weight = -1;
  EXPECT_NE(test::error_text([&] { validate(c); }).find("kl_weight"), std::string::npos);
  c = tiny_autoencoder_config();
  c.autoencoder.block_out_channels = {8, 16, 16, 16};  // f = 8 does not divide 28
  EXPECT_NE(test::error_text([&] { train(c, latent_dir("f8"), false, latent_quiet()); }).find("sample_size"),
            std::string::npos);
  auto r = train_config_from_json(train_config_to_json(tiny_latent_config("ae_run")));
  EXPECT_EQ(r.latent, "ae_run");
  auto a = train_config_from_json(train_config_to_json(tiny_autoencoder_config()));
  EXPECT_EQ(a.model_kind, ModelKind::AutoencoderKL);
  EXPECT_EQ(a.autoencoder.block_out_channels, (std::vector<int64_t>{8, 16, 16}));
  EXPECT_EQ(a.kl_weight, 1e-6);
}
