// The memory layout of image networks (TrainConfig::layout): the config key and its legacy
// form, the start-up choice by timing (choose_layout), and that the two layouts compute the
// same network.
#include <gtest/gtest.h>
#include <filesystem>
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

using namespace diffuse;

namespace {

TrainConfig small_unet() {
  TrainConfig c;
  c.data = "fashion-mnist:test";
  c.schedule.T = 20;
  c.unet.in_channels = 1;
  c.unet.image_size = 8;
  c.unet.num_classes = 3;
  c.unet.base_channels = 8;
  c.unet.channel_mult = {1, 2};
  c.unet.blocks_per_level = 1;
  c.unet.attention_resolutions = {4};
  c.unet.head_channels = 8;
  c.unet.groups = 4;
  c.unet.dropout = 0.0;
  return c;
}

}  // namespace

TEST(Layout, ConfigKeyAndItsLegacyForm) {
  EXPECT_EQ(TrainConfig{}.layout, MemoryLayout::Auto);
  EXPECT_EQ(train_config_from_json(R"({"layout": "nchw"})").layout, MemoryLayout::Nchw);
  EXPECT_EQ(train_config_from_json(R"({"layout": "channels-last"})").layout, MemoryLayout::ChannelsLast);
  // configs written before "layout" said "channels_last": true/false
  EXPECT_EQ(train_config_from_json(R"({"channels_last": true})").layout, MemoryLayout::ChannelsLast);
  EXPECT_EQ(train_config_from_json(R"({"channels_last": false})").layout, MemoryLayout::Nchw);
  TrainConfig c;
  c.layout = MemoryLayout::ChannelsLast;
  const auto text = train_config_to_json(c);
  EXPECT_NE(text.find("\"layout\": \"channels-last\""), std::string::npos) << text;
  EXPECT_EQ(text.find("channels_last"), std::string::npos) << "the legacy key is read, not written";
  EXPECT_EQ(train_config_from_json(text).layout, MemoryLayout::ChannelsLast);
  try {
    train_config_from_json(R"({"layout": "nhwc"})");
    FAIL();
  } catch (const Error& e) {
    const std::string m = std::string(e.what()) + " " + e.hint();
    EXPECT_NE(m.find("unknown layout 'nhwc'"), std::string::npos) << m;
    EXPECT_NE(m.find("auto, nchw, channels-last"), std::string::npos) << m;
  }
}

TEST(Layout, TheFasterTimingWinsAndTiesGoToNchw) {
  EXPECT_EQ(faster_layout(0.2, 0.1), MemoryLayout::ChannelsLast);
  EXPECT_EQ(faster_layout(0.1, 0.2), MemoryLayout::Nchw);
  EXPECT_EQ(faster_layout(0.1, 0.1), MemoryLayout::Nchw);
}

TEST(Layout, AutoTimesBothLayoutsOnTheCpu) {
  TrainConfig c = small_unet();
  const auto choice = choose_layout(c, torch::kCPU, 4, 1);
  ASSERT_TRUE(choice.timed());
  EXPECT_EQ(choice.layout, faster_layout(choice.nchw_s, choice.channels_last_s));
  // a layout the config names is kept, untimed
  c.layout = MemoryLayout::ChannelsLast;
  auto fixed = choose_layout(c, torch::kCPU, 4);
  EXPECT_EQ(fixed.layout, MemoryLayout::ChannelsLast);
  EXPECT_FALSE(fixed.timed());
  // vector runs and VAE runs have no layout to choose
  TrainConfig v;
  v.data = "toy:moons";
  EXPECT_FALSE(choose_layout(v, torch::kCPU, 4).timed());
  EXPECT_EQ(choose_layout(v, torch::kCPU, 4).layout, MemoryLayout::Nchw);
}

// The layout changes strides, not the function: the same initial weights give the same output
// and the same gradients (up to the summation order of the convolutions).
TEST(Layout, BothLayoutsComputeTheSameNetwork) {
  TrainConfig c = small_unet();
  auto x = torch::randn({3, 1, 8, 8});
  auto t = torch::tensor({1, 7, 19}, torch::kLong);
  Conditioning cond;
  cond.labels = torch::tensor({0, 2, 3}, torch::kLong);
  std::vector<torch::Tensor> outs, grads;
  for (auto l : {MemoryLayout::Nchw, MemoryLayout::ChannelsLast}) {
    c.layout = l;
    torch::manual_seed(5);
    Network net = make_network(c, torch::kCPU);
    // make the zero-initialised output layers non-trivial so gradients reach every layer
    {
      torch::NoGradGuard g;
      for (auto& p : net.module->parameters()) p.add_(0.01 * torch::ones_like(p));
    }
    auto y = net.forward(x, t, cond);
    y.square().mean().backward();
    outs.push_back(y.contiguous());
    grads.push_back(net.module->parameters().front().grad().contiguous());
  }
  EXPECT_LT((outs[0] - outs[1]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((grads[0] - grads[1]).abs().max().item<double>(), 1e-5 * (1 + grads[0].abs().max().item<double>()));
}

// A run with layout auto records the layout it chose (config.json and the checkpoint), so that
// --resume continues in it: the two layouts sum convolutions in different orders.
TEST(Layout, ATrainedRunRecordsTheChosenLayout) {
  TrainConfig c = small_unet();
  c.unet.attention_resolutions = {14};  // the data's 28×28 → levels 28, 14
  c.batch = 4;
  c.steps = 2;
  c.warmup = 1;
  c.log_every = 1;
  c.checkpoint_every = 1000;
  c.threads = 1;
  const std::string dir = (std::filesystem::temp_directory_path() / "diffuse_layout_run").string();
  std::filesystem::remove_all(dir);
  TrainHooks quiet;
  quiet.quiet = true;
  train(c, dir, false, quiet);
  const auto saved = load_train_config_file(dir + "/config.json");
  EXPECT_NE(saved.layout, MemoryLayout::Auto);
  EXPECT_EQ(load_run(dir).config.layout, saved.layout);
  std::filesystem::remove_all(dir);
}
