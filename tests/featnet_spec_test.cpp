// Feature networks of any labelled image set: the spec (channels, size, classes) in the
// weights' metadata, old Fashion-MNIST files without it, which network eval fd picks for which
// data, the splits of a data spec, and the shipped emoji network's accuracy on its test split.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "eval/featnet_impl.hpp"

using namespace diffuse;

namespace {

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("diffuse_featnet_spec_" + name)).string();
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The message of the diffuse::Error that f throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what() + std::string(" | ") + e.hint();
  }
  return "";
}

}  // namespace

TEST(FeatNetSpec, StagesHalveWhileTheSideIsEvenAndAboveFour) {
  // 28 → 14 → 7 (two, the Fashion-MNIST network); 32 → 16 → 8 → 4 (three); 64 → … → 4 (four)
  EXPECT_EQ(featnet_stages(28), 2);
  EXPECT_EQ(featnet_stages(32), 3);
  EXPECT_EQ(featnet_stages(16), 2);
  EXPECT_EQ(featnet_stages(64), 4);
  EXPECT_EQ(featnet_stages(9), 0);
  // the flatten size follows: 64·7·7 for 1×28×28, 128·4·4 for 3×32×32, 64·4·4 for 16×16
  EXPECT_EQ(FeatNet().module().fc->weight.size(1), 64 * 7 * 7);
  FeatNetSpec s;
  s.in_channels = 3;
  s.image_size = 32;
  EXPECT_EQ(FeatNet(s).module().fc->weight.size(1), 128 * 4 * 4);
  s.image_size = 16;
  EXPECT_EQ(FeatNet(s).module().fc->weight.size(1), 64 * 4 * 4);
}

TEST(FeatNetSpec, ChannelsSizeAndClassesRoundTripThroughTheMetadata) {
  torch::manual_seed(3);
  FeatNetSpec s;
  s.in_channels = 3;
  s.image_size = 32;
  s.feature_dim = 12;
  s.class_names = {"smileys-emotion", "people-body", "flags, and more"};  // a comma inside a name
  s.data = "emoji:color";
  s.background = "#102030";
  FeatNet net(s);
  const auto path = temp_file("rgb.safetensors");
  net.save(path);
  const auto meta = load_safetensors(path).metadata;
  EXPECT_EQ(meta.at("in_channels"), "3");
  EXPECT_EQ(meta.at("image_size"), "32");
  EXPECT_EQ(meta.at("num_classes"), "3");
  EXPECT_EQ(meta.at("data"), "emoji:color");
  auto back = FeatNet::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(back.in_channels(), 3);
  EXPECT_EQ(back.image_size(), 32);
  EXPECT_EQ(back.feature_dim(), 12);
  EXPECT_EQ(back.num_classes(), 3);
  EXPECT_EQ(back.spec().class_names, s.class_names);
  EXPECT_EQ(back.spec().data, "emoji:color");
  EXPECT_EQ(back.spec().background, "#102030");
  auto x = torch::randint(0, 256, {4, 3, 32, 32}, torch::kLong).to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(net.features(x), back.features(x)));
  EXPECT_EQ(back.logits(x).sizes(), (std::vector<int64_t>{4, 3}));
  // the wrong shape is refused, naming what the network takes
  const auto msg = error_of([&] { back.features(torch::zeros({2, 1, 28, 28})); });
  EXPECT_NE(msg.find("32×32 RGB"), std::string::npos) << msg;
}

TEST(FeatNetSpec, FilesWithoutTheSpecAreFashionMnistNetworks) {
  // The shipped Fashion-MNIST weights predate the spec keys: they must load as 1×28×28, ten classes.
  const std::string shipped = default_featnet_path();
  ASSERT_FALSE(shipped.empty());
  const auto meta = load_safetensors(shipped).metadata;
  EXPECT_EQ(meta.count("in_channels"), 0u) << "the shipped file was rewritten; this test wants an old one";
  auto net = FeatNet::load(shipped);
  EXPECT_EQ(net.in_channels(), 1);
  EXPECT_EQ(net.image_size(), 28);
  EXPECT_EQ(net.num_classes(), 10);
  EXPECT_EQ(net.spec().class_names, fashion_mnist_classes());
  EXPECT_EQ(net.spec().data, "fashion-mnist");
  // likewise a file written with only the old keys
  torch::manual_seed(4);
  FeatNet fresh(8);
  std::map<std::string, torch::Tensor> t;
  for (const auto& p : fresh.module().named_parameters()) t[p.key()] = p.value().detach();
  for (const auto& b : fresh.module().named_buffers()) t[b.key()] = b.value().detach();
  const auto path = temp_file("old.safetensors");
  save_safetensors(path, t, {{"format", "diffuse-featnet-1"}, {"feature_dim", "8"}});
  auto old = FeatNet::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(old.num_classes(), 10);
  auto x = torch::rand({2, 1, 28, 28}) * 2 - 1;
  EXPECT_TRUE(torch::equal(fresh.features(x), old.features(x)));
}

TEST(FeatNetSpec, SplitSpecsKeepTheVariant) {
  EXPECT_EQ(data_split_spec("fashion-mnist", "test"), "fashion-mnist:test");
  EXPECT_EQ(data_split_spec("fashion-mnist:test", "train"), "fashion-mnist:train");
  EXPECT_EQ(data_split_spec("emoji", "test"), "emoji:test");
  EXPECT_EQ(data_split_spec("emoji:test", "train"), "emoji:train");
  EXPECT_EQ(data_split_spec("emoji:no-skin-tones:color", "test"), "emoji:test:color:no-skin-tones");
  EXPECT_EQ(featnet_data_family("emoji:color"), "emoji");
  EXPECT_EQ(featnet_data_family("fashion-mnist:test"), "fashion-mnist");
  EXPECT_EQ(featnet_data_family("folder:x"), "");
  EXPECT_NE(error_of([] { data_split_spec("folder:imgs", "test"); }).find("no train and test splits"),
            std::string::npos);
}

TEST(FeatNetSpec, EvalFdFindsTheShippedNetworkOfTheData) {
  ASSERT_EQ(std::getenv("DIFFUSE_FEATNET"), nullptr) << "unset DIFFUSE_FEATNET for this test";
  EXPECT_EQ(file_name(find_featnet("fashion-mnist", 1, 28).path), "featnet_fmnist.safetensors");
  EXPECT_EQ(file_name(find_featnet("emoji", 3, 32, "white").path), "featnet_emoji32.safetensors");
  EXPECT_EQ(file_name(find_featnet("", 3, 32).path), "featnet_emoji32.safetensors");  // by shape alone
  EXPECT_EQ(file_name(find_featnet("", 1, 28).path), "featnet_fmnist.safetensors");
  // no emoji network at 64×64: the error names what there is; converting is allowed when asked
  const auto msg = error_of([] { find_featnet("emoji", 3, 64); });
  EXPECT_NE(msg.find("no feature network for emoji"), std::string::npos) << msg;
  EXPECT_NE(msg.find("featnet_emoji32.safetensors (emoji on white, 3×32×32)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("featnet_fmnist.safetensors (fashion-mnist, 1×28×28)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train-featnet --data emoji --image-size 64"), std::string::npos) << msg;
  EXPECT_EQ(file_name(find_featnet("emoji", 3, 64, "", /*exact=*/false).path), "featnet_emoji32.safetensors");
  // emoji on another background are other images
  EXPECT_FALSE(error_of([] { find_featnet("emoji", 3, 32, "black"); }).empty());
  // RGB at 28×28 is neither network's
  EXPECT_FALSE(error_of([] { find_featnet("", 3, 28); }).empty());
}

TEST(FeatNetSpec, ShippedEmojiNetworkClassifiesTheTestSplit) {
  auto found = find_featnet("emoji", 3, 32, "white");
  auto net = FeatNet::load(found.path);
  EXPECT_EQ(net.spec().class_names, emoji_class_names());
  EmojiOptions o;
  o.split = "test";
  auto test = load_emoji(o);
  // measured when the weights were made (assets/featnet_emoji32.safetensors.json, docs/evaluation.md);
  // chance is the largest class's share, people-body's ~40%
  EXPECT_GE(featnet_accuracy(net, test.images, test.labels), 0.85);
}
