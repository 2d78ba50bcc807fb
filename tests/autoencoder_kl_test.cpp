// The KL autoencoder (diffusers' AutoencoderKL, Rombach et al. 2022) against its PyTorch copy:
// tools/reference/autoencoder_kl_reference.py builds the network in plain torch under diffusers'
// state_dict names for two small configurations with fixed random weights, and stores the weights
// with fixed inputs and PyTorch's outputs in tests/data/autoencoder_kl_reference.safetensors.
// Here the C++ model reads those weights with the checkpoint loader and must give the same
// posterior and decoding; then shapes for f = 1 … 8, config.json, the KL and the loss.
//   a: 1 channel, block_out_channels (8, 16) → f = 2, 1 layer per block, latent 2, 8×8
//   b: 3 channels, block_out_channels (8, 8, 16) → f = 4, 2 layers per block, latent 4, 16×16
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/nn/autoencoder_kl.hpp"
#include "train/trainer_state.hpp"  // get_module: the checkpoint loader

using namespace diffuse;

namespace {

// (Names carry an akl_ prefix: the tests are a unity build too.)
const std::string kAklPath = std::string(DIFFUSE_TEST_DATA) + "/autoencoder_kl_reference.safetensors";

const SafetensorsFile& akl_reference() {
  static const SafetensorsFile f = load_safetensors(kAklPath);
  return f;
}

const torch::Tensor& akl_ref(const std::string& name) {
  const auto& t = akl_reference().tensors;
  auto it = t.find(name);
  if (it == t.end()) throw std::runtime_error("no tensor '" + name + "' in " + kAklPath);
  return it->second;
}

// The options of configuration c, read from its diffusers-style config.json (metadata "<c>.config").
AutoencoderKLOptions akl_options_of(const std::string& c) {
  return autoencoder_kl_config_from_json(akl_reference().metadata.at(c + ".config"));
}

// The C++ model of configuration c with the reference weights, in eval mode.
AutoencoderKL akl_load(const std::string& c) {
  AutoencoderKL m(akl_options_of(c));
  get_module(akl_reference().tensors, c + ".model.", *m, kAklPath);
  m->eval();
  return m;
}

std::set<std::string> akl_names(torch::nn::Module& m) {
  std::set<std::string> s;
  for (const auto& p : m.named_parameters()) s.insert(p.key());
  for (const auto& b : m.named_buffers()) s.insert(b.key());
  return s;
}

// max |got − want| < 1e-4 (the outputs are of order 0.2 … 1.5).
void akl_expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_GT(want.abs().max().item<double>(), 0.1) << what << ": the reference is degenerate";
  const double err = (got - want).abs().max().item<double>();
  EXPECT_LT(err, 1e-4) << what << ": max abs error " << err;
}

// A small model of `levels` levels of 8 channels: f = 2^(levels − 1).
AutoencoderKLOptions akl_small(size_t levels) {
  AutoencoderKLOptions o;
  o.block_out_channels = std::vector<int64_t>(levels, 8);
  o.norm_num_groups = 4;
  o.latent_channels = 4;
  o.sample_size = 32;
  return o;
}

// Runs fn, which must throw diffuse::Error with `needle` in what().
template <class Fn>
void akl_expect_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no diffuse::Error (expected one naming '" << needle << "')";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "'" << e.what() << "' does not name '" << needle << "'";
  }
}

}  // namespace

// (a) Every C++ parameter is a reference tensor of the same shape (get_module checks names and
// shapes), the two name sets are equal and the parameter counts agree.
TEST(AutoencoderKL, ParameterNamesMatchPyTorch) {
  for (const std::string c : {"a", "b"}) {
    SCOPED_TRACE("configuration " + c);
    AutoencoderKL m(akl_options_of(c));
    EXPECT_NO_THROW(get_module(akl_reference().tensors, c + ".model.", *m, kAklPath));
    const auto cpp = akl_names(*m);
    std::set<std::string> py;
    const std::string prefix = c + ".model.";
    for (const auto& [name, t] : akl_reference().tensors)
      if (name.rfind(prefix, 0) == 0) py.insert(name.substr(prefix.size()));
    std::vector<std::string> only_cpp, only_py;
    std::set_difference(cpp.begin(), cpp.end(), py.begin(), py.end(), std::back_inserter(only_cpp));
    std::set_difference(py.begin(), py.end(), cpp.begin(), cpp.end(), std::back_inserter(only_py));
    EXPECT_TRUE(only_cpp.empty()) << "C++ tensors missing in the reference: " << c10::Join(", ", only_cpp);
    EXPECT_TRUE(only_py.empty()) << "reference tensors the C++ lacks: " << c10::Join(", ", only_py);
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, std::stoll(akl_reference().metadata.at(c + ".parameters")));
  }
}

// (b) The posterior (μ, log σ²) of x and the decoding of a latent z are PyTorch's.
TEST(AutoencoderKL, EncodeDecodeMatchPyTorch) {
  for (const std::string c : {"a", "b"}) {
    SCOPED_TRACE("configuration " + c);
    auto m = akl_load(c);
    torch::NoGradGuard g;
    const auto q = m->encode(akl_ref(c + ".x"));
    akl_expect_close(q.mean, akl_ref(c + ".mean"), c + ".mean");
    akl_expect_close(q.logvar, akl_ref(c + ".logvar"), c + ".logvar");
    akl_expect_close(m->decode(akl_ref(c + ".z")), akl_ref(c + ".decoded"), c + ".decoded");
  }
}

// (c) A 32×32 image has a (32/f)×(32/f) latent for f = 1, 2, 4, 8 and decodes back to 32×32;
// sides not divisible by f are refused.
TEST(AutoencoderKL, LatentShapesForEachDownsampleFactor) {
  torch::manual_seed(0);
  torch::NoGradGuard g;
  for (size_t levels = 1; levels <= 4; ++levels) {
    const auto o = akl_small(levels);
    const int64_t f = int64_t(1) << (levels - 1);
    SCOPED_TRACE("f = " + std::to_string(f));
    EXPECT_EQ(downsample_factor(o), f);
    AutoencoderKL m(o);
    const auto x = torch::rand({2, 1, 32, 32}) * 2 - 1;
    const auto q = m->encode(x);
    EXPECT_EQ(q.mean.sizes().vec(), (std::vector<int64_t>{2, 4, 32 / f, 32 / f}));
    EXPECT_EQ(q.logvar.sizes().vec(), q.mean.sizes().vec());
    EXPECT_EQ(m->decode(q.mean).sizes().vec(), x.sizes().vec());
    EXPECT_EQ(m->forward(x, torch::randn_like(q.mean)).sizes().vec(), x.sizes().vec());
    if (f > 1) akl_expect_error([&] { m->encode(torch::zeros({1, 1, 32 + f / 2, 32})); }, "divisible");
  }
  AutoencoderKL m(akl_small(2));
  akl_expect_error([&] { m->encode(torch::zeros({1, 3, 32, 32})); }, "input");
  akl_expect_error([&] { m->decode(torch::zeros({1, 3, 16, 16})); }, "latent");
  akl_expect_error([&] { m->forward(torch::zeros({1, 1, 32, 32}), torch::zeros({1, 4, 8, 8})); }, "eps");
}

// (d) config.json: written as diffusers writes it, read back to the same options; unknown keys,
// wrong types and invalid values are errors naming the key.
TEST(AutoencoderKL, ConfigJsonRoundTripAndErrors) {
  AutoencoderKLOptions o;
  o.in_channels = o.out_channels = 3;
  o.latent_channels = 8;
  o.block_out_channels = {16, 32, 32, 64};
  o.layers_per_block = 2;
  o.norm_num_groups = 8;
  o.mid_block_attention = false;
  o.scaling_factor = 0.18215;
  o.sample_size = 64;
  const std::string text = autoencoder_kl_config_json(o);
  const auto j = nlohmann::json::parse(text);
  using Strings = std::vector<std::string>;
  EXPECT_EQ(j.at("_class_name").get<std::string>(), "AutoencoderKL");
  EXPECT_EQ(j.at("down_block_types").get<Strings>(), Strings(4, "DownEncoderBlock2D"));
  EXPECT_EQ(j.at("up_block_types").get<Strings>(), Strings(4, "UpDecoderBlock2D"));
  EXPECT_EQ(j.at("act_fn").get<std::string>(), "silu");
  EXPECT_TRUE(j.at("force_upcast").get<bool>());
  EXPECT_FALSE(j.at("mid_block_add_attention").get<bool>());
  EXPECT_EQ(j.at("block_out_channels").get<std::vector<int64_t>>(), o.block_out_channels);
  EXPECT_DOUBLE_EQ(j.at("scaling_factor").get<double>(), 0.18215);

  const auto r = autoencoder_kl_config_from_json(text);
  EXPECT_EQ(r.in_channels, 3);
  EXPECT_EQ(r.out_channels, 3);
  EXPECT_EQ(r.latent_channels, 8);
  EXPECT_EQ(r.block_out_channels, o.block_out_channels);
  EXPECT_EQ(r.layers_per_block, 2);
  EXPECT_EQ(r.norm_num_groups, 8);
  EXPECT_FALSE(r.mid_block_attention);
  EXPECT_DOUBLE_EQ(r.scaling_factor, 0.18215);
  EXPECT_EQ(r.sample_size, 64);

  // A diffusers config with keys diffuse does not model: accepted.
  const auto sd = autoencoder_kl_config_from_json(R"({"_class_name": "AutoencoderKL",
      "_diffusers_version": "0.27.0", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
      "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
      "DownEncoderBlock2D"], "force_upcast": true, "in_channels": 3, "latent_channels": 4,
      "latents_mean": null, "latents_std": null, "layers_per_block": 2, "norm_num_groups": 32,
      "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215, "shift_factor": null,
      "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
      "UpDecoderBlock2D"], "use_post_quant_conv": true, "use_quant_conv": true})");
  EXPECT_EQ(downsample_factor(sd), 8);
  EXPECT_EQ(sd.sample_size, 512);

  try {
    autoencoder_kl_config_from_json(R"({"in_channels": 1, "frobnicate": 2})");
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("frobnicate"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("block_out_channels"), std::string::npos) << e.hint();  // lists the valid keys
  }
  akl_expect_error([] { autoencoder_kl_config_from_json(R"({"layers_per_block": "two"})"); }, "layers_per_block");
  akl_expect_error([] { autoencoder_kl_config_from_json(R"({"block_out_channels": [8, 1.5]})"); },
                   "block_out_channels");
  akl_expect_error([] { autoencoder_kl_config_from_json(R"({"mid_block_add_attention": 1})"); },
                   "mid_block_add_attention");
  akl_expect_error([] { autoencoder_kl_config_from_json(R"({"sample_size": [64, 64]})"); }, "sample_size");
  akl_expect_error([] { autoencoder_kl_config_from_json("[1, 2]"); }, "object");
  akl_expect_error([] { autoencoder_kl_config_from_json("{"); }, "JSON");
  // Values read, then validated.
  akl_expect_error([] { autoencoder_kl_config_from_json(R"({"block_out_channels": [8, 8], "sample_size": 7})"); },
                   "sample_size");

  auto bad = [](auto&& edit, const std::string& field) {
    AutoencoderKLOptions v;
    edit(v);
    akl_expect_error([&] { validate(v); }, field);
    akl_expect_error([&] { AutoencoderKL m(v); }, field);
  };
  bad([](AutoencoderKLOptions& v) { v.block_out_channels = {}; }, "block_out_channels");
  bad([](AutoencoderKLOptions& v) { v.block_out_channels = {8, 8, 8, 8, 8}; }, "block_out_channels");
  bad([](AutoencoderKLOptions& v) { v.block_out_channels = {8, 5000}; }, "block_out_channels");
  bad([](AutoencoderKLOptions& v) { v.layers_per_block = 9; }, "layers_per_block");
  bad([](AutoencoderKLOptions& v) { v.latent_channels = 0; }, "latent_channels");
  bad([](AutoencoderKLOptions& v) { v.in_channels = 65; }, "in_channels");
  bad([](AutoencoderKLOptions& v) { v.out_channels = 0; }, "out_channels");
  bad([](AutoencoderKLOptions& v) { v.scaling_factor = std::numeric_limits<double>::quiet_NaN(); }, "scaling_factor");
  bad([](AutoencoderKLOptions& v) { v.scaling_factor = 0; }, "scaling_factor");
  bad([](AutoencoderKLOptions& v) { v.sample_size = 30; }, "sample_size");  // f = 4
}

// (d) The parameter names are diffusers' state_dict keys.
TEST(AutoencoderKL, ParameterNamesAreDiffusersKeys) {
  AutoencoderKLOptions o;
  o.block_out_channels = {8, 16};
  o.layers_per_block = 2;  // encoder levels hold resnets 0, 1; decoder levels 0, 1, 2
  o.norm_num_groups = 4;
  AutoencoderKL m(o);
  const auto names = akl_names(*m);
  for (const char* key : {"encoder.conv_in.weight", "encoder.down_blocks.0.resnets.0.conv1.weight",
                          "encoder.down_blocks.0.resnets.0.norm1.weight",
                          "encoder.down_blocks.0.downsamplers.0.conv.weight",
                          "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
                          "encoder.mid_block.attentions.0.to_q.weight",
                          "encoder.mid_block.attentions.0.group_norm.bias",
                          "encoder.mid_block.attentions.0.to_out.0.weight",
                          "encoder.mid_block.resnets.1.conv2.bias", "encoder.conv_norm_out.weight",
                          "encoder.conv_out.weight", "quant_conv.weight", "post_quant_conv.bias",
                          "decoder.conv_in.weight", "decoder.mid_block.attentions.0.to_v.bias",
                          "decoder.up_blocks.0.resnets.2.conv1.weight",
                          "decoder.up_blocks.0.upsamplers.0.conv.weight",
                          "decoder.up_blocks.1.resnets.0.conv_shortcut.weight", "decoder.conv_out.bias"})
    EXPECT_EQ(names.count(key), 1u) << key;
  // No downsample after the last level, no upsample after the last up block.
  EXPECT_EQ(names.count("encoder.down_blocks.1.downsamplers.0.conv.weight"), 0u);
  EXPECT_EQ(names.count("decoder.up_blocks.1.upsamplers.0.conv.weight"), 0u);
  o.mid_block_attention = false;
  AutoencoderKL plain(o);
  for (const auto& n : akl_names(*plain)) EXPECT_EQ(n.find("attentions"), std::string::npos) << n;
}

// (e) KL(N(μ, e^v) ‖ N(0, I)) per sample against ½ Σ (μ² + e^v − 1 − v) summed here in double.
TEST(AutoencoderKL, KlMatchesClosedForm) {
  const auto mean = torch::linspace(-1.5, 2.0, 32, torch::kDouble).reshape({2, 2, 2, 4});
  const auto logvar = torch::linspace(-3.0, 1.0, 32, torch::kDouble).reshape({2, 2, 2, 4});
  const auto kl = kl_diagonal_gaussian(mean.to(torch::kFloat), logvar.to(torch::kFloat));
  ASSERT_EQ(kl.sizes().vec(), std::vector<int64_t>{2});
  auto mu = mean.flatten(1), v = logvar.flatten(1);
  for (int64_t b = 0; b < 2; ++b) {
    double want = 0;
    for (int64_t j = 0; j < 16; ++j) {
      const double m = mu[b][j].item<double>(), lv = v[b][j].item<double>();
      want += 0.5 * (m * m + std::exp(lv) - 1 - lv);
    }
    EXPECT_NEAR(kl[b].item<double>(), want, 1e-5 * want) << "sample " << b;
  }
  const auto zero = kl_diagonal_gaussian(torch::zeros({3, 4, 2, 2}), torch::zeros({3, 4, 2, 2}));
  EXPECT_EQ(zero.abs().max().item<double>(), 0.0);  // N(0, I) itself
  akl_expect_error([] { kl_diagonal_gaussian(torch::zeros({2, 4}), torch::zeros({2, 5})); }, "same shape");
}

// (f) Adam on autoencoder_kl_loss for a fixed batch and noise lowers the loss (measured with the
// PyTorch copy over 6 seeds: to 5–12% of the first loss in 20 steps); the terms add up.
TEST(AutoencoderKL, LossDecreasesUnderTraining) {
  torch::manual_seed(0);
  AutoencoderKLOptions o;
  o.block_out_channels = {8, 16};
  o.norm_num_groups = 4;
  o.latent_channels = 2;
  o.sample_size = 8;
  AutoencoderKL m(o);
  const auto x = torch::rand({4, 1, 8, 8}) * 2 - 1;
  const auto eps = torch::randn({4, 2, 4, 4});
  constexpr double kKlWeight = 1e-3;
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(2e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    auto l = autoencoder_kl_loss(m, x, eps, kKlWeight);
    ASSERT_EQ(l.loss.dim(), 0);
    EXPECT_GE(l.reconstruction.item<double>(), 0.0);
    EXPECT_GE(l.kl.item<double>(), 0.0);
    EXPECT_NEAR(l.loss.item<double>(), l.reconstruction.item<double>() + kKlWeight * l.kl.item<double>(), 1e-6);
    if (step == 0) {
      torch::NoGradGuard g;
      const auto q = m->encode(x);
      EXPECT_NEAR(l.kl.item<double>(), kl_diagonal_gaussian(q.mean, q.logvar).mean().item<double>() / 64.0, 1e-6);
      first = l.loss.item<double>();
    }
    last = l.loss.item<double>();
    opt.zero_grad();
    l.loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
  akl_expect_error([&] { autoencoder_kl_loss(m, x, eps, -1.0); }, "kl_weight");
}
