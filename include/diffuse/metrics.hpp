// diffuse — distances between sample sets.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace diffuse {

// Sliced Wasserstein-2 distance between point sets a (N, D) and b (M, D):
//   SW₂(a, b)² = E_θ W₂²(θᵀa, θᵀb),  θ uniform on the unit sphere,
// estimated with `projections` random directions (seeded) and, per direction,
// the 1-D W₂ between the empirical quantile functions (N and M may differ:
// both are evaluated at max(N, M) evenly spaced quantile levels). Float64.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections = 512,
                          uint64_t seed = 0);

}  // namespace diffuse
