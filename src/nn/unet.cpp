// diffuse — the U-Net of Ho et al. 2020; the picture is in diffuse/nn/unet.hpp.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "diffuse/error.hpp"
#include "diffuse/nn/group_norm_silu.hpp"
#include "diffuse/nn/mlp.hpp"  // timestep_embedding
#include "diffuse/nn/unet.hpp"

namespace diffuse {
namespace {

// (Names carry a unet_ prefix: the library is built as a unity build, where the anonymous
// namespaces of several .cpp files share one translation unit.)

// GroupNorm groups for `channels`: the requested count if it divides them, else the gcd.
int64_t unet_groups(int64_t groups, int64_t channels) { return std::gcd(groups, channels); }

torch::nn::GroupNorm unet_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(unet_groups(groups, channels), channels));
}

// GroupNorm in the input's dtype, channels-last normalised in NCHW (group_norm_any_layout:
// measured ~9× faster than LibTorch 1.13's CPU GroupNorm on channels-last, bench/README.md).
torch::Tensor unet_group_norm(const torch::nn::GroupNorm& n, const torch::Tensor& x) {
  return group_norm_any_layout(x, n->options.num_groups(), n->weight, n->bias, n->options.eps());
}

// SiLU(GroupNorm(x + shift[:, :, None, None])) with the module's groups, γ, β and eps, as one
// operator (diffuse/nn/group_norm_silu.hpp): fused on CPU float32 NCHW, otherwise the unfused ops
// with unet_group_norm's bf16 and channels-last handling. shift: (B, C) or undefined.
torch::Tensor unet_group_norm_silu(const torch::nn::GroupNorm& n, const torch::Tensor& x,
                                   const torch::Tensor& shift = {}) {
  return group_norm_silu(x, n->options.num_groups(), n->weight, n->bias, n->options.eps(), shift);
}

// k×k convolution with "same" padding; stride 2 halves the size: r → ⌊(r − 1)/2⌋ + 1 = ⌈r/2⌉.
torch::nn::Conv2d unet_conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
}

// Zero weights and bias: the layer's branch starts as the identity/zero function.
void unet_zero(const torch::nn::Conv2d& conv) {
  torch::NoGradGuard g;
  conv->weight.zero_();
  conv->bias.zero_();
}

std::string unet_list(const std::vector<int64_t>& v) {
  std::vector<std::string> s;
  for (auto x : v) s.push_back(std::to_string(x));
  return "{" + join(s) + "}";
}

// Spatial size of each level: r_0 = image_size, r_{i+1} = ⌈r_i / 2⌉.
std::vector<int64_t> unet_resolutions(const UNetOptions& o) {
  std::vector<int64_t> r{o.image_size};
  while (r.size() < o.channel_mult.size()) r.push_back((r.back() + 1) / 2);
  return r;
}

bool unet_has_attention(const UNetOptions& o, int64_t res) {
  const auto& a = o.attention_resolutions;
  return std::find(a.begin(), a.end(), res) != a.end();
}

// The architecture as a sequence of layers, shared by the constructor and the FLOP count so
// the two cannot drift apart. It calls block and down along the down path, mid once, then
// block and up along the up path, where
//   block(in, out, res, attention)  a ResBlock (+ Attention) at resolution res
//   down(ch, res)                   Conv3×3 stride 2 from res to ⌈res/2⌉
//   mid(ch, res)                    ResBlock → Attention → ResBlock
//   up(ch, res)                     nearest upsampling to res, then Conv3×3
// and returns the channels of the last up block.
template <class Block, class Down, class Mid, class Up>
int64_t unet_walk(const UNetOptions& o, Block&& block, Down&& down, Mid&& mid, Up&& up) {
  const auto res = unet_resolutions(o);
  const int64_t levels = int64_t(o.channel_mult.size());
  int64_t ch = o.base_channels;
  std::vector<int64_t> skips{ch};  // channels of every activation pushed on the skip stack
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t out = o.base_channels * o.channel_mult[i];
    for (int64_t b = 0; b < o.blocks_per_level; ++b) {
      block(ch, out, res[i], unet_has_attention(o, res[i]));
      skips.push_back(ch = out);
    }
    if (i + 1 < levels) {
      down(ch, res[i]);
      skips.push_back(ch);
    }
  }
  mid(ch, res.back());
  for (int64_t i = levels - 1; i >= 0; --i) {
    const int64_t out = o.base_channels * o.channel_mult[i];
    for (int64_t b = 0; b <= o.blocks_per_level; ++b) {  // one more: also eats the downsample's skip
      block(ch + skips.back(), out, res[i], unet_has_attention(o, res[i]));
      skips.pop_back();
      ch = out;
    }
    if (i > 0) up(ch, res[i - 1]);
  }
  return ch;
}

}  // namespace

void validate(const UNetOptions& o) {
  auto bad = [](const std::string& field, const std::string& got, const std::string& valid) {
    throw Error("invalid U-Net option " + field + " = " + got, "valid: " + valid);
  };
  auto positive = [&](const char* field, int64_t v) {
    if (v < 1) bad(field, std::to_string(v), "an integer >= 1");
  };
  positive("in_channels", o.in_channels);
  positive("base_channels", o.base_channels);
  positive("blocks_per_level", o.blocks_per_level);
  positive("head_channels", o.head_channels);
  positive("groups", o.groups);
  positive("image_size", o.image_size);
  if (o.channel_mult.empty())
    bad("channel_mult", "{}", "one multiplier >= 1 per level, e.g. {1, 2, 2}");
  for (auto m : o.channel_mult)
    if (m < 1) bad("channel_mult", unet_list(o.channel_mult), "multipliers >= 1, e.g. {1, 2, 2}");
  if (o.num_classes < 0) bad("num_classes", std::to_string(o.num_classes), "0 (unconditional) or >= 1");
  if (!(o.dropout >= 0.0 && o.dropout < 1.0)) bad("dropout", std::to_string(o.dropout), "[0, 1)");
  // Every downsample must have at least 2 pixels to halve (odd sizes are fine: 7 → 4 → 7).
  const int64_t levels = int64_t(o.channel_mult.size());
  if (levels > 16) bad("channel_mult", unet_list(o.channel_mult), "at most 16 levels");
  const int64_t min_size = int64_t(1) << (levels - 1);
  if (o.image_size < min_size)
    bad("image_size", std::to_string(o.image_size),
        ">= 2^(levels - 1) = " + std::to_string(min_size) + " for the " + std::to_string(levels) +
            " levels of channel_mult " + unet_list(o.channel_mult) + " (or use fewer levels)");
  const auto res = unet_resolutions(o);
  for (auto r : o.attention_resolutions)
    if (std::find(res.begin(), res.end(), r) == res.end())
      bad("attention_resolutions", unet_list(o.attention_resolutions),
          "sizes of the levels, a subset of " + unet_list(res) + " for image_size " +
              std::to_string(o.image_size) + " (or {} for attention only in the middle block)");
  // head_channels must divide the channels of every attention layer (the middle one always).
  for (size_t i = 0; i < res.size(); ++i) {
    const int64_t ch = o.base_channels * o.channel_mult[i];
    if ((i + 1 == res.size() || unet_has_attention(o, res[i])) && ch % o.head_channels != 0)
      bad("head_channels", std::to_string(o.head_channels),
          "a divisor of " + std::to_string(ch) + ", the channels of the attention at resolution " +
              std::to_string(res[i]) + " (base_channels × channel_mult[" + std::to_string(i) + "])");
  }
}

// ---------------------------------------------------------------- ResBlock
UNetResBlockImpl::UNetResBlockImpl(int64_t in, int64_t out, int64_t emb_dim, int64_t groups,
                                   double dropout_)
    : dropout(dropout_) {
  norm1 = register_module("norm1", unet_norm(groups, in));
  conv1 = register_module("conv1", unet_conv(in, out, 3));
  emb_proj = register_module("emb_proj", torch::nn::Linear(emb_dim, out));
  norm2 = register_module("norm2", unet_norm(groups, out));
  conv2 = register_module("conv2", unet_conv(out, out, 3));
  if (in != out) skip = register_module("skip", unet_conv(in, out, 1));
  unet_zero(conv2);  // the block starts as its skip path
}

torch::Tensor UNetResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = conv1(unet_group_norm_silu(norm1, x));
  // Time/class conditioning as a per-channel bias, added inside norm2's pass: SiLU(GroupNorm(h + e))
  // with e = Linear(emb) (B, out), in h's dtype.
  h = unet_group_norm_silu(norm2, h, emb_proj(emb));
  if (dropout > 0.0) h = torch::dropout(h, dropout, is_training());
  h = conv2(h);
  return (skip ? skip(x) : x) + h;
}

// ---------------------------------------------------------------- Attention
UNetAttentionImpl::UNetAttentionImpl(int64_t channels, int64_t head_channels, int64_t groups)
    : heads(channels / head_channels) {
  norm = register_module("norm", unet_norm(groups, channels));
  qkv = register_module("qkv", unet_conv(channels, 3 * channels, 1));
  proj = register_module("proj", unet_conv(channels, channels, 1));
  unet_zero(proj);  // the block starts as the identity
}

torch::Tensor UNetAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t L = H * W, d = C / heads;
  // The 3C qkv channels are ordered (head, {q, k, v}, d), so one reshape gives per (batch, head)
  // the (3d, L) matrix [q; k; v] — a view for contiguous x, one copy for channels-last. (split,
  // not narrow: its backward concatenates the three gradients instead of zero-filling thrice.)
  auto qkv3 = qkv(unet_group_norm(norm, x)).reshape({B * heads, 3 * d, L}).split(d, 1);
  const auto &q = qkv3[0], &k = qkv3[1], &v = qkv3[2];  // (B·heads, d, L)
  // Scores w[l, m] = q_l · k_m / √d over positions l, m (in place: bmm backward needs only q, k).
  auto w = torch::bmm(q.transpose(1, 2), k).mul_(1.0 / std::sqrt(double(d)));  // (B·heads, L, L)
  // Softmax over m; reduced precision (bf16) is upcast to float for it and cast back.
  auto a = w.scalar_type() == torch::kFloat ? torch::softmax(w, -1)
                                            : torch::softmax(w, -1, torch::kFloat).to(w.scalar_type());
  // o[l, c] = Σ_m a[l, m] · v[c, m]: (B·heads, L, d). `a` is used untransposed so that its
  // gradient, and the softmax backward, stay contiguous; only this (C·L per image, not heads·L²)
  // result is reordered, with one copy, into x's memory format.
  auto o5 = torch::bmm(a, v.transpose(1, 2)).reshape({B, heads, H, W, d});
  auto h = x.suggest_memory_format() == torch::MemoryFormat::ChannelsLast
               ? o5.permute({0, 2, 3, 1, 4}).reshape({B, H, W, C}).permute({0, 3, 1, 2})  // NHWC
               : o5.permute({0, 1, 4, 2, 3}).reshape({B, C, H, W});                      // NCHW
  return x + proj(h);
}

// ---------------------------------------------------------------- Block
UNetBlockImpl::UNetBlockImpl(int64_t in, int64_t out, bool attention, const UNetOptions& o) {
  res = register_module("res", UNetResBlock(in, out, 4 * o.base_channels, o.groups, o.dropout));
  if (attention) attn = register_module("attn", UNetAttention(out, o.head_channels, o.groups));
}

torch::Tensor UNetBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = res(x, emb);
  return attn ? attn(h) : h;
}

// ---------------------------------------------------------------- U-Net
UNetImpl::UNetImpl(const UNetOptions& o) : options_(o) {
  validate(o);
  const int64_t E = 4 * o.base_channels;  // time embedding width
  t1_ = register_module("t1", torch::nn::Linear(o.base_channels, E));
  t2_ = register_module("t2", torch::nn::Linear(E, E));
  if (o.num_classes > 0)  // + 1: the null class for classifier-free guidance
    label_emb_ = register_module("label_emb", torch::nn::Embedding(o.num_classes + 1, E));
  in_ = register_module("in", unet_conv(o.in_channels, o.base_channels, 3));
  down_ = register_module("down", torch::nn::ModuleList());
  downsample_ = register_module("downsample", torch::nn::ModuleList());
  up_ = register_module("up", torch::nn::ModuleList());
  upsample_ = register_module("upsample", torch::nn::ModuleList());
  bool going_up = false;
  const int64_t ch = unet_walk(
      o,
      [&](int64_t in, int64_t out, int64_t, bool attention) {
        (going_up ? up_ : down_)->push_back(UNetBlock(in, out, attention, o));
      },
      [&](int64_t c, int64_t) { downsample_->push_back(unet_conv(c, c, 3, 2)); },
      [&](int64_t c, int64_t) {
        mid1_ = register_module("mid1", UNetBlock(c, c, true, o));
        mid2_ = register_module("mid2", UNetResBlock(c, c, E, o.groups, o.dropout));
        going_up = true;
      },
      [&](int64_t c, int64_t) { upsample_->push_back(unet_conv(c, c, 3)); });
  out_norm_ = register_module("out_norm", unet_norm(o.groups, ch));
  out_ = register_module("out", unet_conv(ch, o.in_channels, 3));
  unet_zero(out_);  // the untrained model predicts 0, a stable start
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& labels) {
  const auto& o = options_;
  if (x.dim() != 4 || x.size(1) != o.in_channels || x.size(2) != o.image_size ||
      x.size(3) != o.image_size)
    throw Error("U-Net input has shape " + c10::str(x.sizes()) + ", expected (B, " +
                    std::to_string(o.in_channels) + ", " + std::to_string(o.image_size) + ", " +
                    std::to_string(o.image_size) + ")",
                "in_channels and image_size of the U-Net options must match the images");
  const int64_t B = x.size(0);
  if (t.dim() != 1 || t.size(0) != B)
    throw Error("U-Net timesteps have shape " + c10::str(t.sizes()) + ", expected (" +
                    std::to_string(B) + ")", "pass one timestep per image");

  // e = MLP(sinusoidal(t)) [+ Embedding(y)], SiLU'd once here for every ResBlock's projection.
  auto emb = t2_(torch::silu(t1_(timestep_embedding(t, o.base_channels))));
  if (label_emb_) {
    if (labels.defined() && (labels.dim() != 1 || labels.size(0) != B))
      throw Error("U-Net labels have shape " + c10::str(labels.sizes()) + ", expected (" +
                      std::to_string(B) + ")", "pass one label per image, or none for the null class");
    auto y = labels.defined() ? labels.to(torch::kLong)
                              : torch::full({B}, o.num_classes, torch::dtype(torch::kLong).device(x.device()));
    emb = emb + label_emb_(y);
  }
  emb = torch::silu(emb);

  // Down: push the input conv's output and every block's and downsample's output.
  const int64_t levels = int64_t(o.channel_mult.size());
  std::vector<torch::Tensor> hs;
  hs.reserve(size_t(levels * (o.blocks_per_level + 1)));
  auto h = in_(x);
  hs.push_back(h);
  size_t k = 0;
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t b = 0; b < o.blocks_per_level; ++b) {
      h = down_->at<UNetBlockImpl>(k++).forward(h, emb);
      hs.push_back(h);
    }
    if (i + 1 < levels) {
      h = downsample_->at<torch::nn::Conv2dImpl>(size_t(i)).forward(h);
      hs.push_back(h);
    }
  }

  h = mid2_(mid1_(h, emb), emb);

  // Up: each block concatenates (along channels) the most recent skip; between levels,
  // nearest-upsample to the next skip's size (2× for even sizes, 4 → 7 for odd) and Conv3×3.
  k = 0;
  for (int64_t i = levels - 1; i >= 0; --i) {
    for (int64_t b = 0; b <= o.blocks_per_level; ++b) {
      h = up_->at<UNetBlockImpl>(k++).forward(torch::cat({h, hs.back()}, 1), emb);
      hs.pop_back();
    }
    if (i > 0) {
      h = torch::upsample_nearest2d(h, hs.back().sizes().slice(2));
      h = upsample_->at<torch::nn::Conv2dImpl>(size_t(levels - 1 - i)).forward(h);
    }
  }
  return out_(unet_group_norm_silu(out_norm_, h));
}

// ---------------------------------------------------------------- FLOPs
double unet_forward_flops(const UNetOptions& o) {
  validate(o);
  const double E = 4.0 * double(o.base_channels), r0 = double(o.image_size);
  double f = 0.0;
  // k×k conv producing an r×r output: 2·in·out·k²·r²; linear: 2·in·out.
  auto conv = [&](double in, double out, double k, double r) { f += 2.0 * in * out * k * k * r * r; };
  auto linear = [&](double in, double out) { f += 2.0 * in * out; };
  auto res_block = [&](double in, double out, double r) {
    conv(in, out, 3, r);
    linear(E, out);
    conv(out, out, 3, r);
    if (in != out) conv(in, out, 1, r);
  };
  // qkv and proj 1×1 convs; QKᵀ and A·V each cost 2·L²·d per head, 2·L²·C over the heads.
  auto attention = [&](double c, double r) {
    const double L = r * r;
    conv(c, 3 * c, 1, r);
    f += 2.0 * (2.0 * L * L * c);
    conv(c, c, 1, r);
  };
  linear(double(o.base_channels), E);  // time embedding MLP
  linear(E, E);
  conv(double(o.in_channels), double(o.base_channels), 3, r0);  // input conv
  const int64_t ch = unet_walk(
      o,
      [&](int64_t in, int64_t out, int64_t r, bool attn) {
        res_block(double(in), double(out), double(r));
        if (attn) attention(double(out), double(r));
      },
      [&](int64_t c, int64_t r) { conv(double(c), double(c), 3, double((r + 1) / 2)); },
      [&](int64_t c, int64_t r) {
        res_block(double(c), double(c), double(r));
        attention(double(c), double(r));
        res_block(double(c), double(c), double(r));
      },
      [&](int64_t c, int64_t r) { conv(double(c), double(c), 3, double(r)); });
  conv(double(ch), double(o.in_channels), 3, r0);  // output conv
  return f;
}

}  // namespace diffuse
