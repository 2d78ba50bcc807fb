// Gaussian statistics and the Fréchet distance; see metrics.hpp for the formula.
#include <torch/torch.h>

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

}  // namespace diffuse
