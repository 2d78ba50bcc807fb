// Quadratic β schedule: √β linear from √beta_start to √beta_end
// (diffusers' "scaled_linear", used by Stable Diffusion).
#include <cmath>

#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> quadratic_betas(int64_t T, double beta_start, double beta_end) {
  std::vector<double> b = linear_betas(T, std::sqrt(beta_start), std::sqrt(beta_end));
  for (double& v : b) v *= v;
  return b;
}

}  // namespace diffuse
