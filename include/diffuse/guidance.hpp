// diffuse — classifier-free guidance (Ho & Salimans 2022) as a Denoiser wrapper.
//
//   ε̂ = ε_u + w (ε_c − ε_u),   ε_c = ε(x_t, t, y),  ε_u = ε(x_t, t, ∅)
//
// w = 1 is the plain conditional model, w = 0 the unconditional one, w > 1
// strengthens the class (the diffusers convention for guidance_scale). x̂₀ is
// recomputed from ε̂. Both passes run as one batch of 2B.
#pragma once
#include "diffuse/denoiser.hpp"

namespace diffuse {

class GuidedDenoiser : public Denoiser {
 public:
  // inner: a class-conditional denoiser; null_label: the index of the null class.
  GuidedDenoiser(const Denoiser& inner, double scale, int64_t null_label)
      : inner_(inner), scale_(scale), null_label_(null_label) {}
  Prediction predict(const torch::Tensor& x_t, const torch::Tensor& t,
                     const Conditioning& cond = {}) const override;
  const NoiseSchedule& schedule() const override { return inner_.schedule(); }

 private:
  const Denoiser& inner_;
  double scale_;
  int64_t null_label_;
};

}  // namespace diffuse
