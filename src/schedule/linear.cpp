// Linear β schedule (Ho et al. 2020, §4): β_t linear from beta_start to beta_end.
#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> linear_betas(int64_t T, double beta_start, double beta_end) {
  std::vector<double> b(T);
  for (int64_t i = 0; i < T; ++i)
    b[i] = T == 1 ? beta_start : beta_start + (beta_end - beta_start) * double(i) / double(T - 1);
  return b;
}

}  // namespace diffuse
