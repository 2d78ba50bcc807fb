// Test support for the restoration tests: a Gaussian prior x ~ N(μ, Σ) on tiny images with
// its exact denoiser standing in for the network, linear degradations written out as
// matrices, and the closed forms the methods are checked against. For y = A x + σ_y n,
// n ~ N(0, I), the posterior is Gaussian:
//   G = Σ Aᵀ (A Σ Aᵀ + σ_y² I)⁺,   E[x | y] = μ + G (y − A μ),   Cov[x | y] = Σ − G A Σ.
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <utility>
#include <vector>

#include "diffuse/denoiser.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse::restore_oracle {

// The analytic denoiser of N(μ, Σ) on images: (B, C, H, W) ↔ (B, D), D = C·H·W.
class ImageGaussian : public Denoiser {
 public:
  // shape: (C, H, W); mean: (D); cov: (D, D)
  ImageGaussian(std::vector<int64_t> shape, torch::Tensor mean, torch::Tensor cov, NoiseSchedule s)
      : shape_(std::move(shape)), g_(std::move(mean), std::move(cov), std::move(s)) {}
  Prediction predict(const torch::Tensor& x, const torch::Tensor& t, const Conditioning& c = {}) const override {
    auto p = g_.predict(x.reshape({x.size(0), dim()}), t, c);
    return {p.eps.reshape(x.sizes()), p.x0.reshape(x.sizes())};
  }
  const NoiseSchedule& schedule() const override { return g_.schedule(); }
  const std::vector<int64_t>& shape() const { return shape_; }
  std::vector<int64_t> batch_shape(int64_t n) const { return {n, shape_[0], shape_[1], shape_[2]}; }
  int64_t dim() const { return shape_[0] * shape_[1] * shape_[2]; }
  const torch::Tensor& mean() const { return g_.mean(); }  // (D) float64
  const torch::Tensor& cov() const { return g_.cov(); }    // (D, D) float64
  // n draws from the prior: (n, C, H, W) float64
  torch::Tensor draw(int64_t n, uint64_t seed) const {
    auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto L = torch::linalg::cholesky(cov());
    auto z = torch::randn({n, dim()}, g, torch::kFloat64);
    return (mean() + torch::matmul(z, L.t())).reshape(batch_shape(n));
  }

 private:
  std::vector<int64_t> shape_;
  GaussianDenoiser g_;
};

// A smooth prior on (C, H, W) images, linear DDPM schedule, T = 1000:
//   Σ = K_c ⊗ K_s + 0.01 I,  (K_s)_ij = 0.4 exp(−|p_i − p_j| / 1.5) over pixel positions p,
// K_c = 1 for gray; for RGB, correlations 0.7 between neighbouring channels and 0.4 between
// R and B, so that luma says something about colour, as in photographs. μ = linspace(−0.2, 0.3).
inline ImageGaussian smooth_prior(int64_t C, int64_t H, int64_t W) {
  const auto f64 = torch::dtype(torch::kFloat64);
  auto ij = torch::stack(torch::meshgrid({torch::arange(H), torch::arange(W)}, "ij"), -1).reshape({H * W, 2}).to(f64);
  auto Ks = 0.4 * torch::exp(-torch::cdist(ij, ij) / 1.5);
  auto Kc = C == 1 ? torch::ones({1, 1}, f64) : torch::tensor({1.0, 0.7, 0.4, 0.7, 1.0, 0.7, 0.4, 0.7, 1.0}, f64).view({3, 3});
  const int64_t D = C * H * W;
  auto cov = torch::kron(Kc, Ks) + 0.01 * torch::eye(D, f64);
  return ImageGaussian({C, H, W}, torch::linspace(-0.2, 0.3, D, f64), cov, make_schedule(ScheduleConfig{}));
}

// A as a matrix (m, D): A applied to the D basis images of shape (C, H, W).
inline torch::Tensor matrix_of(const Degradation& A, const std::vector<int64_t>& shape) {
  const int64_t D = shape[0] * shape[1] * shape[2];
  auto basis = torch::eye(D, torch::kFloat64).reshape({D, shape[0], shape[1], shape[2]});
  return A.apply(basis).reshape({D, -1}).t().contiguous();
}

// A⁺ as the library computes it, as a matrix (D, m): A.pinv applied to the m basis measurements.
inline torch::Tensor pinv_matrix_of(const Degradation& A, const std::vector<int64_t>& shape) {
  auto ms = A.measurement_shape(shape);
  const int64_t m = ms[0] * ms[1] * ms[2];
  auto basis = torch::eye(m, torch::kFloat64).reshape({m, ms[0], ms[1], ms[2]});
  return A.pinv(basis).reshape({m, -1}).t().contiguous();
}

struct PosteriorLaw {
  torch::Tensor mean;  // (B, D): one row per measurement
  torch::Tensor cov;   // (D, D): the same for every measurement
};

// x | y for x ~ prior, y = A x + σ_y n. Am: (m, D); y: (B, m).
inline PosteriorLaw posterior(const ImageGaussian& p, const torch::Tensor& Am, const torch::Tensor& y, double sigma_y) {
  const auto& S = p.cov();
  const int64_t m = Am.size(0);
  auto Syy = torch::matmul(torch::matmul(Am, S), Am.t()) + sigma_y * sigma_y * torch::eye(m, torch::kFloat64);
  auto G = torch::matmul(torch::matmul(S, Am.t()), torch::linalg::pinv(Syy, 1e-10, /*hermitian=*/true));
  auto mean = p.mean() + torch::matmul(y - torch::matmul(Am, p.mean()), G.t());
  return {mean, S - torch::matmul(torch::matmul(G, Am), S)};
}

// K restorations of the rows of y (K, ...), the starting noise and the sampler's noise drawn by
// two shared generators (seed, seed + 1): one draw per step instead of one per sample. (K, C, H, W).
inline torch::Tensor restore_draws(const ImageGaussian& p, const Degradation& A, const torch::Tensor& y,
                                   const RestoreConfig& cfg, uint64_t seed) {
  const int64_t K = y.size(0);
  auto init = NoiseStream::shared(at::make_generator<at::CPUGeneratorImpl>(seed), K);
  auto noise = NoiseStream::shared(at::make_generator<at::CPUGeneratorImpl>(seed + 1), K);
  auto x_T = init.randn(p.shape(), torch::dtype(torch::kFloat64));
  return restore(p, A, y, x_T, cfg, noise);
}

// How far K draws (K, D) are from N(mean, cov), in units of their sampling error:
//   mean_z = max_i |x̄_i − mean_i| / √(cov_ii / K)        (≈ N(0, 1) per coordinate)
//   cov_z  = ‖Ĉ − cov‖_F / √((‖cov‖_F² + (tr cov)²) / (K − 1))
// — the denominator is E‖Ĉ − cov‖_F² for Gaussian draws, Var Ĉ_ij = (C_ij² + C_ii C_jj)/(K − 1);
// cov_z ≈ 1 for an exact sampler. Coordinates with cov_ii ≈ 0 (known pixels) are left out of mean_z.
struct Discrepancy {
  double mean_z, cov_z;
};
inline Discrepancy discrepancy(const torch::Tensor& draws, const torch::Tensor& mean, const torch::Tensor& cov) {
  const int64_t K = draws.size(0);
  auto xs = draws.reshape({K, -1}).to(torch::kFloat64);
  auto xbar = xs.mean(0);
  auto centred = xs - xbar;
  auto C = torch::matmul(centred.t(), centred) / double(K - 1);
  auto var = cov.diagonal();
  auto free = var.gt(1e-12);
  auto z = ((xbar - mean.reshape({-1})).abs() / (var.clamp_min(1e-300) / double(K)).sqrt()).masked_select(free);
  const double sd = std::sqrt((cov.pow(2).sum() + cov.trace().pow(2)).item<double>() / double(K - 1));
  return {z.numel() ? z.max().item<double>() : 0.0, (C - cov).norm().item<double>() / sd};
}

}  // namespace diffuse::restore_oracle
