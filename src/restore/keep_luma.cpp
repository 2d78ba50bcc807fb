// Colorizations that keep their gray input exactly inside the pixel range (see restore.hpp).
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"

namespace diffuse {

torch::Tensor keep_luma(const torch::Tensor& x, const torch::Tensor& y) {
  if (x.dim() != 4 || x.size(1) != 3) throw Error("keep_luma: expected RGB images (B, 3, H, W)");
  if (y.dim() != 4 || y.size(1) != 1 || y.size(0) != x.size(0) || y.size(2) != x.size(2) || y.size(3) != x.size(3))
    throw Error("keep_luma: the gray images must be (B, 1, H, W) of the colour images' size");
  const auto target = y.to(x.dtype()).clamp(-1, 1);
  // wᵀ1 = 1: moving x along (1, 1, 1) by (y − wᵀx) puts its luma at y; c = x' − y·1 is its
  // chroma (wᵀc = 0), here simply x − wᵀx·1.
  const auto c = x - Degradation::gray().apply(x);
  // The largest s ≤ 1 with −1 ≤ y + s·c_k ≤ 1 for every channel k: s_k = (1 − y)/c_k for
  // c_k > 0, (−1 − y)/c_k for c_k < 0 (both ≥ 0 because |y| ≤ 1).
  const auto room = torch::where(c > 0, (1 - target) / c.clamp_min(1e-12),
                                 torch::where(c < 0, (-1 - target) / c.clamp_max(-1e-12), torch::ones_like(c)));
  const auto s = std::get<0>(room.min(1, true)).clamp(0, 1);
  return (target + s * c).clamp(-1, 1);  // the clamp only removes rounding below 1e-7
}

}  // namespace diffuse
