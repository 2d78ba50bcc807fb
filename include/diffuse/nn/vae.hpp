// diffuse — the variational autoencoder of seed 003 (Kingma & Welling 2014), the model the
// seed builds DDPM up from:
//
//   encoder  q_φ(z | x) = N(μ_φ(x), diag σ²_φ(x))          (the approximate posterior)
//   prior    p(z)       = N(0, I)
//   decoder  p_θ(x | z)  a likelihood that fits 8-bit images (VaeLikelihood)
//
//   log p_θ(x) ≥ ELBO = E_{q(z|x)}[log p_θ(x | z)] − KL(q_φ(z | x) ‖ p(z))          (seed 003)
//   KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)                    (closed form)
//   z = μ + σ ⊙ ε, ε ~ N(0, I)                                        (reparameterization)
//   IWAE_k = E[log (1/k) Σ_i p_θ(x | z_i) p(z_i) / q_φ(z_i | x)], z_i ~ q  (Burda et al. 2016):
//            ELBO ≤ IWAE_k ≤ IWAE_{k+1} ≤ log p_θ(x) in expectation.
//
// Images are in the model's [−1, 1] (8-bit u ↦ u / 127.5 − 1), as for the diffusion models,
// so the likelihoods' units (nats per image; bits/dim = nats / (D ln 2)) compare with
// `diffuse eval nll` of a diffusion run number to number.
//
// The network: a small convolutional encoder/decoder (image side divisible by 4):
//   encoder  Conv(C→b, 4, s2) SiLU Conv(b→2b, 4, s2) SiLU Linear(2b·(S/4)² → 2·latent) = (μ, log σ²)
//   decoder  Linear(latent → 2b·(S/4)²) SiLU ConvT(2b→b, 4, s2) SiLU ConvT(b→C·P, 4, s2)
// with P = 1 output per pixel (Bernoulli logits) or 2 (mean and log-scale / log-variance).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

namespace diffuse {

enum class VaeLikelihood {
  // Binarized data: x̃ = [x > 0] (pixel ≥ 128), p(x̃ | z) = Π Bernoulli(σ(logit)). The
  // measure of the binarized-MNIST literature (≈ 81–90 nats for a conv VAE on MNIST).
  Bernoulli,
  // 8-bit data: a logistic of mean μ and scale s integrated over each pixel's bin
  // [x − 1/255, x + 1/255], the outer bins open (PixelCNN++, Salimans et al. 2017).
  DiscretizedLogistic,
  // 8-bit data: the same with a Gaussian N(μ, e^v) (the DDPM decoder's, Ho et al. 2020 eq. 13).
  DiscretizedGaussian,
};
std::string to_string(VaeLikelihood k);
VaeLikelihood parse_vae_likelihood(const std::string& name);  // "bernoulli", "logistic", "gaussian"
std::vector<std::string> vae_likelihood_names();

struct VaeOptions {
  int64_t in_channels = 1;   // C (set from the data)
  int64_t image_size = 28;   // S, divisible by 4 (set from the data)
  int64_t latent_dim = 16;   // dimension of z
  int64_t base_channels = 32;  // b: the encoder's widths are b and 2b
  VaeLikelihood likelihood = VaeLikelihood::DiscretizedLogistic;
};
void validate(const VaeOptions& o);  // throws diffuse::Error naming the field

class ConvVaeImpl : public torch::nn::Module {
 public:
  explicit ConvVaeImpl(const VaeOptions& options);
  struct Posterior {
    torch::Tensor mean, logvar;  // (B, latent)
  };
  Posterior encode(const torch::Tensor& x);       // x: (B, C, S, S) in [−1, 1]
  torch::Tensor decode(const torch::Tensor& z);   // (B, latent) → likelihood parameters (B, C·P, S, S)
  const VaeOptions& options() const { return options_; }

 private:
  VaeOptions options_;
  int64_t side_ = 7;  // S / 4
  torch::nn::Conv2d enc1_{nullptr}, enc2_{nullptr};
  torch::nn::Linear enc_out_{nullptr}, dec_in_{nullptr};
  torch::nn::ConvTranspose2d dec1_{nullptr}, dec2_{nullptr};
};
TORCH_MODULE(ConvVae);

// log p(x | params) per image (B), nats, summed over the C·S·S dimensions; params as decode()
// gives them. x on the 8-bit grid of [−1, 1].
torch::Tensor vae_log_likelihood(VaeLikelihood k, const torch::Tensor& x, const torch::Tensor& params);
// The decoder's picture of params in [−1, 1]: Bernoulli 2σ(logit) − 1, otherwise the mean (clamped).
torch::Tensor vae_mean_image(VaeLikelihood k, const torch::Tensor& params);
// KL(N(μ, e^v) ‖ N(0, I)) = ½ Σ_j (μ_j² + e^{v_j} − 1 − v_j), per row (B).
torch::Tensor kl_to_standard_normal(const torch::Tensor& mean, const torch::Tensor& logvar);

struct ElboTerms {
  torch::Tensor elbo;            // (B) nats: reconstruction − kl
  torch::Tensor reconstruction;  // (B) log p(x | z), z = μ + σ ⊙ ε (one sample)
  torch::Tensor kl;              // (B) closed form
};
// The ELBO of images x with the noise eps (B, latent) of the reparameterization.
ElboTerms vae_elbo(ConvVae& vae, const torch::Tensor& x, const torch::Tensor& eps);
// The IWAE bound with k = eps.size(0) samples, eps: (k, B, latent); per image (B), nats.
torch::Tensor vae_iwae(ConvVae& vae, const torch::Tensor& x, const torch::Tensor& eps);

}  // namespace diffuse
