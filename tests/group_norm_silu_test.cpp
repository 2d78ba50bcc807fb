// The fused GroupNorm + SiLU (nn/group_norm_silu.hpp) against the ATen ops it replaces: values
// and first derivatives over shapes that reach every branch of the kernel (one group, one
// channel per group, 1×1 and odd H·W that end in a partial vector, H·W over one 512-element
// chunk, B = 1 and 3, with and without the per-channel shift); saturation and NaN; the dispatch
// to the unfused ops (float64, channels-last, autocast, the switch) and that it keeps their
// values bit for bit; the errors; a whole U-Net forward + backward, fused against unfused.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/nn/group_norm_silu.hpp"
#include "diffuse/nn/unet.hpp"
#include "test_util.hpp"

using namespace diffuse;

namespace {

// set_fused_group_norm_silu(enabled) for one scope, then back to what it was.
class GnsFusedScope {
 public:
  explicit GnsFusedScope(bool enabled) : before_(fused_group_norm_silu()) {
    set_fused_group_norm_silu(enabled);
  }
  ~GnsFusedScope() { set_fused_group_norm_silu(before_); }

 private:
  bool before_;
};

// CPU autocast (bf16) on for one scope.
class GnsAutocastScope {
 public:
  GnsAutocastScope() { at::autocast::set_cpu_enabled(true); }
  ~GnsAutocastScope() {
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
};

// The reference: the unfused ops through autograd. shift (N, C) or undefined.
torch::Tensor gns_reference(const torch::Tensor& x, int64_t groups, const torch::Tensor& w,
                            const torch::Tensor& b, double eps, const torch::Tensor& shift) {
  auto h = shift.defined() ? x + shift.unsqueeze(-1).unsqueeze(-1) : x;
  return torch::silu(torch::group_norm(h, groups, w, b, eps));
}

struct GnsCase {
  int64_t N, C, H, W, G;
};

const std::vector<GnsCase>& gns_cases() {
  static const std::vector<GnsCase> c = {
      {1, 8, 7, 7, 1},     // one group; 49 = 6 vectors + 1
      {3, 8, 7, 7, 8},     // a group per channel
      {3, 16, 1, 1, 4},    // 1×1: partial vectors only
      {2, 6, 5, 3, 3},     // 15 = 1 vector + 7
      {3, 32, 28, 28, 8},  // the U-Net's first level; 784 = two chunks
      {1, 4, 33, 33, 2},   // 1089 = three chunks, the last ending in a partial vector
  };
  return c;
}

std::string gns_name(const GnsCase& c, bool shift) {
  return "N=" + std::to_string(c.N) + " C=" + std::to_string(c.C) + " H×W=" + std::to_string(c.H) +
         "×" + std::to_string(c.W) + " G=" + std::to_string(c.G) + (shift ? " with shift" : "");
}

struct GnsInputs {
  torch::Tensor x, w, b, shift;  // (N, C, H, W), (C), (C), (N, C) or undefined
};

// x with a mean and spread away from 0 and 1, random γ and β, a shift of the embedding's size.
GnsInputs gns_inputs(const GnsCase& c, bool shift, torch::ScalarType dt = torch::kFloat) {
  GnsInputs in;
  in.x = (2.0 + 3.0 * torch::randn({c.N, c.C, c.H, c.W})).to(dt);
  in.w = (1.0 + 0.5 * torch::randn({c.C})).to(dt);
  in.b = (0.5 * torch::randn({c.C})).to(dt);
  if (shift) in.shift = torch::randn({c.N, c.C}).to(dt);
  return in;
}

// max |got − want| / max |want| (or the plain difference when want is 0).
double gns_rel_diff(const torch::Tensor& got, const torch::Tensor& want) {
  const double scale = want.abs().max().item<double>();
  return (got - want).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

std::string gns_grad_fn(const torch::Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : "(none)"; }

}  // namespace

// max |fused − unfused| < 1e-5 for every shape, with and without the shift. (Not for groups of
// one element: there σ² = 0, r = 1/√eps, and both compute z = x·rγ + (β − μ·rγ) with a
// cancellation of ~|x|·rγ·1e-7 ≈ 1e-4 that each rounds its own way.)
TEST(GroupNormSiLU, FusedValuesMatchTheUnfusedOps) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(0);
  for (const auto& c : gns_cases()) {
    for (bool shift : {false, true}) {
      SCOPED_TRACE(gns_name(c, shift));
      const auto in = gns_inputs(c, shift);
      const double eps = c.G == 1 ? 1e-6 : 1e-5;
      torch::NoGradGuard g;
      const auto got = group_norm_silu(in.x, c.G, in.w, in.b, eps, in.shift);
      const auto want = gns_reference(in.x, c.G, in.w, in.b, eps, in.shift);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(got.is_contiguous());
      EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
    }
  }
}

// Gradients for x, γ, β and the shift, against autograd through the unfused ops, within 1e-4 of
// each gradient's largest entry.
TEST(GroupNormSiLU, FusedGradientsMatchAutogradThroughTheUnfusedOps) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(1);
  for (const auto& c : gns_cases()) {
    for (bool shift : {false, true}) {
      SCOPED_TRACE(gns_name(c, shift));
      auto in = gns_inputs(c, shift);
      std::vector<torch::Tensor> inputs{in.x.requires_grad_(), in.w.requires_grad_(), in.b.requires_grad_()};
      if (shift) inputs.push_back(in.shift.requires_grad_());
      const auto dy = torch::randn({c.N, c.C, c.H, c.W});
      const auto y = group_norm_silu(in.x, c.G, in.w, in.b, 1e-5, in.shift);
      ASSERT_NE(gns_grad_fn(y).find("GroupNormSiLU"), std::string::npos) << gns_grad_fn(y);
      const auto got = torch::autograd::grad({(y * dy).sum()}, inputs);
      const auto ref = gns_reference(in.x, c.G, in.w, in.b, 1e-5, in.shift);
      const auto want = torch::autograd::grad({(ref * dy).sum()}, inputs);
      const char* names[] = {"dx", "dweight", "dbias", "dshift"};
      for (size_t k = 0; k < inputs.size(); ++k) {
        ASSERT_EQ(got[k].sizes(), inputs[k].sizes()) << names[k];
        if (k == 3 && c.G == c.C) {
          // one channel per group: GroupNorm removes a per-channel shift, so d(shift) is 0 up to
          // the rounding of Σ_hw dx (both sides hold only that noise: no relative comparison)
          const double dx_scale = want[0].abs().max().item<double>() * double(c.H * c.W);
          EXPECT_LT(got[k].abs().max().item<double>(), 1e-5 * dx_scale) << names[k];
          EXPECT_LT(want[k].abs().max().item<double>(), 1e-5 * dx_scale) << names[k];
          continue;
        }
        EXPECT_LT(gns_rel_diff(got[k], want[k]), 1e-4) << names[k];
      }
    }
  }
}

// |z| up to ~170: y saturates to z and to 0 as SiLU does (e^±87 bounds the exponential inside);
// a NaN makes its whole group NaN and leaves the other group alone, as GroupNorm does.
TEST(GroupNormSiLU, SaturatesAndPropagatesNaNAsTheUnfusedOps) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::NoGradGuard g;
  auto x = torch::linspace(-1.0, 1.0, 400).repeat({1, 2, 1, 1}).contiguous();  // (1, 2, 1, 400)
  const auto w = torch::full({2}, 100.0, torch::kFloat), b = torch::tensor({0.0f, -3.0f});
  auto got = group_norm_silu(x, 2, w, b, 1e-5);
  auto want = gns_reference(x, 2, w, b, 1e-5, {});
  EXPECT_GT(want.abs().max().item<double>(), 150.0);
  // 3e-5: the kernel's own exp (Cephes polynomial) against ATen's, ~1e-5 apart at |z| ~ 170
  EXPECT_LT(((got - want).abs() / want.abs().clamp_min(1.0)).max().item<double>(), 3e-5);
  x[0][0][0][5].fill_(std::numeric_limits<float>::quiet_NaN());
  got = group_norm_silu(x, 2, w, b, 1e-5);
  EXPECT_TRUE(torch::isnan(got[0][0]).all().item<bool>());
  EXPECT_FALSE(torch::isnan(got[0][1]).any().item<bool>());
  EXPECT_LT((got[0][1] - want[0][1]).abs().max().item<double>(), 1e-3);
}

// The fused kernel runs for CPU float32 NCHW outside autocast with the switch on, and the
// unfused ops (whose last node is SiLU's) everywhere else.
TEST(GroupNormSiLU, RunsTheFusedKernelOnlyForCpuFloat32Nchw) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(2);
  const GnsCase c{2, 8, 5, 5, 4};
  auto in = gns_inputs(c, true);
  in.x.requires_grad_();
  auto name = [&](const torch::Tensor& x) {
    return gns_grad_fn(group_norm_silu(x, c.G, in.w, in.b, 1e-5, in.shift));
  };
  EXPECT_NE(name(in.x).find("GroupNormSiLU"), std::string::npos) << name(in.x);
  EXPECT_EQ(name(in.x.contiguous(at::MemoryFormat::ChannelsLast)).find("GroupNormSiLU"), std::string::npos);
  EXPECT_EQ(gns_grad_fn(group_norm_silu(in.x.to(torch::kDouble), c.G, in.w.to(torch::kDouble),
                                        in.b.to(torch::kDouble), 1e-5, in.shift.to(torch::kDouble)))
                .find("GroupNormSiLU"),
            std::string::npos);
  {
    GnsFusedScope off(false);
    EXPECT_EQ(name(in.x).find("GroupNormSiLU"), std::string::npos) << name(in.x);
  }
  {
    GnsAutocastScope autocast;
    EXPECT_EQ(name(in.x).find("GroupNormSiLU"), std::string::npos) << name(in.x);
  }
}

// Float64 takes the unfused path: the same ops as gns_reference, so the same bits.
TEST(GroupNormSiLU, Float64IsExactlyTheUnfusedOps) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(3);
  for (bool shift : {false, true}) {
    SCOPED_TRACE(shift ? "with shift" : "without shift");
    const GnsCase c{3, 12, 7, 7, 3};
    const auto in = gns_inputs(c, shift, torch::kDouble);
    const auto got = group_norm_silu(in.x, c.G, in.w, in.b, 1e-5, in.shift);
    EXPECT_EQ(got.scalar_type(), torch::kDouble);
    EXPECT_TRUE(torch::equal(got, gns_reference(in.x, c.G, in.w, in.b, 1e-5, in.shift)));
  }
}

// Channels-last takes the unfused path with the U-Net's handling (normalised in NCHW, converted
// back), bit for bit; its values and gradients agree with the fused kernel on the same numbers.
TEST(GroupNormSiLU, ChannelsLastKeepsTheUnfusedPathAndAgreesWithNchw) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(4);
  const GnsCase c{3, 16, 9, 9, 4};
  auto in = gns_inputs(c, true);
  const auto x_cl = in.x.contiguous(at::MemoryFormat::ChannelsLast);
  {
    torch::NoGradGuard g;
    const auto got = group_norm_silu(x_cl, c.G, in.w, in.b, 1e-5, in.shift);
    EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
    const auto h = x_cl + in.shift.unsqueeze(-1).unsqueeze(-1);  // as the U-Net's add, then unet_group_norm
    const auto want = torch::silu(torch::group_norm(h.contiguous(), c.G, in.w, in.b, 1e-5)
                                      .contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::equal(got, want));
    EXPECT_LT((got - group_norm_silu(in.x, c.G, in.w, in.b, 1e-5, in.shift)).abs().max().item<double>(), 1e-5);
  }
  const auto dy = torch::randn({c.N, c.C, c.H, c.W});
  auto grads = [&](const torch::Tensor& x) {
    auto xg = x.detach().requires_grad_();
    auto w = in.w.detach().requires_grad_(), b = in.b.detach().requires_grad_();
    auto s = in.shift.detach().requires_grad_();
    return torch::autograd::grad({(group_norm_silu(xg, c.G, w, b, 1e-5, s) * dy).sum()}, {xg, w, b, s});
  };
  const auto nchw = grads(in.x), cl = grads(x_cl);
  for (size_t k = 0; k < nchw.size(); ++k) EXPECT_LT(gns_rel_diff(cl[k], nchw[k]), 1e-4) << "input " << k;
}

// One image's results do not depend on the thread count (each group is summed by one thread,
// γ and β gradients over the images serially afterwards).
TEST(GroupNormSiLU, ResultsDoNotDependOnTheThreadCount) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  torch::manual_seed(5);
  const GnsCase c{4, 32, 14, 14, 8};
  const auto in = gns_inputs(c, true);
  const auto dy = torch::randn({c.N, c.C, c.H, c.W});
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    auto x = in.x.detach().requires_grad_(), w = in.w.detach().requires_grad_();
    auto b = in.b.detach().requires_grad_(), s = in.shift.detach().requires_grad_();
    auto y = group_norm_silu(x, c.G, w, b, 1e-5, s);
    auto out = torch::autograd::grad({(y * dy).sum()}, {x, w, b, s});
    out.push_back(y.detach());
    return out;
  };
  const int before = at::get_num_threads();
  const auto one = run(1), two = run(2);
  at::set_num_threads(before);
  for (size_t k = 0; k < one.size(); ++k) EXPECT_TRUE(torch::equal(one[k], two[k])) << "output " << k;
}

TEST(GroupNormSiLU, BadShapesThrowWithAHint) {
  GnsFusedScope on(true);  // the kernel is off by default (slower here, see the header)
  const auto x = torch::randn({2, 8, 3, 3});
  const auto w = torch::ones({8}), b = torch::zeros({8});
  EXPECT_NE(test::error_text([&] { group_norm_silu(x, 3, w, b, 1e-5); }).find("3 groups do not divide the 8"),
            std::string::npos);
  EXPECT_NE(test::error_text([&] { group_norm_silu(x, 4, torch::ones({7}), b, 1e-5); }).find("weight has shape [7]"),
            std::string::npos);
  EXPECT_NE(test::error_text([&] { group_norm_silu(x, 4, w, b, 1e-5, torch::zeros({2, 9})); })
                .find("channel_bias has shape [2, 9], expected (2, 8)"),
            std::string::npos);
  EXPECT_NE(test::error_text([&] { group_norm_silu(torch::randn({8}), 4, w, b, 1e-5); }).find("expected (N, C, *)"),
            std::string::npos);
}

// A class-conditional U-Net (odd sizes 9 → 5, attention in the middle, the time embedding folded
// into every second norm) forward and backward with the fused kernel and with the unfused ops:
// output within 1e-4 of its scale, the input's and every parameter's gradient within 1e-4 of
// its largest entry; and not bit for bit the same, which shows that the fused kernel ran.
TEST(GroupNormSiLU, UNetForwardBackwardFusedMatchesUnfused) {
  torch::manual_seed(6);
  UNetOptions o;
  o.in_channels = 2;
  o.base_channels = 16;
  o.channel_mult = {1, 2};
  o.blocks_per_level = 1;
  o.attention_resolutions = {};
  o.head_channels = 16;
  o.dropout = 0.0;
  o.num_classes = 3;
  o.groups = 4;
  o.image_size = 9;
  UNet net(o);
  {
    torch::NoGradGuard g;  // away from the zero-initialised start, so that every branch counts
    for (auto& p : net->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  const auto x = torch::randn({3, 2, 9, 9});
  const auto t = torch::tensor({0, 400, 999}, torch::kLong);
  const auto labels = torch::tensor({0, 2, 3}, torch::kLong);  // 3: the null class
  const auto r = torch::randn({3, 2, 9, 9});
  auto run = [&](bool fused) {
    GnsFusedScope scope(fused);
    net->zero_grad();
    auto xg = x.clone().requires_grad_();
    auto out = net->forward(xg, t, labels);
    (out * r).sum().backward();
    std::vector<std::pair<std::string, torch::Tensor>> grads{{"x", xg.grad().clone()}};
    for (const auto& p : net->named_parameters())
      grads.emplace_back(p.key(), p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value()));
    return std::make_pair(out.detach(), grads);
  };
  const auto fused = run(true), unfused = run(false);
  const double scale = unfused.first.abs().max().item<double>();
  EXPECT_GT(scale, 0.1);
  EXPECT_LT((fused.first - unfused.first).abs().max().item<double>(), 1e-4 * scale);
  EXPECT_GT((fused.first - unfused.first).abs().max().item<double>(), 0.0) << "the fused kernel did not run";
  ASSERT_EQ(fused.second.size(), unfused.second.size());
  for (size_t k = 0; k < fused.second.size(); ++k)
    EXPECT_LT(gns_rel_diff(fused.second[k].second, unfused.second[k].second), 1e-4) << fused.second[k].first;
}
