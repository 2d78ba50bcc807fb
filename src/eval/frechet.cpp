// Gaussian statistics and the Fréchet distance; see metrics.hpp for the formula.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "diffuse/error.hpp"
#include "diffuse/metrics.hpp"

namespace diffuse {

GaussianStats gaussian_stats(const torch::Tensor& x) {
  if (x.dim() != 2 || x.size(0) < 2)
    throw Error("Gaussian statistics need (N, D) features with N >= 2, got " + c10::str(x.sizes()));
  auto f = x.to(torch::kFloat64);
  auto mean = f.mean(0);
  auto c = f - mean;
  return {mean, torch::matmul(c.t(), c) / double(f.size(0) - 1), f.size(0)};
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (a.mean.numel() != b.mean.numel())
    throw Error("Fréchet distance between features of different sizes: " + std::to_string(a.mean.numel()) +
                " and " + std::to_string(b.mean.numel()));
  auto sym = [](const torch::Tensor& m) { return 0.5 * (m + m.t()); };
  auto [la, Ua] = torch::linalg::eigh(sym(a.cov), "L");
  auto root_a = torch::matmul(Ua * la.clamp_min(0).sqrt(), Ua.t());        // Σ₁^{1/2}
  auto inner = sym(torch::matmul(torch::matmul(root_a, b.cov), root_a));  // Σ₁^{1/2} Σ₂ Σ₁^{1/2}
  const double tr_sqrt = torch::linalg::eigvalsh(inner, "L").clamp_min(0).sqrt().sum().item<double>();
  const double d_mean = (a.mean - b.mean).pow(2).sum().item<double>();
  return d_mean + a.cov.trace().item<double>() + b.cov.trace().item<double>() - 2.0 * tr_sqrt;
}

double frechet_distance_of_samples(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 2 || y.dim() != 2 || x.size(0) < 2 || y.size(0) < 2 || x.size(1) != y.size(1))
    throw Error("Fréchet distance of samples needs (N₁, D) and (N₂, D) with N >= 2, got " + c10::str(x.sizes()) +
                " and " + c10::str(y.sizes()));
  const int64_t n1 = x.size(0), n2 = y.size(0), D = x.size(1);
  if (std::min(n1, n2) >= D) return frechet_distance(gaussian_stats(x), gaussian_stats(y));
  auto a = x.to(torch::kFloat64), b = y.to(torch::kFloat64);
  const auto mu1 = a.mean(0), mu2 = b.mean(0);
  a = a - mu1;
  b = b - mu2;
  const double s1 = double(n1 - 1), s2 = double(n2 - 1);
  // tr (Σ₁Σ₂)^{1/2} = Σ σ_i(A Bᵀ) / √((N₁−1)(N₂−1))
  const double tr_sqrt = at::linalg_svdvals(torch::matmul(a, b.t())).sum().item<double>() / std::sqrt(s1 * s2);
  const double d_mean = (mu1 - mu2).pow(2).sum().item<double>();
  return d_mean + a.pow(2).sum().item<double>() / s1 + b.pow(2).sum().item<double>() / s2 - 2.0 * tr_sqrt;
}

}  // namespace diffuse
