// Sigmoid schedule of seed 002 (信号生成及扩散参数):
//   β_t = sigmoid(f(t)) · β_max,  sigmoid(x) = 1/(1 + e^{−x}),
//   f linear in t, from f_start at t = 0 to f_end at t = T−1.
// The seed's signal example uses T = 100 and β_max = 0.1.
#include <cmath>

#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> sigmoid_betas(int64_t T, double beta_max, double f_start, double f_end) {
  std::vector<double> f = linear_betas(T, f_start, f_end);
  for (double& v : f) v = beta_max / (1.0 + std::exp(-v));
  return f;
}

}  // namespace diffuse
