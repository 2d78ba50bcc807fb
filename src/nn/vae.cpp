// The variational autoencoder of seed 003: network, likelihoods, ELBO and IWAE (see vae.hpp).
#include "diffuse/nn/vae.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/enum_names.hpp"
#include "diffuse/error.hpp"
#include "diffuse/likelihood.hpp"

namespace diffuse {

namespace {
const EnumNames<VaeLikelihood>& likelihood_names() {
  static const EnumNames<VaeLikelihood> n("likelihood", {{VaeLikelihood::Bernoulli, "bernoulli"},
                                                          {VaeLikelihood::DiscretizedLogistic, "logistic"},
                                                          {VaeLikelihood::DiscretizedGaussian, "gaussian"}});
  return n;
}
int64_t params_per_pixel(VaeLikelihood k) { return k == VaeLikelihood::Bernoulli ? 1 : 2; }
constexpr double kLog2Pi = 1.8378770664093453;
}  // namespace

std::string to_string(VaeLikelihood k) { return likelihood_names().name(k); }
VaeLikelihood parse_vae_likelihood(const std::string& name) { return likelihood_names().parse(name); }
std::vector<std::string> vae_likelihood_names() { return likelihood_names().names(); }

void validate(const VaeOptions& o) {
  if (o.in_channels != 1 && o.in_channels != 3) throw Error("vae: in_channels must be 1 or 3");
  if (o.image_size < 4 || o.image_size % 4 != 0 || o.image_size > 256)
    throw Error("vae: the image side must be a multiple of 4 in 4 … 256, got " + std::to_string(o.image_size),
                "28 (Fashion-MNIST), 32 or 64 (emoji)");
  if (o.latent_dim < 1 || o.latent_dim > 4096) throw Error("vae.latent_dim must be in 1 … 4096");
  if (o.base_channels < 1 || o.base_channels > 1024) throw Error("vae.base_channels must be in 1 … 1024");
}

ConvVaeImpl::ConvVaeImpl(const VaeOptions& o) : options_(o), side_(o.image_size / 4) {
  validate(o);
  namespace nn = torch::nn;
  const int64_t b = o.base_channels, flat = 2 * b * side_ * side_;
  enc1_ = register_module("encoder_conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels, b, 4).stride(2).padding(1)));
  enc2_ = register_module("encoder_conv2", nn::Conv2d(nn::Conv2dOptions(b, 2 * b, 4).stride(2).padding(1)));
  enc_out_ = register_module("encoder_out", nn::Linear(flat, 2 * o.latent_dim));
  dec_in_ = register_module("decoder_in", nn::Linear(o.latent_dim, flat));
  dec1_ = register_module("decoder_conv1", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2 * b, b, 4).stride(2).padding(1)));
  dec2_ = register_module("decoder_conv2", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(
                                               b, o.in_channels * params_per_pixel(o.likelihood), 4).stride(2).padding(1)));
}

ConvVaeImpl::Posterior ConvVaeImpl::encode(const torch::Tensor& x) {
  auto h = torch::silu(enc2_->forward(torch::silu(enc1_->forward(x))));
  auto out = enc_out_->forward(h.flatten(1));
  auto parts = out.chunk(2, 1);
  // log σ² kept in a range where e^v neither underflows nor overflows in float32.
  return {parts[0], parts[1].clamp(-30.0, 20.0)};
}

torch::Tensor ConvVaeImpl::decode(const torch::Tensor& z) {
  auto h = torch::silu(dec_in_->forward(z)).view({z.size(0), 2 * options_.base_channels, side_, side_});
  return dec2_->forward(torch::silu(dec1_->forward(h)));
}

torch::Tensor vae_log_likelihood(VaeLikelihood k, const torch::Tensor& x, const torch::Tensor& params) {
  const int64_t C = x.size(1);
  if (params.size(1) != C * params_per_pixel(k))
    throw Error("vae: " + std::to_string(params.size(1)) + " likelihood channels for " + std::to_string(C) +
                "-channel images (" + to_string(k) + ")");
  torch::Tensor logp;
  switch (k) {
    case VaeLikelihood::Bernoulli: {
      // log Bernoulli(x̃; σ(ℓ)) = x̃ log σ(ℓ) + (1 − x̃) log σ(−ℓ) = −BCE(ℓ, x̃)
      auto target = (x > 0).to(params.dtype());
      logp = -torch::binary_cross_entropy_with_logits(params, target, {}, {}, at::Reduction::None);
      break;
    }
    case VaeLikelihood::DiscretizedGaussian: {
      auto mean = params.slice(1, 0, C), logvar = params.slice(1, C, 2 * C).clamp(-14.0, 6.0);
      logp = -discretized_gaussian_nll(x, mean, logvar);
      break;
    }
    case VaeLikelihood::DiscretizedLogistic: {
      // P(bin) = σ(b) − σ(a), a = (x − 1/255 − μ)/s, b = (x + 1/255 − μ)/s; u = 0: σ(b); u = 255: 1 − σ(a) = σ(−a).
      // In log space, on the side of the tail so nothing cancels (as discretized_gaussian_nll):
      //   a ≤ 0: log σ(b) + log(1 − e^{log σ(a) − log σ(b)});  a > 0: log σ(−a) + log(1 − e^{log σ(−b) − log σ(−a)}).
      auto mean = params.slice(1, 0, C), log_s = params.slice(1, C, 2 * C).clamp(-7.0, 5.0);
      constexpr double kHalfBin = 1.0 / 255.0;
      auto inv_s = torch::exp(-log_s);
      auto a = (x - kHalfBin - mean) * inv_s, b = (x + kHalfBin - mean) * inv_s;
      auto log_sig = [](const torch::Tensor& y) { return -torch::softplus(-y); };  // log σ(y)
      auto lo_b = log_sig(b), lo_a = log_sig(a), up_a = log_sig(-a), up_b = log_sig(-b);
      // The bin is never empty (b − a = 2/(255 s) > 0); clamp the difference's log argument away from 0.
      auto mid_low = lo_b + torch::log(-torch::expm1((lo_a - lo_b).clamp_max(-1e-12)));
      auto mid_high = up_a + torch::log(-torch::expm1((up_b - up_a).clamp_max(-1e-12)));
      auto mid = torch::where(a > 0, mid_high, mid_low);
      auto u = (x * 127.5 + 127.5).round();
      logp = torch::where(u <= 0, lo_b, torch::where(u >= 255, up_a, mid));
      break;
    }
  }
  return logp.flatten(1).sum(1);
}

torch::Tensor vae_mean_image(VaeLikelihood k, const torch::Tensor& params) {
  if (k == VaeLikelihood::Bernoulli) return torch::sigmoid(params) * 2 - 1;
  return params.slice(1, 0, params.size(1) / 2).clamp(-1, 1);
}

torch::Tensor kl_to_standard_normal(const torch::Tensor& mean, const torch::Tensor& logvar) {
  return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1);
}

ElboTerms vae_elbo(ConvVae& vae, const torch::Tensor& x, const torch::Tensor& eps) {
  auto q = vae->encode(x);
  auto z = q.mean + torch::exp(0.5 * q.logvar) * eps;  // reparameterization
  auto rec = vae_log_likelihood(vae->options().likelihood, x, vae->decode(z));
  auto kl = kl_to_standard_normal(q.mean, q.logvar);
  return {rec - kl, rec, kl};
}

torch::Tensor vae_iwae(ConvVae& vae, const torch::Tensor& x, const torch::Tensor& eps) {
  if (eps.dim() != 3 || eps.size(1) != x.size(0)) throw Error("vae_iwae: eps must be (k, B, latent)");
  const int64_t k = eps.size(0);
  auto q = vae->encode(x);
  auto sd = torch::exp(0.5 * q.logvar);
  std::vector<torch::Tensor> log_w;
  for (int64_t i = 0; i < k; ++i) {
    auto z = q.mean + sd * eps[i];
    auto log_px_z = vae_log_likelihood(vae->options().likelihood, x, vae->decode(z));
    auto log_pz = -0.5 * (z.pow(2) + kLog2Pi).sum(1);                       // log N(z; 0, I)
    auto log_qz = -0.5 * (eps[i].pow(2) + kLog2Pi + q.logvar).sum(1);      // log N(z; μ, σ²), (z − μ)/σ = ε
    log_w.push_back(log_px_z + log_pz - log_qz);
  }
  // log (1/k) Σ_i w_i = logsumexp_i log w_i − log k
  return torch::logsumexp(torch::stack(log_w), 0) - std::log(double(k));
}

}  // namespace diffuse
