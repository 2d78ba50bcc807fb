#include <torch/torch.h>

#include "diffuse/guidance.hpp"

namespace diffuse {

Prediction GuidedDenoiser::predict(const torch::Tensor& x_t, const torch::Tensor& t,
                                   const Conditioning& cond) const {
  if (!cond.labels.defined()) return inner_.predict(x_t, t, cond);  // no class: unconditional
  if (scale_ == 1.0) return inner_.predict(x_t, t, cond);
  auto null = torch::full_like(cond.labels, null_label_);
  if (scale_ == 0.0) return inner_.predict(x_t, t, {null});
  auto p = inner_.predict(torch::cat({x_t, x_t}), torch::cat({t, t}), {torch::cat({cond.labels, null})});
  auto eps = p.eps.chunk(2);
  auto e = eps[1] + scale_ * (eps[0] - eps[1]);  // ε_u + w (ε_c − ε_u)
  return {e, x0_from_eps(inner_.schedule(), x_t, t, e)};
}

}  // namespace diffuse
