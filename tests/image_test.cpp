// Images: the IDX reader against known values, image data sources, the U-Net's
// shapes and conditioning, classifier-free guidance, and a short training run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/nn/unet.hpp"
#include "diffuse/train.hpp"
#include "test_util.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

UNetOptions tiny_unet(int64_t classes = 0) {
  UNetOptions o;
  o.base_channels = 16;
  o.channel_mult = {1, 2};
  o.blocks_per_level = 1;
  o.attention_resolutions = {14};
  o.head_channels = 16;
  o.groups = 8;
  o.dropout = 0.0;
  o.num_classes = classes;
  return o;
}
}  // namespace

TEST(Idx, FashionMnistFirstTrainLabels) {
  auto labels = read_idx(kFmnist + "/train-labels-idx1-ubyte.gz");
  ASSERT_EQ(labels.sizes(), (std::vector<int64_t>{60000}));
  const std::vector<int64_t> want = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(labels[i].item<int64_t>(), want[i]) << i;
  auto d = load_fashion_mnist(kFmnist, "test");
  EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(d.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(d.class_names.at(7), "sneaker");
}

TEST(Idx, MissingDatasetNamesThePackage) {
  try {
    load_fashion_mnist("/nonexistent", "train");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE((std::string(e.what()) + e.hint()).find("dataset-fashion-mnist"), std::string::npos);
  }
}

TEST(ImageData, FashionMnistSourceServesScaledBatches) {
  auto src = make_data_source("fashion-mnist:test");
  EXPECT_EQ(src->shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(src->num_classes(), 10);
  auto g = at::make_generator<at::CPUGeneratorImpl>(0);
  auto b = src->sample(32, g);
  EXPECT_EQ(b.x.sizes(), (std::vector<int64_t>{32, 1, 28, 28}));
  EXPECT_GE(b.x.min().item<float>(), -1.0f);
  EXPECT_LE(b.x.max().item<float>(), 1.0f);
  EXPECT_TRUE((b.labels >= 0).all().item<bool>() && (b.labels < 10).all().item<bool>());
  EXPECT_THROW(make_data_source("fashion-mnist:valid"), Error);
}

TEST(UNet, ShapesAndConditioning) {
  torch::manual_seed(0);
  UNet net(tiny_unet(10));
  auto x = torch::randn({3, 1, 28, 28});
  auto t = torch::tensor({0, 500, 999}, torch::kLong);
  auto y = net->forward(x, t, torch::tensor({1, 2, 3}, torch::kLong));
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_EQ(y.abs().max().item<float>(), 0.0f);  // zero-initialised output conv
  {
    torch::NoGradGuard g;
    for (auto& p : net->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  auto a = net->forward(x, t, torch::tensor({1, 2, 3}, torch::kLong));
  auto b = net->forward(x, t, torch::tensor({4, 5, 6}, torch::kLong));
  auto null = net->forward(x, t);  // undefined labels → the null class
  auto null2 = net->forward(x, t, torch::full({3}, 10, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<float>(), 1e-4f);
  EXPECT_TRUE(torch::allclose(null, null2));
  // channels-last input gives the same output
  auto cl = net->forward(x.contiguous(at::MemoryFormat::ChannelsLast), t, torch::tensor({1, 2, 3}, torch::kLong));
  EXPECT_TRUE(torch::allclose(a, cl, 1e-4, 1e-5));
}

TEST(Guidance, CombinesConditionalAndUnconditional) {
  torch::manual_seed(1);
  UNet net(tiny_unet(10));
  {
    torch::NoGradGuard g;
    for (auto& p : net->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  ScheduleConfig sc;
  ModelDenoiser d([&](const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c) {
    return net->forward(x, t, c.labels);
  }, make_schedule(sc), PredictionType::Epsilon);
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({100, 700}, torch::kLong);
  Conditioning c{torch::tensor({3, 8}, torch::kLong)};
  torch::NoGradGuard ng;
  auto cond = d.predict(x, t, c).eps, uncond = d.predict(x, t, {torch::full({2}, 10, torch::kLong)}).eps;
  auto w2 = GuidedDenoiser(d, 2.0, 10).predict(x, t, c);
  EXPECT_TRUE(torch::allclose(w2.eps, uncond + 2.0 * (cond - uncond), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(GuidedDenoiser(d, 1.0, 10).predict(x, t, c).eps, cond));
  EXPECT_TRUE(torch::allclose(GuidedDenoiser(d, 0.0, 10).predict(x, t, c).eps, uncond));
}

TEST(ImageTrain, ShortConditionalRunLossFalls) {
  TrainConfig c;
  c.data = "fashion-mnist:test";
  c.class_conditional = true;
  c.unet = tiny_unet();
  c.schedule.T = 1000;
  c.batch = 16;
  c.steps = 80;
  c.warmup = 10;
  c.lr = 2e-3;
  c.log_every = 20;
  c.checkpoint_every = 1000;
  c.sample_every = 1000;  // only the grid at the end
  c.sample_n = 3;
  const auto dir = (fs::path(::testing::TempDir()) / "diffuse_image_run").string();
  fs::remove_all(dir);
  TrainHooks h;
  h.quiet = true;
  auto r = train(c, dir, false, h);
  EXPECT_LT(r.last_loss, 0.3);  // from 1.0 for the zero-initialised output
  auto run = load_run(dir);
  EXPECT_EQ(run.config.unet.num_classes, 10);
  EXPECT_EQ(run.class_names.size(), 10u);
  // The sample grid of the last step: 3 gray 28×28 images in one row, 2-pixel padding
  // (32 × 92), enlarged 6× (the smallest factor making the longer side ≥ 512 px), each
  // pixel a 6×6 block.
  auto grid = read_png(dir + "/samples/step_0000080.png");
  EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{1, 192, 552}));
  auto native = grid.slice(1, 0, 192, 6).slice(2, 0, 552, 6);
  EXPECT_TRUE(torch::equal(grid, native.repeat_interleave(6, 1).repeat_interleave(6, 2)));
}

TEST(ImageData, JpegDecodesLikePillow) {
  // tests/data/gradient.jpg and the values below come from tools/reference/make_test_jpeg.py.
  auto img = read_image(std::string(DIFFUSE_TEST_DATA) + "/gradient.jpg");
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 9, 12}));
  struct Px { int64_t x, y; int r, g, b; };
  for (const Px& p : {Px{0, 0, 1, 0, 127}, Px{11, 0, 218, 0, 127}, Px{0, 8, 0, 200, 127},
                      Px{6, 4, 117, 101, 128}, Px{11, 8, 218, 200, 128}}) {
    EXPECT_NEAR(img[0][p.y][p.x].item<int>(), p.r, 2) << p.x << "," << p.y;
    EXPECT_NEAR(img[1][p.y][p.x].item<int>(), p.g, 2) << p.x << "," << p.y;
    EXPECT_NEAR(img[2][p.y][p.x].item<int>(), p.b, 2) << p.x << "," << p.y;
  }
}

TEST(ImageData, FolderWithClassSubfoldersAndBadFiles) {
  const auto dir = fs::path(::testing::TempDir()) / "diffuse_folder";
  fs::remove_all(dir);
  fs::create_directories(dir / "cats");
  fs::create_directories(dir / "dogs");
  // Different sizes and modes: gray 20×30, RGB 40×40, and the JPEG (RGB 12×9).
  write_png((dir / "cats" / "a.png").string(), torch::full({1, 20, 30}, 200, torch::kUInt8));
  write_png((dir / "dogs" / "b.png").string(), torch::full({3, 40, 40}, 50, torch::kUInt8));
  fs::copy_file(std::string(DIFFUSE_TEST_DATA) + "/gradient.jpg", dir / "dogs" / "c.jpg");
  auto d = load_image_folder(dir.string(), 8, 3);
  EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(d.labels[0].item<int64_t>(), 0);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 1);
  EXPECT_NEAR(d.images[0].to(torch::kFloat).mean().item<double>(), 200, 1);  // gray → RGB
  auto src = make_data_source("folder:" + dir.string(), DataOptions{"", 8, 0});
  EXPECT_EQ(src->shape()[1], 8);
  // An unreadable image is reported by name, not skipped.
  { std::ofstream((dir / "cats" / "broken.png").string()) << "not a png"; }
  try {
    load_image_folder(dir.string(), 8);
    FAIL() << "a broken PNG was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
}

// The folder `diffuse data --out DIR` writes (images at the top, labels.csv) is data again: labels
// from the rows, kept as numbered (1 and 3 → classes 0 … 3, the unnamed ones called by their
// number), class names CSV-unquoted; a missing or extra row, labels.csv beside class subfolders,
// or a labels.csv with another header are errors naming the file (and line).
TEST(ImageData, FolderWithLabelsCsv) {
  const std::string dir = test::fresh_dir("diffuse_folder_csv");
  fs::create_directories(dir);
  for (int i = 0; i < 3; ++i)
    write_png(dir + "/00000" + std::to_string(i) + ".png", torch::full({1, 8, 8}, 10 * i, torch::kUInt8));
  auto labels_csv = [&](const std::string& text) { std::ofstream(dir + "/labels.csv") << text; };
  labels_csv("file,index,label,class\n000002.png,,1,shirt\n000000.png,7,3,\"bag, \"\"big\"\"\"\n"
             "000001.png,9,1,shirt\n");
  auto d = load_image_folder(dir, 8, 1);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "shirt", "2", "bag, \"big\""}));
  ASSERT_TRUE(d.labels.defined());
  const int64_t* l = d.labels.data_ptr<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(l, l + d.labels.numel()), (std::vector<int64_t>{3, 1, 1}));
  EXPECT_EQ(make_data_source("folder:" + dir, DataOptions{"", 8, 0})->num_classes(), 4);

  labels_csv("file,index,label,class\n000000.png,,0,a\n000002.png,,0,a\n");
  auto e = test::error_text([&] { load_image_folder(dir, 8); });
  EXPECT_NE(e.find("000001.png"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/labels.csv"), std::string::npos) << e;
  // A class name over two lines (quoted) counts both: the extra row is on line 8.
  labels_csv("file,index,label,class\n000000.png,,0,\"two\nlines\"\n000001.png,,0,\"two\nlines\"\n"
             "000002.png,,0,\"two\nlines\"\n000009.png,,2,x\n");
  e = test::error_text([&] { load_image_folder(dir, 8); });
  EXPECT_NE(e.find("labels.csv:8: '000009.png' is not an image in the folder"), std::string::npos) << e;
  labels_csv("file,index,label,class\n000000.png,,-1,a\n");
  e = test::error_text([&] { load_image_folder(dir, 8); });
  EXPECT_NE(e.find("labels.csv:2: label '-1' is not an integer"), std::string::npos) << e;
  labels_csv("file,label\n000000.png,0\n000001.png,0\n000002.png,0\n");
  e = test::error_text([&] { load_image_folder(dir, 8); });
  EXPECT_NE(e.find("not PNG or JPEG images: labels.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("file,index,label,class"), std::string::npos) << e;  // the hint

  const std::string sub = test::fresh_dir("diffuse_folder_csv_sub");
  fs::create_directories(sub + "/cats");
  write_png(sub + "/cats/000000.png", torch::full({1, 8, 8}, 10, torch::kUInt8));
  std::ofstream(sub + "/labels.csv") << "file,index,label,class\ncats/000000.png,,0,cat\n";
  e = test::error_text([&] { load_image_folder(sub, 8); });
  EXPECT_NE(e.find("from either subfolders or labels.csv, not both"), std::string::npos) << e;
}
