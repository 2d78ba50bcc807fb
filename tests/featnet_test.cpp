// The feature network of the Fréchet distance: shapes, input conventions, weights
// round trip, the shipped weights' accuracy on the Fashion-MNIST test split, and their features
// and Fréchet distance against an independent Python pipeline.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/metrics.hpp"

using namespace diffuse;

TEST(FeatNet, ShapesAndInputConventions) {
  torch::manual_seed(0);
  FeatNet net(16);
  auto u8 = torch::randint(0, 256, {5, 1, 28, 28}, torch::kLong).to(torch::kUInt8);
  auto f = net.features(u8, 2);  // three batches
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{5, 16}));
  EXPECT_EQ(f.scalar_type(), torch::kFloat64);
  EXPECT_EQ(net.logits(u8).sizes(), (std::vector<int64_t>{5, 10}));
  // uint8 [0, 255] and float [−1, 1] are the same images
  auto g = net.features(u8.to(torch::kFloat32).div(127.5).sub(1.0));
  EXPECT_TRUE(torch::allclose(f, g, 1e-5, 1e-6));
  try {
    net.features(torch::zeros({2, 3, 28, 28}));
    FAIL() << "RGB input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("28×28 grayscale"), std::string::npos) << e.what();
  }
}

TEST(FeatNet, SaveLoadRoundTrip) {
  torch::manual_seed(1);
  FeatNet net(8);
  const auto path = (std::filesystem::temp_directory_path() / "diffuse_featnet_test.safetensors").string();
  net.save(path);
  auto back = FeatNet::load(path);
  std::filesystem::remove(path);
  auto x = torch::rand({3, 1, 28, 28}) * 2 - 1;
  EXPECT_EQ(back.feature_dim(), 8);
  EXPECT_TRUE(torch::allclose(net.features(x), back.features(x)));
}

TEST(FeatNet, ShippedWeightsClassifyTheTestSplit) {
  const std::string path = default_featnet_path();
  ASSERT_FALSE(path.empty()) << "assets/featnet_fmnist.safetensors is missing";
  auto net = FeatNet::load(path);
  auto test = load_fashion_mnist("", "test");
  // The issue asks ≥ 92% on the whole split (checked when the weights are made, see
  // docs/evaluation.md); 2000 images keep this test fast.
  const double acc = featnet_accuracy(net, test.images.slice(0, 0, 2000), test.labels.slice(0, 0, 2000));
  EXPECT_GE(acc, 0.91);
}

TEST(FeatNet, FrechetDistanceMatchesThePythonPipeline) {
  // Reference: tools/reference/fd_pipeline.py, which parses the shipped safetensors itself,
  // runs a PyTorch copy of the network and computes the distance with scipy's sqrtm.
  auto net = load_default_featnet();
  auto test = load_fashion_mnist("", "test").images.slice(0, 0, 2500);
  auto f = net.features(test);
  const double want[6] = {0.35876724, 1.42569709, 0.0, 0.0, 0.85397732, 1.49710584};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(f[0][i].item<double>(), want[i], 2e-5) << i;
  const double fd = frechet_distance(gaussian_stats(f.slice(0, 0, 500)), gaussian_stats(f.slice(0, 500, 2500)));
  EXPECT_NEAR(fd, 2.321126, 2e-4);
}
