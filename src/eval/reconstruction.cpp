// PSNR, SSIM and the reconstructions of autoencoder runs (see reconstruction.hpp).
#include "diffuse/reconstruction.hpp"

#include <torch/torch.h>

#include <cmath>

#include "diffuse/error.hpp"

namespace diffuse {

namespace {
void check_pair(const torch::Tensor& x, const torch::Tensor& y, const char* what) {
  if (x.dim() != 4 || x.sizes() != y.sizes())
    throw Error(std::string(what) + ": images must be two (B, C, H, W) tensors of the same shape");
}

// The normalised 1-D Gaussian of σ = 1.5 over 11 taps (radius ⌊3.5 σ + 0.5⌋ = 5, skimage's truncate).
torch::Tensor ssim_window_1d() {
  auto r = torch::arange(-5, 6, torch::kFloat64);
  auto g = torch::exp(-r.pow(2) / (2 * 1.5 * 1.5));
  return g / g.sum();
}
}  // namespace

torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& y, double data_range) {
  check_pair(x, y, "psnr");
  auto mse = (x.to(torch::kFloat64) - y.to(torch::kFloat64)).pow(2).flatten(1).mean(1);
  return 10.0 * torch::log10(data_range * data_range / mse);
}

torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& y, double data_range) {
  check_pair(x, y, "ssim");
  if (x.size(2) < 11 || x.size(3) < 11) throw Error("ssim: images must be at least 11×11 (the Gaussian window)");
  const int64_t B = x.size(0), C = x.size(1);
  // Separable valid filtering of every channel on its own: (B·C, 1, H, W).
  auto a = x.to(torch::kFloat64).reshape({B * C, 1, x.size(2), x.size(3)});
  auto b = y.to(torch::kFloat64).reshape({B * C, 1, y.size(2), y.size(3)});
  const auto g = ssim_window_1d();
  const auto gh = g.view({1, 1, 1, 11}), gv = g.view({1, 1, 11, 1});
  auto filt = [&](const torch::Tensor& t) { return torch::conv2d(torch::conv2d(t, gh), gv); };
  const double c1 = std::pow(0.01 * data_range, 2), c2 = std::pow(0.03 * data_range, 2);
  auto mx = filt(a), my = filt(b);
  auto sxx = filt(a * a) - mx * mx, syy = filt(b * b) - my * my, sxy = filt(a * b) - mx * my;
  auto map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
  return map.reshape({B, -1}).mean(1);
}

torch::Tensor reconstruct(const LoadedRun& run, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const auto dev = run.network.module->parameters().front().device();
  auto xin = x.to(dev);
  if (run.is_vae()) {
    auto vae = run.network.vae.ptr();
    return vae_mean_image(run.config.vae.likelihood, vae->decode(vae->encode(xin).mean)).cpu();
  }
  if (run.is_autoencoder()) {
    auto ae = run.network.autoencoder.ptr();
    return ae->decode(ae->encode(xin).mean).clamp(-1, 1).cpu();
  }
  throw Error((run.dir.empty() ? std::string("this run") : "'" + run.dir + "'") +
                  " is a diffusion run: it has no encoder to reconstruct images with",
              "reconstructions are of VAE runs (--model vae) and autoencoder runs (--model autoencoder-kl)");
}

}  // namespace diffuse
