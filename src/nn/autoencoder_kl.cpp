// diffuse — the KL autoencoder of latent diffusion as diffusers' AutoencoderKL; the picture is in
// diffuse/nn/autoencoder_kl.hpp.
#include "diffuse/nn/autoencoder_kl.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/nn/group_norm_silu.hpp"
#include "diffuse/nn/vae.hpp"  // kl_to_standard_normal

namespace diffuse {
namespace {

// (Names carry an akl_ prefix: the library is a unity build, where the anonymous namespaces of
// several .cpp files share one translation unit.)

constexpr double kAklNormEps = 1e-6;  // every GroupNorm of diffusers' Encoder/Decoder (resnet_eps)

// GroupNorm with gcd(groups, channels) groups: the requested count when it divides the channels
// (diffusers' only case), else the largest divisor of the channels that also divides it.
torch::nn::GroupNorm akl_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(
      torch::nn::GroupNormOptions(std::gcd(groups, channels), channels).eps(kAklNormEps));
}

// SiLU(norm(x)) as one operator (diffuse/nn/group_norm_silu.hpp; fused on CPU float32 NCHW).
torch::Tensor akl_norm_silu(const torch::nn::GroupNorm& norm, const torch::Tensor& x) {
  return group_norm_silu(x, norm->options.num_groups(), norm->weight, norm->bias, norm->options.eps());
}

// k×k convolution, "same" padding unless given.
torch::nn::Conv2d akl_conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1,
                           int64_t padding = -1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                               .stride(stride)
                               .padding(padding < 0 ? k / 2 : padding));
}

std::string akl_list(const std::vector<int64_t>& v) {
  std::vector<std::string> s;
  for (auto x : v) s.push_back(std::to_string(x));
  return "{" + join(s) + "}";
}

// "(B, C, H, W) of shape …" checks on the public entry points.
void akl_check_4d(const torch::Tensor& t, int64_t channels, const std::string& what,
                  const std::string& expected) {
  if (!t.defined() || t.dim() != 4 || t.size(1) != channels)
    throw Error("AutoencoderKL " + what + " has shape " +
                    (t.defined() ? c10::str(t.sizes()) : std::string("(undefined)")) + ", expected " +
                    expected,
                "tensors are channels-first (B, C, H, W)");
}

// The reparameterization's noise must have the posterior's shape (B, L, H/f, W/f).
void akl_check_eps(const torch::Tensor& eps, const torch::Tensor& mean) {
  if (!eps.defined() || eps.sizes() != mean.sizes())
    throw Error("AutoencoderKL noise eps has shape " +
                    (eps.defined() ? c10::str(eps.sizes()) : std::string("(undefined)")) +
                    ", expected the posterior's " + c10::str(mean.sizes()),
                "draw eps as (B, latent_channels, H/f, W/f)");
}

// ---------------------------------------------------------------- config.json values
using AklJson = nlohmann::json;

int64_t akl_json_int(const AklJson& v, const std::string& key) {
  // JSON integers only: nlohmann casts a float such as 1e30 to an integer type unchecked.
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())))
    throw Error("AutoencoderKL config: bad value for '" + key + "': " + v.dump(), "expected a whole number");
  return v.get<int64_t>();
}

struct AklField {
  std::string key;
  std::function<void(const AklJson&, AutoencoderKLOptions&)> read;
};

const std::vector<AklField>& akl_fields() {
  using O = AutoencoderKLOptions;
  auto integer = [](const char* key, int64_t O::*m) {
    return AklField{key, [key, m](const AklJson& v, O& o) { o.*m = akl_json_int(v, key); }};
  };
  static const std::vector<AklField> f = {
      integer("in_channels", &O::in_channels),
      integer("out_channels", &O::out_channels),
      integer("latent_channels", &O::latent_channels),
      {"block_out_channels",
       [](const AklJson& v, O& o) {
         if (!v.is_array())
           throw Error("AutoencoderKL config: bad value for 'block_out_channels': " + v.dump(),
                       "expected a list of whole numbers, e.g. [32, 64, 64]");
         o.block_out_channels.clear();
         for (const auto& e : v) o.block_out_channels.push_back(akl_json_int(e, "block_out_channels"));
       }},
      integer("layers_per_block", &O::layers_per_block),
      integer("norm_num_groups", &O::norm_num_groups),
      {"mid_block_add_attention",
       [](const AklJson& v, O& o) {
         if (!v.is_boolean())
           throw Error("AutoencoderKL config: bad value for 'mid_block_add_attention': " + v.dump(),
                       "expected true or false");
         o.mid_block_attention = v.get<bool>();
       }},
      {"scaling_factor",
       [](const AklJson& v, O& o) {
         if (!v.is_number())
           throw Error("AutoencoderKL config: bad value for 'scaling_factor': " + v.dump(),
                       "expected a number, e.g. 0.18215");
         o.scaling_factor = v.get<double>();
       }},
      integer("sample_size", &O::sample_size)};
  return f;
}

// Keys of diffusers' AutoencoderKL config accepted without being read: bookkeeping (_class_name,
// _diffusers_version, force_upcast), latent statistics diffuse does not use (shift_factor,
// latents_mean, latents_std), and choices this network fixes (block types, act_fn "silu", both
// quant convs present). Their values are not checked: act_fn other than "silu" or use_quant_conv
// false would describe a different network.
const std::vector<std::string>& akl_ignored_keys() {
  static const std::vector<std::string> k = {
      "_class_name",  "_diffusers_version", "down_block_types", "up_block_types",
      "act_fn",       "force_upcast",       "shift_factor",     "latents_mean",
      "latents_std",  "use_quant_conv",     "use_post_quant_conv"};
  return k;
}

}  // namespace

// ---------------------------------------------------------------- options
int64_t downsample_factor(const AutoencoderKLOptions& o) {
  return int64_t(1) << (o.block_out_channels.empty() ? 0 : o.block_out_channels.size() - 1);
}

void validate(const AutoencoderKLOptions& o) {
  auto bad = [](const std::string& field, const std::string& got, const std::string& valid) {
    throw Error("invalid AutoencoderKL option " + field + " = " + got, "valid: " + valid);
  };
  auto in_range = [&](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      bad(field, std::to_string(v), "an integer in " + std::to_string(lo) + " … " + std::to_string(hi));
  };
  in_range("in_channels", o.in_channels, 1, 64);
  in_range("out_channels", o.out_channels, 1, 64);
  in_range("latent_channels", o.latent_channels, 1, 64);
  const auto& boc = o.block_out_channels;
  if (boc.empty() || boc.size() > 4)
    bad("block_out_channels", akl_list(boc),
        "1 to 4 levels (f = 1, 2, 4, 8) of 1 … 4096 channels each, e.g. {32, 64, 64}");
  for (auto c : boc)
    if (c < 1 || c > 4096)
      bad("block_out_channels", akl_list(boc), "channels in 1 … 4096 per level, e.g. {32, 64, 64}");
  in_range("layers_per_block", o.layers_per_block, 1, 8);
  in_range("norm_num_groups", o.norm_num_groups, 1, 4096);
  if (!(std::isfinite(o.scaling_factor) && o.scaling_factor > 0))
    bad("scaling_factor", c10::str(o.scaling_factor), "a finite number > 0, e.g. 1 or 0.18215");
  const int64_t f = downsample_factor(o);
  if (o.sample_size < 1 || o.sample_size % f != 0)
    bad("sample_size", std::to_string(o.sample_size),
        "a positive multiple of f = " + std::to_string(f) + " (2^(levels − 1) for the " +
            std::to_string(boc.size()) + " levels of block_out_channels " + akl_list(boc) + ")");
}

std::string autoencoder_kl_config_json(const AutoencoderKLOptions& o) {
  const size_t n = o.block_out_channels.size();
  AklJson j = AklJson::object();  // std::map: keys sorted, as diffusers' to_json_string writes them
  j["_class_name"] = "AutoencoderKL";
  j["in_channels"] = o.in_channels;
  j["out_channels"] = o.out_channels;
  j["latent_channels"] = o.latent_channels;
  j["block_out_channels"] = o.block_out_channels;
  j["layers_per_block"] = o.layers_per_block;
  j["norm_num_groups"] = o.norm_num_groups;
  j["mid_block_add_attention"] = o.mid_block_attention;
  j["scaling_factor"] = o.scaling_factor;
  j["sample_size"] = o.sample_size;
  j["down_block_types"] = std::vector<std::string>(n, "DownEncoderBlock2D");
  j["up_block_types"] = std::vector<std::string>(n, "UpDecoderBlock2D");
  j["act_fn"] = "silu";
  j["force_upcast"] = true;
  return j.dump(2);
}

AutoencoderKLOptions autoencoder_kl_config_from_json(const std::string& text) {
  AklJson j;
  try {
    j = AklJson::parse(text);
  } catch (const AklJson::parse_error& e) {
    throw Error(std::string("AutoencoderKL config is not valid JSON: ") + e.what(),
                "expected a diffusers config.json object");
  }
  if (!j.is_object())
    throw Error("AutoencoderKL config must be a JSON object, got " + std::string(j.type_name()),
                "expected a diffusers config.json object");
  AutoencoderKLOptions o;
  const auto& ignored = akl_ignored_keys();
  for (const auto& [key, value] : j.items()) {
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    const AklField* field = nullptr;
    for (const auto& f : akl_fields())
      if (f.key == key) field = &f;
    if (!field) {
      std::vector<std::string> keys;
      for (const auto& f : akl_fields()) keys.push_back(f.key);
      throw Error("unknown key '" + key + "' in the AutoencoderKL config",
                  "valid keys: " + join(keys) + " (accepted and ignored: " + join(ignored) + ")");
    }
    field->read(value, o);
  }
  validate(o);
  return o;
}

// ---------------------------------------------------------------- blocks
KlResnetBlock2DImpl::KlResnetBlock2DImpl(int64_t in, int64_t out, int64_t groups) {
  norm1 = register_module("norm1", akl_norm(groups, in));
  conv1 = register_module("conv1", akl_conv(in, out, 3));
  norm2 = register_module("norm2", akl_norm(groups, out));
  conv2 = register_module("conv2", akl_conv(out, out, 3));
  if (in != out) conv_shortcut = register_module("conv_shortcut", akl_conv(in, out, 1));
}

torch::Tensor KlResnetBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = conv1(akl_norm_silu(norm1, x));
  h = conv2(akl_norm_silu(norm2, h));  // (diffusers' dropout, p = 0, between SiLU and conv2)
  return (conv_shortcut ? conv_shortcut(x) : x) + h;  // / output_scale_factor = 1
}

KlAttentionImpl::KlAttentionImpl(int64_t c, int64_t groups) {
  group_norm = register_module("group_norm", akl_norm(groups, c));
  to_q = register_module("to_q", torch::nn::Linear(c, c));
  to_k = register_module("to_k", torch::nn::Linear(c, c));
  to_v = register_module("to_v", torch::nn::Linear(c, c));
  to_out = register_module("to_out", torch::nn::ModuleList());
  to_out->push_back(torch::nn::Linear(c, c));
  to_out->push_back(torch::nn::Dropout(0.0));  // no parameters; kept for the index of to_out.0
}

torch::Tensor KlAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  // The H·W positions as a sequence of C-vectors: (B, HW, C).
  auto h = group_norm(x).reshape({B, C, H * W}).transpose(1, 2);
  auto q = to_q(h), k = to_k(h), v = to_v(h);
  // w[l, m] = q_l · k_m / √C (one head of dim C); softmax over m in fp32 (diffusers' upcast_softmax).
  auto w = torch::bmm(q, k.transpose(1, 2)).mul_(1.0 / std::sqrt(double(C)));  // (B, HW, HW)
  auto a = torch::softmax(w, -1, torch::kFloat).to(w.scalar_type());
  auto o = to_out->at<torch::nn::LinearImpl>(0).forward(torch::bmm(a, v));  // (B, HW, C); to_out.1 = id
  return x + o.transpose(1, 2).reshape({B, C, H, W});  // residual; / rescale_output_factor = 1
}

KlDownsample2DImpl::KlDownsample2DImpl(int64_t c) {
  conv = register_module("conv", akl_conv(c, c, 3, 2, 0));
}

torch::Tensor KlDownsample2DImpl::forward(const torch::Tensor& x) {
  return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));  // (left, right, top, bottom)
}

KlUpsample2DImpl::KlUpsample2DImpl(int64_t c) { conv = register_module("conv", akl_conv(c, c, 3)); }

torch::Tensor KlUpsample2DImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;  // as F.interpolate(x, scale_factor=2.0, mode="nearest")
  return conv(F::interpolate(x, F::InterpolateFuncOptions()
                                    .scale_factor(std::vector<double>{2.0, 2.0})
                                    .mode(torch::kNearest)));
}

KlMidBlock2DImpl::KlMidBlock2DImpl(int64_t c, int64_t groups, bool attention) {
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (attention) attentions->push_back(KlAttention(c, groups));
  resnets = register_module("resnets", torch::nn::ModuleList());
  resnets->push_back(KlResnetBlock2D(c, c, groups));
  resnets->push_back(KlResnetBlock2D(c, c, groups));
}

torch::Tensor KlMidBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = resnets->at<KlResnetBlock2DImpl>(0).forward(x);
  if (!attentions->is_empty()) h = attentions->at<KlAttentionImpl>(0).forward(h);
  return resnets->at<KlResnetBlock2DImpl>(1).forward(h);
}

KlDownEncoderBlock2DImpl::KlDownEncoderBlock2DImpl(int64_t in, int64_t out, int64_t layers,
                                                   int64_t groups, bool downsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resnets->push_back(KlResnetBlock2D(i == 0 ? in : out, out, groups));
  if (downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsamplers->push_back(KlDownsample2D(out));
  }
}

torch::Tensor KlDownEncoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (const auto& r : *resnets) h = r->as<KlResnetBlock2DImpl>()->forward(h);
  return downsamplers ? downsamplers->at<KlDownsample2DImpl>(0).forward(h) : h;
}

KlUpDecoderBlock2DImpl::KlUpDecoderBlock2DImpl(int64_t in, int64_t out, int64_t layers,
                                               int64_t groups, bool upsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resnets->push_back(KlResnetBlock2D(i == 0 ? in : out, out, groups));
  if (upsample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsamplers->push_back(KlUpsample2D(out));
  }
}

torch::Tensor KlUpDecoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (const auto& r : *resnets) h = r->as<KlResnetBlock2DImpl>()->forward(h);
  return upsamplers ? upsamplers->at<KlUpsample2DImpl>(0).forward(h) : h;
}

// ---------------------------------------------------------------- encoder, decoder
KlEncoderImpl::KlEncoderImpl(const AutoencoderKLOptions& o) {
  const auto& boc = o.block_out_channels;
  const int64_t g = o.norm_num_groups;
  conv_in = register_module("conv_in", akl_conv(o.in_channels, boc.front(), 3));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t ch = boc.front();
  for (size_t i = 0; i < boc.size(); ++i) {  // every level but the last halves the side
    down_blocks->push_back(KlDownEncoderBlock2D(ch, boc[i], o.layers_per_block, g, i + 1 < boc.size()));
    ch = boc[i];
  }
  mid_block = register_module("mid_block", KlMidBlock2D(ch, g, o.mid_block_attention));
  conv_norm_out = register_module("conv_norm_out", akl_norm(g, ch));
  conv_out = register_module("conv_out", akl_conv(ch, 2 * o.latent_channels, 3));  // double_z
}

torch::Tensor KlEncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in(x);
  for (const auto& b : *down_blocks) h = b->as<KlDownEncoderBlock2DImpl>()->forward(h);
  return conv_out(akl_norm_silu(conv_norm_out, mid_block(h)));
}

KlDecoderImpl::KlDecoderImpl(const AutoencoderKLOptions& o) {
  const auto& boc = o.block_out_channels;
  const int64_t g = o.norm_num_groups;
  conv_in = register_module("conv_in", akl_conv(o.latent_channels, boc.back(), 3));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  mid_block = register_module("mid_block", KlMidBlock2D(boc.back(), g, o.mid_block_attention));
  int64_t ch = boc.back();
  for (size_t i = 0; i < boc.size(); ++i) {  // levels deepest first; all but the last double the side
    const int64_t out = boc[boc.size() - 1 - i];
    up_blocks->push_back(KlUpDecoderBlock2D(ch, out, o.layers_per_block + 1, g, i + 1 < boc.size()));
    ch = out;
  }
  conv_norm_out = register_module("conv_norm_out", akl_norm(g, ch));
  conv_out = register_module("conv_out", akl_conv(ch, o.out_channels, 3));
}

torch::Tensor KlDecoderImpl::forward(const torch::Tensor& z) {
  auto h = mid_block(conv_in(z));
  for (const auto& b : *up_blocks) h = b->as<KlUpDecoderBlock2DImpl>()->forward(h);
  return conv_out(akl_norm_silu(conv_norm_out, h));
}

// ---------------------------------------------------------------- autoencoder
AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLOptions& o) : options_(o) {
  validate(o);
  const int64_t L = o.latent_channels;
  encoder_ = register_module("encoder", KlEncoder(o));
  decoder_ = register_module("decoder", KlDecoder(o));
  quant_conv_ = register_module("quant_conv", akl_conv(2 * L, 2 * L, 1));
  post_quant_conv_ = register_module("post_quant_conv", akl_conv(L, L, 1));
}

AutoencoderKLImpl::Posterior AutoencoderKLImpl::encode(const torch::Tensor& x) {
  const auto& o = options_;
  const int64_t f = downsample_factor(o);
  akl_check_4d(x, o.in_channels, "input", "(B, " + std::to_string(o.in_channels) + ", H, W)");
  if (x.size(2) % f != 0 || x.size(3) % f != 0)
    throw Error("AutoencoderKL input has side " + std::to_string(x.size(2)) + "×" +
                    std::to_string(x.size(3)) + ", not divisible by f = " + std::to_string(f),
                "the decoder gives back f·(side/f): crop or pad the images to a multiple of f");
  // DiagonalGaussianDistribution(moments): mean, logvar = chunk(moments, 2, dim=1), logvar clamped.
  auto moments = quant_conv_(encoder_(x)).chunk(2, 1);  // (B, 2L, H/f, W/f) → 2 × (B, L, H/f, W/f)
  return {moments[0], moments[1].clamp(-30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) {
  akl_check_4d(z, options_.latent_channels, "latent",
               "(B, " + std::to_string(options_.latent_channels) + ", h, w)");
  return decoder_(post_quant_conv_(z));
}

torch::Tensor AutoencoderKLImpl::forward(const torch::Tensor& x, const torch::Tensor& eps) {
  auto q = encode(x);
  akl_check_eps(eps, q.mean);
  return decode(q.mean + torch::exp(0.5 * q.logvar) * eps);  // z = μ + σ ⊙ ε
}

// ---------------------------------------------------------------- KL and loss
torch::Tensor kl_diagonal_gaussian(const torch::Tensor& mean, const torch::Tensor& logvar) {
  if (mean.dim() < 2 || mean.sizes() != logvar.sizes())
    throw Error("kl_diagonal_gaussian: mean " + c10::str(mean.sizes()) + " and logvar " +
                    c10::str(logvar.sizes()) + " must have the same shape (B, …) with a batch dim",
                "pass the posterior of AutoencoderKL::encode");
  return kl_to_standard_normal(mean.flatten(1), logvar.flatten(1));  // sums dim 1 of (B, L·h·w)
}

AutoencoderKLLoss autoencoder_kl_loss(AutoencoderKL& model, const torch::Tensor& x,
                                      const torch::Tensor& eps, double kl_weight) {
  if (!(std::isfinite(kl_weight) && kl_weight >= 0))
    throw Error("autoencoder_kl_loss: kl_weight = " + c10::str(kl_weight), "a finite number >= 0, e.g. 1e-6");
  const auto& o = model->options();
  if (o.out_channels != o.in_channels)
    throw Error("autoencoder_kl_loss: out_channels " + std::to_string(o.out_channels) +
                    " differs from in_channels " + std::to_string(o.in_channels),
                "a reconstruction loss needs out_channels = in_channels");
  auto q = model->encode(x);  // checks x
  akl_check_eps(eps, q.mean);
  auto x_hat = model->decode(q.mean + torch::exp(0.5 * q.logvar) * eps);  // as forward(x, eps)
  auto rec = torch::mse_loss(x_hat, x);  // mean over B·C·H·W
  const double pixel_elements = double(x.numel() / x.size(0));  // C·H·W
  auto kl = kl_diagonal_gaussian(q.mean, q.logvar).mean() / pixel_elements;
  return {rec + kl_weight * kl, rec, kl};
}

}  // namespace diffuse
