// Cosine schedule (Nichol & Dhariwal 2021, eq. 17):
//   ᾱ(t) = f(t)/f(0),  f(t) = cos²(((t/T) + s)/(1 + s) · π/2)
//   β_t = min(1 − ᾱ(t+1)/ᾱ(t), max_beta)   for t = 0 … T−1
#include <algorithm>
#include <cmath>

#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> cosine_betas(int64_t T, double s, double max_beta) {
  const double half_pi = std::acos(-1.0) / 2.0;
  auto f = [&](double t) {
    const double c = std::cos((t / double(T) + s) / (1.0 + s) * half_pi);
    return c * c;
  };
  std::vector<double> b(T);
  for (int64_t i = 0; i < T; ++i) b[i] = std::min(1.0 - f(double(i + 1)) / f(double(i)), max_beta);
  return b;
}

}  // namespace diffuse
