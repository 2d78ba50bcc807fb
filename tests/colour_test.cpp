// Colour: keep_luma (colorizations keep their gray input inside the pixel range) against a
// brute-force search for the largest in-range chroma scale, and an RGB training run on the
// emoji data whose loss falls from the untrained network's ε-MSE of 1.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/train.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {
// Luma y = 0.299 R + 0.587 G + 0.114 B, written out here rather than taken from the library.
torch::Tensor luma(const torch::Tensor& x) {
  return 0.299 * x.select(1, 0).unsqueeze(1) + 0.587 * x.select(1, 1).unsqueeze(1) + 0.114 * x.select(1, 2).unsqueeze(1);
}
}  // namespace

TEST(KeepLuma, LumaIsTheGrayInputAndColoursStayInRange) {
  torch::manual_seed(3);
  auto x = torch::randn({4, 3, 8, 8}, torch::kFloat64) * 1.5;  // many channels out of [−1, 1]
  auto y = torch::rand({4, 1, 8, 8}, torch::kFloat64) * 2 - 1;
  y.index_put_({0, 0, 0, 0}, 1.0);  // white and black: only gray fits
  y.index_put_({0, 0, 0, 1}, -1.0);
  auto out = keep_luma(x, y);
  EXPECT_LT((luma(out) - y).abs().max().item<double>(), 1e-12);
  EXPECT_LE(out.abs().max().item<double>(), 1.0);
  // image 0: the white pixel (0, 0) is white, the black pixel (0, 1) black, whatever x said
  EXPECT_LT(out.index({0, torch::indexing::Slice(), 0, 0}).sub(1).abs().max().item<double>(), 1e-12);
  EXPECT_LT(out.index({0, torch::indexing::Slice(), 0, 1}).add(1).abs().max().item<double>(), 1e-12);
}

TEST(KeepLuma, KeepsTheHueAndScalesTheChromaByTheLargestFeasibleFactor) {
  // Reference: per pixel, the chroma c = x − luma(x)·1 and the largest s in a grid of 20 001
  // values of [0, 1] with y + s·c inside [−1, 1]³ (a search, not the closed form).
  torch::manual_seed(4);
  auto x = torch::randn({1, 3, 6, 6}, torch::kFloat64) * 1.2;
  auto y = torch::rand({1, 1, 6, 6}, torch::kFloat64) * 1.8 - 0.9;
  auto out = keep_luma(x, y);
  auto c = x - luma(x);
  auto grid = torch::linspace(0, 1, 20001, torch::kFloat64).view({-1, 1, 1, 1});
  auto cand = y + grid * c;  // (20001, 3, 6, 6)
  auto feasible = cand.abs().le(1.0 + 1e-12).all(1);  // (20001, 6, 6)
  auto s_ref = (grid.view({-1, 1, 1}) * feasible.to(torch::kFloat64)).amax(0);  // feasible set is an interval from 0
  auto expected = y + s_ref.view({1, 1, 6, 6}) * c;
  EXPECT_LT((out - expected).abs().max().item<double>(), 2e-4 * c.abs().max().item<double>());
  // Already consistent and in range: unchanged.
  auto inside = torch::rand({2, 3, 5, 5}, torch::kFloat64) * 1.6 - 0.8;
  EXPECT_LT((keep_luma(inside, luma(inside)) - inside).abs().max().item<double>(), 1e-12);
}

TEST(KeepLuma, RejectsImagesThatAreNotRgbWithTheirGray) {
  EXPECT_THROW(keep_luma(torch::zeros({1, 1, 4, 4}), torch::zeros({1, 1, 4, 4})), diffuse::Error);
  EXPECT_THROW(keep_luma(torch::zeros({1, 3, 4, 4}), torch::zeros({1, 1, 2, 2})), diffuse::Error);
}

TEST(TrainEmoji, RgbRunLossFalls) {
  // A very small class-conditional U-Net on the emoji test split (446 RGB 16×16 images),
  // 120 steps. Untrained, the output layer is zero, so the ε-MSE is E‖ε‖²/D = 1; the first
  // logged interval must be near it and the last far below (measured: 1.00 → 0.17).
  TrainConfig c;
  c.data = "emoji:test";
  c.image_size = 16;
  c.class_conditional = true;
  c.schedule.T = 100;
  c.unet.base_channels = 16;
  c.unet.channel_mult = {1, 2};
  c.unet.blocks_per_level = 1;
  c.unet.attention_resolutions = {};
  c.unet.head_channels = 16;
  c.unet.groups = 4;
  c.unet.dropout = 0;
  c.batch = 32;
  c.steps = 120;
  c.lr = 3e-3;
  c.warmup = 10;
  c.log_every = 10;
  c.checkpoint_every = 1000;
  c.threads = 2;
  const auto dir = (fs::path(::testing::TempDir()) / "diffuse_colour_emoji_run").string();
  fs::remove_all(dir);
  TrainHooks quiet;
  quiet.quiet = true;
  auto r = train(c, dir, false, quiet);
  ASSERT_EQ(r.status, TrainStatus::Finished);
  std::ifstream log(dir + "/log.csv");
  std::string line;
  std::getline(log, line);  // header
  std::vector<double> losses;
  while (std::getline(log, line)) {
    std::stringstream ss(line);
    std::string step, loss;
    std::getline(ss, step, ',');
    std::getline(ss, loss, ',');
    losses.push_back(std::stod(loss));
  }
  ASSERT_EQ(losses.size(), 12u);
  EXPECT_NEAR(losses.front(), 1.0, 0.1);
  EXPECT_LT(losses.back(), 0.35);
  EXPECT_LT(r.last_loss, 0.35 * losses.front());
  EXPECT_EQ(load_run(dir).config.unet.in_channels, 3);
}
