// The emoji data set (src/data/emoji.cpp) against values computed without FreeType by
// tools/reference/emoji_pixels.py (hand-parsed cmap/GSUB/CBLC/CBDT, PNG decoded with zlib,
// compositing and block means in numpy float64). The counts hold for Debian 12's
// fonts-noto-color-emoji 2.042 and unicode-data 15.0.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"

namespace diffuse {
namespace {

EmojiSet emoji_load(const std::string& split, int64_t size, const std::string& background = "white") {
  EmojiOptions o;
  o.split = split;
  o.image_size = size;
  o.background = background;
  return load_emoji(o);
}

// The whole set at 32×32 on white, loaded once (~1 s).
const EmojiSet& emoji_all32() {
  static const EmojiSet s = emoji_load("all", 32);
  return s;
}

int64_t emoji_find(const EmojiSet& s, const std::string& seq) {
  auto it = std::find(s.sequences.begin(), s.sequences.end(), seq);
  return it == s.sequences.end() ? -1 : int64_t(it - s.sequences.begin());
}

std::string emoji_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "(no error)";
}

struct EmojiPixel {
  int64_t y, x;
  int rgb[3];
};

TEST(EmojiData, RendererMatchesCbdtPngReferenceOnWhite) {
  // 32×32 on white: per-channel means of the uint8 image and pixels away from the
  // background, and the α-weighted chroma, from emoji_pixels.py.
  struct Ref {
    const char* seq;
    double mean[3];
    EmojiPixel px[4];
    double chroma;
  };
  const Ref refs[] = {
      {"1F600", {234.319, 204.545, 121.952},
       {{10, 9, {220, 188, 42}}, {14, 9, {201, 173, 38}}, {20, 18, {156, 144, 128}}, {24, 21, {221, 180, 40}}}, 175.841},
      {"1F436", {227.511, 209.148, 197.648},
       {{5, 6, {208, 191, 187}}, {11, 5, {134, 91, 81}}, {16, 6, {137, 92, 81}}, {27, 16, {233, 77, 141}}}, 61.036},
      {"1F34E", {238.753, 145.838, 118.098},
       {{0, 23, {222, 234, 222}}, {4, 16, {202, 221, 202}}, {8, 12, {216, 39, 28}}, {30, 20, {228, 68, 89}}}, 205.039},
  };
  const auto& s = emoji_all32();
  ASSERT_EQ(s.images.sizes(), (std::vector<int64_t>{int64_t(s.sequences.size()), 3, 32, 32}));
  for (const auto& r : refs) {
    SCOPED_TRACE(r.seq);
    const int64_t i = emoji_find(s, r.seq);
    ASSERT_GE(i, 0);
    auto img = s.images[i].to(torch::kInt32);
    auto mean = img.to(torch::kFloat64).mean({1, 2});
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(mean[c].item<double>(), r.mean[c], 0.1) << "channel " << c;
    for (const auto& p : r.px)
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(img[c][p.y][p.x].item<int>(), p.rgb[c], 1) << "pixel (" << p.y << ", " << p.x << ") channel " << c;
    EXPECT_NEAR(s.chroma[size_t(i)], r.chroma, 0.5);
    // The corners are background: exactly white.
    EXPECT_EQ(img.select(1, 0).select(1, 0).sum().item<int>(), 3 * 255);
  }
}

TEST(EmojiData, RendererMatchesReferenceOnBlackAt8AndOnColourAt128) {
  // 1F34E (red apple) at 8×8 on black: the whole image (16×16 block means), channel-major.
  const int apple8[3 * 64] = {
      0,   0,   3,   26,  12,  43,  35,  0,   0,   3,   53,  74,  74,  133, 33,  0,   11,  201, 245, 179, 191, 247,
      231, 33,  102, 255, 255, 255, 255, 255, 254, 111, 131, 255, 255, 255, 255, 255, 253, 113, 83,  255, 255, 255,
      255, 255, 236, 61,  5,   209, 255, 255, 253, 236, 161, 1,   0,   24,  153, 170, 151, 121, 10,  0,   0,   0,
      2,   18,  32,  95,  57,  0,   0,   1,   17,  39,  131, 109, 9,   0,   4,   103, 104, 51,  55,  66,  55,  2,
      32,  170, 84,  81,  81,  81,  80,  8,   41,  99,  81,  81,  81,  81,  77,  7,   26,  81,  81,  81,  81,  81,
      44,  4,   2,   66,  81,  81,  78,  43,  10,  0,   0,   8,   41,  32,  13,  7,   1,   0,   0,   0,   2,   16,
      13,  32,  13,  0,   0,   0,   5,   26,  35,  29,  6,   0,   1,   65,  57,  24,  19,  27,  27,  6,   9,   129,
      27,  23,  23,  23,  23,  20,  12,  44,  23,  23,  23,  23,  24,  20,  7,   23,  23,  23,  23,  23,  32,  11,
      0,   19,  23,  23,  24,  32,  29,  0,   0,   2,   17,  23,  26,  22,  2,   0};
  const auto s8 = emoji_load("all", 8, "black");
  const int64_t i = emoji_find(s8, "1F34E");
  ASSERT_GE(i, 0);
  auto got = s8.images[i].flatten().to(torch::kInt32);
  int worst = 0;
  for (int k = 0; k < 3 * 64; ++k) worst = std::max(worst, std::abs(got[k].item<int>() - apple8[k]));
  EXPECT_LE(worst, 1) << "largest difference from the numpy block means";

  // 1F602 (tears of joy, a test-split glyph) at 128×128 (no averaging) on #336699: edge pixels
  // with 64 ≤ α ≤ 192, where compositing the premultiplied colour matters; a corner is the background.
  const EmojiPixel edges[] = {{7, 52, {99, 115, 120}},
                            {24, 107, {124, 125, 109}},
                            {61, 121, {190, 133, 38}},
                            {94, 14, {190, 133, 38}},
                            {118, 73, {99, 115, 120}}};
  const auto s128 = emoji_load("test", 128, "#336699");
  const int64_t j = emoji_find(s128, "1F602");
  ASSERT_GE(j, 0);
  auto img = s128.images[j].to(torch::kInt32);
  for (const auto& p : edges)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(img[c][p.y][p.x].item<int>(), p.rgb[c], 1) << "pixel (" << p.y << ", " << p.x << ") channel " << c;
  EXPECT_EQ(img[0][0][0].item<int>(), 0x33);
  EXPECT_EQ(img[1][0][0].item<int>(), 0x66);
  EXPECT_EQ(img[2][0][0].item<int>(), 0x99);
}

TEST(EmojiData, LabelsOfKnownSequencesAndClassCounts) {
  const auto& s = emoji_all32();
  const auto names = emoji_class_names();
  ASSERT_EQ(s.class_names, names);
  ASSERT_EQ(names.size(), 9u);
  const std::map<std::string, std::string> expect = {
      {"1F600", "smileys-emotion"}, {"1F436", "animals-nature"}, {"1F34E", "food-drink"},
      {"2764", "smileys-emotion"},  // U+2764 U+FE0F red heart: the selector is dropped
      {"1F44B", "people-body"},     {"1F44B 1F3FB", "people-body"},  // skin tone, through GSUB
      {"1F1EF 1F1F5", "flags"},                                     // regional-indicator pair
      {"26AB", "symbols"}};
  for (const auto& [seq, group] : expect) {
    const int64_t i = emoji_find(s, seq);
    ASSERT_GE(i, 0) << seq;
    EXPECT_EQ(names[size_t(s.labels[i].item<int64_t>())], group) << seq;
  }
  // Glyph ids (the reference's cmap and GSUB parse): the skin-tone variant is its own glyph.
  EXPECT_EQ(s.glyphs[size_t(emoji_find(s, "1F600"))], 883);
  EXPECT_EQ(s.glyphs[size_t(emoji_find(s, "1F44B"))], 567);
  EXPECT_EQ(s.glyphs[size_t(emoji_find(s, "1F44B 1F3FB"))], 2039);
  EXPECT_EQ(s.glyphs[size_t(emoji_find(s, "1F1EF 1F1F5"))], 1639);
  // Components (the skin-tone swatch itself) are not in the nine groups.
  EXPECT_EQ(emoji_find(s, "1F3FB"), -1);
  // U+1F1FA U+1F1F8 (US) draws the glyph of U+1F1FA U+1F1F2 (US Outlying Islands), listed first.
  EXPECT_EQ(emoji_find(s, "1F1FA 1F1F8"), -1);
  EXPECT_GE(emoji_find(s, "1F1FA 1F1F2"), 0);
  // Each glyph once; per-class counts of the reference (train + test).
  EXPECT_EQ(std::set<int64_t>(s.glyphs.begin(), s.glyphs.end()).size(), s.glyphs.size());
  const std::vector<int64_t> counts = {166, 2148, 152, 133, 218, 85, 261, 223, 261};
  auto got = torch::bincount(s.labels, {}, 9);
  for (int c = 0; c < 9; ++c) EXPECT_EQ(got[c].item<int64_t>(), counts[size_t(c)]) << names[size_t(c)];
}

TEST(EmojiData, SplitIsFixedDisjointAndKeepsSkinTonesTogether) {
  const auto train = emoji_load("train", 4);
  const auto test = emoji_load("test", 4);
  // Sizes and per-class test counts of the reference's FNV-1a split.
  EXPECT_EQ(train.sequences.size(), 3201u);
  EXPECT_EQ(test.sequences.size(), 446u);
  EXPECT_EQ(train.sequences.size() + test.sequences.size(), emoji_all32().sequences.size());
  const std::vector<int64_t> test_counts = {20, 288, 12, 15, 20, 8, 34, 23, 26};
  auto got = torch::bincount(test.labels, {}, 9);
  for (int c = 0; c < 9; ++c) EXPECT_EQ(got[c].item<int64_t>(), test_counts[size_t(c)]) << c;
  // Disjoint, and the first test and train sequences of the reference.
  std::set<std::string> tr(train.sequences.begin(), train.sequences.end());
  for (const auto& q : test.sequences) EXPECT_EQ(tr.count(q), 0u) << q;
  EXPECT_EQ(std::vector<std::string>(test.sequences.begin(), test.sequences.begin() + 6),
            (std::vector<std::string>{"1F923", "1F602", "1F60D", "1F61A", "1FAE2", "1FAE8"}));
  EXPECT_EQ(std::vector<std::string>(train.sequences.begin(), train.sequences.begin() + 6),
            (std::vector<std::string>{"1F600", "1F603", "1F604", "1F601", "1F606", "1F605"}));
  // Every skin tone of an emoji lies in the split of its toneless form.
  const std::set<std::string> te(test.sequences.begin(), test.sequences.end());
  for (const char* base : {"1F44B", "1F44D", "1F9D1", "1F64B"}) {
    const bool in_test = te.count(base) > 0;
    for (const char* tone : {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}) {
      const std::string seq = std::string(base) + " " + tone;
      EXPECT_EQ(te.count(seq) > 0, in_test) << seq;
      EXPECT_EQ(tr.count(seq) > 0, !in_test) << seq;
    }
  }
  // Loading again gives the same images (no randomness anywhere).
  EXPECT_TRUE(torch::equal(emoji_load("test", 4).images, test.images));
}

TEST(EmojiData, ColorFilterDropsExactlyTheNearGrayAndSkinToneFilterTheModifiers) {
  const auto& all = emoji_all32();
  EmojiOptions o;
  o.split = "all";
  o.color_only = true;
  const auto color = load_emoji(o);
  // 122 glyphs have an α-weighted mean chroma below 10 (of 255; emoji_pixels.py --all-chroma
  // counts the same from the PNGs); none of the kept ones do.
  int64_t gray = 0;
  for (double c : all.chroma) gray += c < kEmojiGrayChroma;
  EXPECT_EQ(kEmojiGrayChroma, 10.0);
  EXPECT_EQ(gray, 122);
  EXPECT_EQ(int64_t(color.sequences.size()), int64_t(all.sequences.size()) - gray);
  for (double c : color.chroma) EXPECT_GE(c, kEmojiGrayChroma);
  // Black circle and black heart are gray (reference chroma 0), the apple is kept.
  EXPECT_LT(all.chroma[size_t(emoji_find(all, "26AB"))], 0.5);
  EXPECT_LT(all.chroma[size_t(emoji_find(all, "1F5A4"))], 0.5);
  EXPECT_EQ(emoji_find(color, "26AB"), -1);
  EXPECT_EQ(emoji_find(color, "1F5A4"), -1);
  EXPECT_GE(emoji_find(color, "1F34E"), 0);
  // The kept images are the same pixels as in the unfiltered set.
  const int64_t a = emoji_find(all, "1F34E"), b = emoji_find(color, "1F34E");
  EXPECT_TRUE(torch::equal(all.images[a], color.images[b]));

  o.color_only = false;
  o.skin_tones = false;
  const auto untoned = load_emoji(o);
  EXPECT_EQ(untoned.sequences.size(), all.sequences.size() - 1785);  // 1785 toned sequences
  for (const auto& q : untoned.sequences)
    for (const char* tone : {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
      EXPECT_EQ(q.find(tone), std::string::npos) << q;
}

TEST(EmojiData, MissingFilesAndBadOptionsAreErrorsThatSayWhatToDo) {
  EmojiOptions o;
  o.font = "/nonexistent/NotoColorEmoji.ttf";
  auto msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("/nonexistent/NotoColorEmoji.ttf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fonts-noto-color-emoji"), std::string::npos) << msg;
  o = {};
  o.emoji_test = "/nonexistent/emoji-test.txt";
  msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("unicode-data"), std::string::npos) << msg;
  // A folder as --data-dir without the files: the same errors through the data source.
  const auto empty = std::filesystem::path(::testing::TempDir()) / "diffuse_emoji_empty";
  std::filesystem::create_directories(empty);
  DataOptions d;
  d.data_dir = empty.string();
  msg = emoji_error([&] { make_data_source("emoji", d); });
  EXPECT_NE(msg.find("fonts-noto-color-emoji"), std::string::npos) << msg;
  // A file that is not a font, and a font without colour bitmaps (fonts-dejavu-core, in make setup).
  o = {};
  o.font = std::string(DIFFUSE_TEST_DATA) + "/../emoji_test.cpp";
  msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fonts-noto-color-emoji"), std::string::npos) << msg;
  o.font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("no colour bitmaps"), std::string::npos) << msg;

  o = {};
  o.background = "blue";
  msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("white, black or #rrggbb"), std::string::npos) << msg;
  o = {};
  o.image_size = 129;
  msg = emoji_error([&] { load_emoji(o); });
  EXPECT_NE(msg.find("1 … 128"), std::string::npos) << msg;
  msg = emoji_error([&] { parse_emoji_spec("emoji:tset"); });
  EXPECT_NE(msg.find("unknown part 'tset'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("emoji[:train|:test|:all][:color][:no-skin-tones]"), std::string::npos) << msg;
  msg = emoji_error([&] { parse_emoji_spec("emoji:test:train"); });
  EXPECT_NE(msg.find("two splits"), std::string::npos) << msg;
  const auto p = parse_emoji_spec("emoji:color:test:no-skin-tones");
  EXPECT_EQ(p.split, "test");
  EXPECT_TRUE(p.color_only);
  EXPECT_FALSE(p.skin_tones);
  EXPECT_EQ(parse_emoji_spec("emoji").split, "train");
}

TEST(EmojiData, DataSourceIsAnRgbLabeledImageSet) {
  EXPECT_TRUE(is_image_spec("emoji"));
  EXPECT_TRUE(is_image_spec("emoji:test:color"));
  EXPECT_FALSE(is_image_spec("emojis"));
  const auto specs = data_spec_names();
  EXPECT_NE(std::find(specs.begin(), specs.end(), "emoji:test"), specs.end());
  // Default size (DataOptions::image_size 0) is 32; the test split has 446 images.
  auto src = make_data_source("emoji:test");
  EXPECT_EQ(src->shape(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(src->num_classes(), 9);
  EXPECT_EQ(src->class_names(), emoji_class_names());
  EXPECT_EQ(src->size(), 446);
  auto first = src->items(torch::tensor({0}, torch::kLong));
  EXPECT_EQ(first.labels[0].item<int64_t>(), 0);  // 1F923: smileys-emotion
  // x = u/127.5 − 1: the white corner is +1; on black it is −1, at the asked size.
  EXPECT_FLOAT_EQ(first.x[0][1][0][0].item<float>(), 1.0f);
  DataOptions d;
  d.image_size = 16;
  d.background = "black";
  auto dark = make_data_source("emoji:test", d);
  EXPECT_EQ(dark->shape(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_FLOAT_EQ(dark->items(torch::tensor({0}, torch::kLong)).x[0][1][0][0].item<float>(), -1.0f);
}

}  // namespace
}  // namespace diffuse
