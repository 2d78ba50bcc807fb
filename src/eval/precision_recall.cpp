// Improved precision and recall (Kynkäänniemi et al. 2019); see metrics.hpp.
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/metrics.hpp"

namespace diffuse {
namespace {

constexpr int64_t kBlock = 1024;

// Distance of every point of `set` to its k-th nearest neighbour in `set`, itself excluded.
torch::Tensor kth_radius(const torch::Tensor& set, int64_t k) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < set.size(0); i += kBlock) {
    auto d = torch::cdist(set.slice(0, i, i + kBlock), set);  // (b, N); the self distance 0 is the 1st
    parts.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false)).select(1, k));
  }
  return torch::cat(parts);
}

// Fraction of `points` inside some ball (centers[j], radii[j]).
double covered(const torch::Tensor& points, const torch::Tensor& centers, const torch::Tensor& radii) {
  int64_t inside = 0;
  for (int64_t i = 0; i < points.size(0); i += kBlock) {
    auto d = torch::cdist(points.slice(0, i, i + kBlock), centers);  // (b, N)
    inside += d.le(radii.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return double(inside) / double(points.size(0));
}

}  // namespace

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k) {
  if (real.dim() != 2 || fake.dim() != 2 || real.size(1) != fake.size(1))
    throw Error("precision/recall needs two (N, D) feature sets of the same D");
  if (k < 1 || real.size(0) <= k || fake.size(0) <= k)
    throw Error("precision/recall with k = " + std::to_string(k) + " needs more than k points in each set");
  torch::NoGradGuard no_grad;
  auto r = real.to(torch::kFloat64), f = fake.to(torch::kFloat64);
  PrecisionRecall out;
  out.k = k;
  out.precision = covered(f, r, kth_radius(r, k));
  out.recall = covered(r, f, kth_radius(f, k));
  return out;
}

}  // namespace diffuse
