// sin² schedule of seed 001 (§前向扩散过程): β_t = 1 − cos²(π t / 2T) = sin²(π t / 2T)
// for the paper's t = 1 … T (our index i = t − 1), capped at max_beta since β_T = 1.
#include <algorithm>
#include <cmath>

#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> sin2_betas(int64_t T, double max_beta) {
  const double pi = std::acos(-1.0);
  std::vector<double> b(T);
  for (int64_t i = 0; i < T; ++i) {
    const double c = std::cos(pi * double(i + 1) / (2.0 * double(T)));
    b[i] = std::min(1.0 - c * c, max_beta);
  }
  return b;
}

}  // namespace diffuse
