// diffuse — restoration with a trained (unconditional or class-conditional) model:
// inpainting, super-resolution, colorization and editing, without retraining.
//
// A measurement y = A x + σ_y n of an unknown image x is given, with A a linear
// degradation that has a pseudo-inverse A⁺ (A A⁺ = I). The methods sample from
// (approximately) p(x | y) by steering a sampler:
//   ddnm    (Wang et al. 2023)  x̂₀ ← x̂₀ − A⁺(A x̂₀ − y): the range of A⁺ comes from y, the
//                               null space from the model (DDNM+: scaled for σ_y > 0);
//                               a Denoiser wrapper, so it runs with every sampler.
//   repaint (Lugmayr et al. 2022) masks only: known pixels are the forward-noised y at
//                               every step, unknown ones the model's; resampling jumps.
//   dps     (Chung et al. 2023) a gradient step on ‖y − A x̂₀(x_t)‖ through the network
//                               after each ancestral step.
//   sdedit  (Meng et al. 2022)  noise the input to strength s, denoise with any sampler.
// Latent runs (a LatentCodec): dps measures through the decoder, A D(x̂₀ / s); sdedit
// encodes its input; repaint and ddnm, which replace parts of x̂₀ by A⁺y, need A to act on the
// model's own space and are refused.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse {

// A composition of linear operators on images (B, C, H, W), applied in order.
class Degradation {
 public:
  enum class Op {
    Mask,        // x ↦ m ⊙ x, m ∈ {0, 1} (1 = known); A⁺ = A
    Downsample,  // f×f average pooling; A⁺ = nearest upsampling (A A⁺ = I)
    Gray,        // RGB → luma y = wᵀx, w = (0.299, 0.587, 0.114); A⁺ y = w y / ‖w‖²
  };
  static Degradation mask(const torch::Tensor& known);  // known: (H, W) or (1|C, H, W), 1 = known
  static Degradation downsample(int64_t factor);         // factor 2 or 4 (any ≥ 2 that divides the size)
  static Degradation gray();
  static Degradation identity();
  // This followed by `next` (e.g. gray().then(downsample(4)): gray and low resolution).
  Degradation then(const Degradation& next) const;

  torch::Tensor apply(const torch::Tensor& x) const;  // A x
  // A⁺ y: the pseudo-inverses in reverse order — exact for operators that act on
  // different axes (gray with downsampling), and for each one alone.
  torch::Tensor pinv(const torch::Tensor& y) const;
  // Shape of A x for an image of shape (C, H, W); throws when A does not apply.
  std::vector<int64_t> measurement_shape(const std::vector<int64_t>& image_shape) const;
  bool is_mask() const;           // exactly one Mask op
  torch::Tensor known() const;    // the mask of a mask degradation
  bool is_identity() const { return ops_.empty(); }
  std::string describe() const;   // "mask", "downsample×4 ∘ gray", …

  double sigma_y = 0.0;  // measurement noise standard deviation (in the model's [−1, 1] units)

 private:
  struct Step {
    Op op;
    torch::Tensor mask;  // Mask: (1|C, H, W) float
    int64_t factor = 1;  // Downsample
  };
  std::vector<Step> ops_;
};

// Colorization outputs that keep the gray input exactly and stay in [−1, 1]: x is moved
// along (1, 1, 1) onto the plane wᵀx = y (wᵀ1 = 1, so x' = x + (y − wᵀx)·1), then its chroma
// c = x' − y·1 (wᵀc = 0) is scaled by the largest s ∈ [0, 1] with y·1 + s·c inside [−1, 1]³:
// the luma is y, the hue is kept, saturation drops only where the colour would leave the
// range (a plain clamp would change the luma there). x: (B, 3, H, W), y: (B, 1, H, W).
torch::Tensor keep_luma(const torch::Tensor& x, const torch::Tensor& y);

// Masks from a spec: "box:x,y,w,h" (the box is missing), "half:left|right|top|bottom"
// (that half is missing), "random:p" (each pixel missing with probability p, seeded), or
// a PNG file whose white (≥ 128) pixels are missing — the diffusers convention. Returns
// the known-pixel mask (H, W) float {0, 1}.
torch::Tensor parse_mask(const std::string& spec, int64_t height, int64_t width, uint64_t seed = 0);

enum class RestoreMethod { Repaint, Ddnm, Dps, Sdedit };
std::string to_string(RestoreMethod m);
RestoreMethod parse_restore_method(const std::string& name);  // throws, listing the valid names

struct RestoreConfig {
  RestoreMethod method = RestoreMethod::Ddnm;
  // The sampler that is steered. ddnm and sdedit: any; repaint and dps: ddpm (their
  // updates are defined on the ancestral step). steps = 0: all T.
  SamplerConfig sampler;
  int64_t jump_length = 10;  // repaint: steps between resampling jumps (j)
  int64_t resample = 10;     // repaint: times each jump's segment is run (r; 1 = no resampling)
  double dps_scale = 1.0;    // dps: ζ, the step is ζ / ‖y − A x̂₀‖ · ∇ₓ‖y − A x̂₀‖²
  double strength = 0.5;     // sdedit: start at t = strength·T (0 keeps the input, 1 is pure noise)
};

// The autoencoder of a latent run (Rombach et al. 2022): the model's space is its latents
// z = E(x)·s, images are D(z / s). restore() takes images in and gives images out through it.
struct LatentCodec {
  std::function<torch::Tensor(const torch::Tensor&)> encode;  // images (B, C, H, W) in [−1, 1] → z
  std::function<torch::Tensor(const torch::Tensor&)> decode;  // z → images: differentiable, not clamped
};

// Throws, saying why; `latent`: the model works on a codec's latents (only dps and sdedit).
void validate(const RestoreConfig& cfg, const Degradation& A, bool latent = false);

// K restorations of one measurement. y: (K, ...) the measurement A x (+ noise) repeated
// K times — for sdedit the input image itself (A = identity). x_T: (K, C, H, W)
// standard normal, in the model's space. noise: the sampler's noise stream. cond: class
// labels (K) or none. callback: after every step (repaint: every move of its jump schedule,
// up or down), as for sample(), with the model's states; it may throw to stop the restoration.
// latent: the run's autoencoder (latent runs; else null); the result is then decoded, so
// restore() always returns images.
torch::Tensor restore(const Denoiser& denoiser, const Degradation& A, const torch::Tensor& y,
                      const torch::Tensor& x_T, const RestoreConfig& cfg, NoiseStream& noise,
                      const Conditioning& cond = {}, const StepCallback& callback = {},
                      const LatentCodec* latent = nullptr);

// The DDNM denoiser: wraps `inner` and replaces x̂₀ by its null-space correction
//   x̂₀' = x̂₀ − λ_t A⁺(A x̂₀ − y),
// λ_t = 1 (DDNM), or for σ_y > 0 (DDNM+, Wang et al. 2023 eq. 19) λ_t = min(1, σ_t / (a_t σ_y))
// with σ_t² = β̃_t and a_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t), the posterior's x₀ coefficient;
// ε̂ is recomputed from x̂₀'.
class DdnmDenoiser : public Denoiser {
 public:
  DdnmDenoiser(const Denoiser& inner, const Degradation& A, torch::Tensor y)
      : inner_(inner), A_(A), y_(std::move(y)) {}
  Prediction predict(const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning& cond = {}) const override;
  const NoiseSchedule& schedule() const override { return inner_.schedule(); }

 private:
  const Denoiser& inner_;
  const Degradation& A_;
  torch::Tensor y_;
};

}  // namespace diffuse
