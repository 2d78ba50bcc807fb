// The U-Net against its PyTorch copy: tools/reference/unet_reference.py builds the model of
// tools/reference/unet_model.py (layer for layer src/nn/unet.cpp, Ho et al. 2020) for two small
// configurations with fixed random weights, and stores the weights under the C++ parameter names
// with fixed inputs and PyTorch's outputs in tests/data/unet_reference.safetensors. Here the C++
// UNet reads those weights with the checkpoint loader and must give the same outputs.
//   a: class-conditional (3 classes + null), 3 channels, 14 → 7 → 4, attention at 7 and in the
//      middle (2 heads each), dropout 0.1 in eval mode
//   b: unconditional, 1 channel, 10 → 5 → 3, attention only in the middle, 2 blocks per level,
//      GroupNorm groups falling back to gcd(6, channels)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "diffuse/io.hpp"
#include "diffuse/nn/unet.hpp"
#include "train/trainer_state.hpp"  // get_module: the checkpoint loader

using namespace diffuse;

namespace {

const std::string kPath = std::string(DIFFUSE_TEST_DATA) + "/unet_reference.safetensors";

const SafetensorsFile& reference() {
  static const SafetensorsFile f = load_safetensors(kPath);
  return f;
}

const torch::Tensor& ref(const std::string& name) {
  const auto& t = reference().tensors;
  auto it = t.find(name);
  if (it == t.end()) throw std::runtime_error("no tensor '" + name + "' in " + kPath);
  return it->second;
}

// The options the Python model was built with (metadata "<c>.options").
UNetOptions options_of(const std::string& c) {
  const auto j = nlohmann::json::parse(reference().metadata.at(c + ".options"));
  UNetOptions o;
  o.in_channels = j.at("in_channels");
  o.image_size = j.at("image_size");
  o.base_channels = j.at("base_channels");
  o.channel_mult = j.at("channel_mult").get<std::vector<int64_t>>();
  o.blocks_per_level = j.at("blocks_per_level");
  o.attention_resolutions = j.at("attention_resolutions").get<std::vector<int64_t>>();
  o.head_channels = j.at("head_channels");
  o.groups = j.at("groups");
  o.num_classes = j.at("num_classes");
  o.dropout = j.at("dropout");
  return o;
}

// The C++ UNet of configuration c with the reference weights, in eval mode (no dropout).
UNet load_unet(const std::string& c) {
  UNet net(options_of(c));
  get_module(reference().tensors, c + ".model.", *net, kPath);
  net->eval();
  return net;
}

// max |got − want| must stay below 1e-4 of the output's scale max |want| (measured: at most
// 6.3e-7 of it for a, channels-last included; b comes out bit for bit).
void expect_matches(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>();
  const double err = (got - want).abs().max().item<double>();
  EXPECT_GT(scale, 0.1) << what << ": the reference output is degenerate";
  EXPECT_LT(err, 1e-4 * scale) << what << ": max abs error " << err << " at output scale " << scale;
}

// Per image, max |a − b| over its pixels: (B, C, H, W) → (B).
torch::Tensor per_image_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().flatten(1).amax(1);
}

}  // namespace

// Every C++ parameter and buffer has a reference tensor of the same shape (get_module checks
// names and shapes), there are no reference tensors the C++ lacks, and the counts agree: a
// layer missing or added on either side fails here.
TEST(UnetReference, ParameterNamesAndCountsMatchPyTorch) {
  for (const std::string c : {"a", "b"}) {
    SCOPED_TRACE("configuration " + c);
    UNet net(options_of(c));
    EXPECT_NO_THROW(get_module(reference().tensors, c + ".model.", *net, kPath));
    std::set<std::string> cpp, py;
    for (const auto& p : net->named_parameters()) cpp.insert(p.key());
    for (const auto& b : net->named_buffers()) cpp.insert(b.key());
    const std::string prefix = c + ".model.";
    for (const auto& [name, t] : reference().tensors)
      if (name.rfind(prefix, 0) == 0) py.insert(name.substr(prefix.size()));
    std::vector<std::string> only_cpp, only_py;
    std::set_difference(cpp.begin(), cpp.end(), py.begin(), py.end(), std::back_inserter(only_cpp));
    std::set_difference(py.begin(), py.end(), cpp.begin(), cpp.end(), std::back_inserter(only_py));
    EXPECT_TRUE(only_cpp.empty()) << "C++ tensors missing in the reference: " << c10::Join(", ", only_cpp);
    EXPECT_TRUE(only_py.empty()) << "reference tensors the C++ lacks: " << c10::Join(", ", only_py);
    int64_t n = 0;
    for (const auto& p : net->parameters()) n += p.numel();
    EXPECT_EQ(n, std::stoll(reference().metadata.at(c + ".parameters")));
  }
}

// Class labels 0, 2, null (3, passed explicitly), 1 at t = 0, 17, 500, 999, through attention
// at resolution 7 and in the middle; in NCHW and in channels-last (the attention has its own
// reordering for it).
TEST(UnetReference, ClassConditionalWithAttentionMatchesPyTorch) {
  auto net = load_unet("a");
  torch::NoGradGuard g;
  expect_matches(net->forward(ref("a.x"), ref("a.t"), ref("a.labels")), ref("a.out"), "a.out");
  for (auto& p : net->parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  auto cl = net->forward(ref("a.x").contiguous(at::MemoryFormat::ChannelsLast), ref("a.t"), ref("a.labels"));
  expect_matches(cl.contiguous(), ref("a.out"), "a.out, channels-last");
}

// Every label the null class: passed as the id num_classes, and as no labels at all.
TEST(UnetReference, NullClassMatchesPyTorch) {
  auto net = load_unet("a");
  torch::NoGradGuard g;
  const auto null = torch::full({ref("a.x").size(0)}, net->options().num_classes, torch::kLong);
  expect_matches(net->forward(ref("a.x"), ref("a.t"), null), ref("a.out_null"), "a.out_null, null id");
  expect_matches(net->forward(ref("a.x"), ref("a.t")), ref("a.out_null"), "a.out_null, no labels");
}

// No label embedding, attention only in the middle, two blocks per level, odd 5 → 3.
TEST(UnetReference, UnconditionalMatchesPyTorch) {
  auto net = load_unet("b");
  torch::NoGradGuard g;
  expect_matches(net->forward(ref("b.x"), ref("b.t")), ref("b.out"), "b.out");
  expect_matches(net->forward(ref("b.x"), ref("b.t2")), ref("b.out_t2"), "b.out_t2");
}

// Other timesteps and other labels give PyTorch's outputs for them, and those differ from the
// first outputs image by image by more than 10× the tolerance (measured: 0.02–0.11 of the
// output scale for t, 0.35–0.57 for the labels) — so the tests above see t and y.
TEST(UnetReference, TimestepAndLabelChangeTheOutputAsInPyTorch) {
  auto net = load_unet("a");
  auto b = load_unet("b");
  torch::NoGradGuard g;
  const auto &x = ref("a.x"), &t = ref("a.t"), &y = ref("a.labels");
  const auto out = net->forward(x, t, y);
  const auto out_t2 = net->forward(x, ref("a.t2"), y);
  const auto out_y2 = net->forward(x, t, ref("a.labels2"));
  expect_matches(out_t2, ref("a.out_t2"), "a.out_t2");
  expect_matches(out_y2, ref("a.out_labels2"), "a.out_labels2");
  const double scale = ref("a.out").abs().max().item<double>();
  EXPECT_GT(per_image_diff(out, out_t2).min().item<double>(), 1e-3 * scale);  // every t differs
  EXPECT_GT(per_image_diff(out, out_y2).min().item<double>(), 1e-3 * scale);  // every label differs
  // Against all-null labels, images 0, 1, 3 change and image 2 (already null) is the same.
  const auto d = per_image_diff(out, net->forward(x, t));
  EXPECT_GT(d[0].item<double>(), 1e-3 * scale);
  EXPECT_GT(d[1].item<double>(), 1e-3 * scale);
  EXPECT_LT(d[2].item<double>(), 1e-6 * scale);
  EXPECT_GT(d[3].item<double>(), 1e-3 * scale);
  const auto db = per_image_diff(b->forward(ref("b.x"), ref("b.t")), b->forward(ref("b.x"), ref("b.t2")));
  EXPECT_GT(db.min().item<double>(), 1e-3 * ref("b.out").abs().max().item<double>());
}
