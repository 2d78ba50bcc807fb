// Pictures of small images: the automatic enlargement factor against its definition (the
// smallest factor whose picture's longer side reaches 512 px, found by search), nearest-
// neighbour enlargement against explicit indexing, the sizes of written PNGs and GIFs, and
// the ChainRecorder's step picks against the selection loops `diffuse sample` used before
// it drew through the library.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {
std::string picture_dir() {
  const auto dir = fs::path(::testing::TempDir()) / "diffuse_picture_test";
  fs::create_directories(dir);
  return dir.string();
}
}  // namespace

TEST(Picture, AutoScaleIsTheSmallestFactorReaching512) {
  for (int64_t h : {1, 7, 28, 32, 100, 122, 272, 511, 512, 900})
    for (int64_t w : {1, 16, 30, 92, 242, 302, 600, 2000}) {
      int64_t want = 1;  // search: the first k whose longer side reaches 512, capped at 8
      while (want < 8 && want * std::max(h, w) < 512) ++want;
      EXPECT_EQ(picture_scale(h, w), want) << h << "×" << w;
    }
  // The documented examples: a 4×4 grid of 28×28 (122 px), a 10×10 grid (302 px), the
  // forward picture of 28×28 images (242 × 272).
  EXPECT_EQ(picture_scale(122, 122), 5);
  EXPECT_EQ(picture_scale(302, 302), 2);
  EXPECT_EQ(picture_scale(242, 272), 2);
  EXPECT_EQ(picture_scale(3002, 302), 1);  // a tall grid of 1000 samples stays native
  EXPECT_EQ(picture_scale(20, 20, 1), 1);
  EXPECT_EQ(picture_scale(20, 20, 3), 3);
  for (int64_t bad : {-1, 33}) {
    std::string msg;
    try {
      picture_scale(20, 20, bad);
    } catch (const Error& e) {
      msg = std::string(e.what()) + " | " + e.hint();
    }
    EXPECT_NE(msg.find("picture scale " + std::to_string(bad) + " is out of range"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 (native size)"), std::string::npos) << msg;
  }
}

TEST(Picture, UpscaleNearestRepeatsEachPixel) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  auto x = torch::randint(0, 256, {2, 3, 5, 7}, g, torch::kLong).to(torch::kUInt8);
  for (int64_t k : {1, 2, 3}) {
    auto y = upscale_nearest(x, k);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 5 * k, 7 * k}));
    // y[..., r, c] = x[..., r / k, c / k]
    auto rows = torch::arange(5 * k, torch::kLong).div(k, "floor"), cols = torch::arange(7 * k, torch::kLong).div(k, "floor");
    EXPECT_TRUE(torch::equal(y, x.index_select(2, rows).index_select(3, cols))) << k;
    EXPECT_TRUE(torch::equal(upscale_nearest(x[1], k), y[1]));  // (C, H, W) as well
  }
  EXPECT_THROW(upscale_nearest(x, 0), Error);
}

TEST(Picture, WrittenPngsAndGifsAreEnlarged) {
  const auto dir = picture_dir();
  auto g = at::make_generator<at::CPUGeneratorImpl>(4);
  auto rgb = torch::randint(0, 256, {3, 20, 30}, g, torch::kLong).to(torch::kUInt8);
  // Auto: the longer side 30 would need 18×; capped at 8 → 160 × 240, RGB kept.
  write_picture(dir + "/auto.png", rgb);
  auto back = read_png(dir + "/auto.png");
  EXPECT_EQ(back.sizes(), (std::vector<int64_t>{3, 160, 240}));
  EXPECT_TRUE(torch::equal(back, upscale_nearest(rgb, 8)));
  write_picture(dir + "/native.png", rgb, 1);
  EXPECT_TRUE(torch::equal(read_png(dir + "/native.png"), rgb));
  // A gray 100 × 64 frame: auto 6× (600 px); GIF logical screen width and height are
  // little-endian uint16 at bytes 6 … 9.
  auto gray = torch::randint(0, 256, {1, 64, 100}, g, torch::kLong).to(torch::kUInt8);
  auto screen = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char b[10] = {};
    in.read(reinterpret_cast<char*>(b), 10);
    return std::vector<int64_t>{b[6] | (b[7] << 8), b[8] | (b[9] << 8)};
  };
  write_gif(dir + "/auto.gif", {gray, gray}, 8, 1, 0);
  EXPECT_EQ(screen(dir + "/auto.gif"), (std::vector<int64_t>{600, 384}));
  write_gif(dir + "/native.gif", {gray, gray}, 8, 1, 1);
  EXPECT_EQ(screen(dir + "/native.gif"), (std::vector<int64_t>{100, 64}));
  EXPECT_THROW(write_gif(dir + "/bad.gif", {gray}, 8, 1, -1), Error);
}

TEST(Picture, ChainRecorderPicksTheStepsSampleUsedToPick) {
  StepPick frames = every_nth_step(40), strip = every_nth_step(8, 8),
           vec = at_fractions({0.25, 0.5, 0.75, 0.9, 1.0});
  for (int64_t total = 1; total <= 1000; total += (total < 60 ? 1 : 37)) {
    // The loops of `diffuse sample` before it drew through draw_samples (commit 87aad75).
    std::vector<int64_t> want_frames, want_strip, want_vec, marks, got_frames, got_strip, got_vec;
    size_t strip_size = 1;  // x_T
    for (double f : {0.25, 0.5, 0.75, 0.9, 1.0}) {
      const int64_t k = std::max<int64_t>(0, int64_t(std::lround(f * double(total))) - 1);
      if (marks.empty() || k > marks.back()) marks.push_back(k);
    }
    for (int64_t step = 0; step < total; ++step) {
      const bool last = step + 1 == total;
      if ((step + 1) % std::max<int64_t>(1, total / 40) == 0 || last) want_frames.push_back(step);
      if ((step + 1) % std::max<int64_t>(1, total / 8) == 0 || last)
        if (strip_size < 9 || last) want_strip.push_back(step), ++strip_size;
      if (std::find(marks.begin(), marks.end(), step) != marks.end()) want_vec.push_back(step);
      if (frames(step, total)) got_frames.push_back(step);
      if (strip(step, total)) got_strip.push_back(step);
      if (vec(step, total)) got_vec.push_back(step);
    }
    EXPECT_EQ(got_frames, want_frames) << total;
    EXPECT_EQ(got_strip, want_strip) << total;
    EXPECT_EQ(got_vec, want_vec) << total;
    EXPECT_LE(got_strip.size(), 9u);
  }
  // The recorder keeps x_T and the picked states of its first rows.
  ChainRecorder rec(2, every_nth_step(2));
  rec.start(torch::zeros({3, 4}));
  for (int64_t s = 0; s < 4; ++s) rec.step({s, 4, double(10 - s), 0.0, torch::full({3, 4}, double(s)), {}});
  ASSERT_EQ(rec.snapshots().size(), 3u);  // x_T, after steps 1 and 3
  EXPECT_EQ(rec.snapshots()[1].step, 1);
  EXPECT_EQ(rec.snapshots()[2].t, 7.0);
  EXPECT_EQ(rec.states()[2].sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(std::isnan(rec.snapshots()[0].t));
}
