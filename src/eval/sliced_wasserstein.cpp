#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "diffuse/error.hpp"
#include "diffuse/metrics.hpp"

namespace diffuse {

namespace {
// Quantiles of sorted rows s (P, N) at levels (k + 0.5)/n, k = 0 … n−1, by linear interpolation.
torch::Tensor quantiles(const torch::Tensor& s, int64_t n) {
  const int64_t N = s.size(1);
  auto pos = (torch::arange(n, torch::kFloat64) + 0.5) / double(n) * double(N) - 0.5;
  pos = pos.clamp(0, double(N - 1));
  auto lo = pos.floor().to(torch::kLong), hi = pos.ceil().to(torch::kLong);
  auto w = (pos - lo.to(torch::kFloat64)).unsqueeze(0);
  return s.index_select(1, lo) * (1 - w) + s.index_select(1, hi) * w;
}
}  // namespace

double sliced_wasserstein(const torch::Tensor& a_in, const torch::Tensor& b_in, int64_t projections,
                          uint64_t seed) {
  if (a_in.dim() != 2 || b_in.dim() != 2 || a_in.size(1) != b_in.size(1))
    throw Error("sliced Wasserstein needs two (N, D) sets of the same D");
  if (a_in.size(0) < 1 || b_in.size(0) < 1 || projections < 1)
    throw Error("sliced Wasserstein needs non-empty sets and at least one projection");
  auto a = a_in.to(torch::kCPU, torch::kFloat64), b = b_in.to(torch::kCPU, torch::kFloat64);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto theta = torch::randn({a.size(1), projections}, gen, torch::kFloat64);
  theta = theta / theta.norm(2, 0, true);  // unit directions, (D, P)
  // Projections as rows (P, N), sorted along the contiguous dimension.
  auto pa = std::get<0>(torch::matmul(theta.t(), a.t()).contiguous().sort(1));
  auto pb = std::get<0>(torch::matmul(theta.t(), b.t()).contiguous().sort(1));
  const int64_t n = std::max(a.size(0), b.size(0));
  auto qa = a.size(0) == n ? pa : quantiles(pa, n);
  auto qb = b.size(0) == n ? pb : quantiles(pb, n);
  return std::sqrt((qa - qb).pow(2).mean().item<double>());
}

}  // namespace diffuse
