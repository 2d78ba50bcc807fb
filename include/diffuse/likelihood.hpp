// diffuse — the variational bound on the negative log-likelihood (Ho et al. 2020,
// eq. 5 and Table 1; Nichol & Dhariwal 2021, §2 and their improved-diffusion code).
//
// In the paper's numbering (steps 1 … T, x₀ the data):
//   −log p_θ(x₀) ≤ L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0
//   L_T     = KL(q(x_T | x₀) ‖ N(0, I))                           the prior term
//   L_{t−1} = KL(q(x_{t−1} | x_t, x₀) ‖ p_θ(x_{t−1} | x_t)),  x_t ~ q(x_t | x₀)
//   L_0     = −log p_θ(x₀ | x₁),  x₁ ~ q(x₁ | x₀)                  the decoder
// diffuse's index t = 0 … T−1 is the paper's step t+1 (docs/math.md), so here:
//   L_T     uses ᾱ_{T−1};
//   term t ≥ 1 is the KL of step t: posterior N(μ̃_t(x_t, x₀), β̃_t) against the model
//           N(μ̃_t(x_t, x̂₀(x_t, t)), σ_t²);
//   term 0  is the decoder at x_0 (the paper's x₁), mean x̂₀(x_0, 0), variance σ_0².
// Every value is in nats per dimension (the mean over the dimensions of one datum);
// divide by log 2 for bits/dim.
//
// The model's reverse variance σ_t² is fixed (no learned variance), as in
// improved-diffusion's FIXED_SMALL / FIXED_LARGE:
//   BetaTilde  σ_t² = β̃_t for t ≥ 1, and σ_0² = β̃_1 (β̃_0 = 0: improved-diffusion's
//              posterior_log_variance_clipped)
//   Beta       σ_t² = β_t  for t ≥ 1, and σ_0² = β̃_1 (improved-diffusion's FIXED_LARGE
//              also puts β̃_1 at t = 0 "to get a better decoder log likelihood")
// With T = 1 there is no β̃_1 and σ_0² = β_0.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/denoiser.hpp"
#include "diffuse/sampler.hpp"  // DdpmVariance
#include "diffuse/schedule.hpp"

namespace diffuse {

// The decoder p_θ(x₀ | x₁) of the last step, i.e. what kind of data the bound is for.
enum class DecoderKind {
  // 8-bit data mapped to [−1, 1] by x = u/127.5 − 1 (diffuse's images): a Gaussian
  // integrated over the data's bin of width 2/255, with open outer bins (Ho et al.
  // 2020, eq. 13). The bound is on −log P of the discrete 8-bit data.
  Discretized8Bit,
  // Real-valued data: the Gaussian density N(x₀; x̂₀, σ_0²). The bound is on the
  // differential entropy's counterpart −log p(x₀) (can be negative).
  Continuous,
};
std::string to_string(DecoderKind k);
DecoderKind parse_decoder_kind(const std::string& name);  // "discretized-8bit", "continuous"

struct LikelihoodConfig {
  DecoderKind decoder = DecoderKind::Continuous;     // images: Discretized8Bit
  DdpmVariance variance = DdpmVariance::BetaTilde;    // σ_t² of the model's reverse steps
  // 0: the exact sum over all T − 1 KL terms (T − 1 network calls per datum, plus
  // one for L_0). K > 0: an unbiased stratified Monte-Carlo estimate of their sum:
  // 1 … T−1 is cut into K strata [e_k, e_{k+1}) of geometrically growing width
  // (bound_strata), each datum draws one t per stratum uniformly, and the estimate is
  // Σ_k (e_{k+1} − e_k) L_{t_k} (K + 1 calls per datum). The early terms, which
  // dominate, fall in strata of width 1 and are exact. L_T and L_0 are always exact.
  // K ≤ T − 1 (K = T − 1: every stratum is one timestep).
  int64_t t_samples = 0;
  // > 0: clamp x̂₀ to [−clip_x0, clip_x0] before forming the model's mean
  // (improved-diffusion's image_nll.py clips image models to [−1, 1]); 0: off.
  double clip_x0 = 0.0;
  uint64_t seed = 0;  // the noise of x_t (and the timesteps when t_samples > 0)
};
void validate(const LikelihoodConfig& cfg, const NoiseSchedule& s);  // throws diffuse::Error

// ── The pieces, elementwise, in float64 ───────────────────────────────────────

// KL(N(μ₁, e^{v₁}) ‖ N(μ₂, e^{v₂})) = ½ (−1 + v₂ − v₁ + e^{v₁ − v₂} + (μ₁ − μ₂)² e^{−v₂}),
// elementwise (v = log-variance; tensors broadcast).
torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1,
                        const torch::Tensor& mean2, const torch::Tensor& logvar2);
// −log N(x; μ, e^{v}) = ½ (log 2π + v + (x − μ)² e^{−v}), elementwise.
torch::Tensor gaussian_nll(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& logvar);
// −log ∫_bin N(y; μ, e^{v}) dy for x on the 8-bit grid of [−1, 1] (x = u/127.5 − 1):
// the bin is [x − 1/255, x + 1/255], widened to (−∞, −1 + 1/255] for u = 0 and to
// [1 − 1/255, ∞) for u = 255 (Ho et al. 2020, eq. 13). Uses the exact normal CDF in
// log space (improved-diffusion uses a tanh approximation and clamps at 1e−12).
torch::Tensor discretized_gaussian_nll(const torch::Tensor& x, const torch::Tensor& mean,
                                       const torch::Tensor& logvar);

// log σ_t² of the model's reverse step t (see the top of this file), for 0 ≤ t < T.
double reverse_log_variance(const NoiseSchedule& s, DdpmVariance v, int64_t t);

// L_T per datum: mean over dims of KL(N(√ᾱ_{T−1} x₀, 1 − ᾱ_{T−1}) ‖ N(0, 1)).
// x0: (B, ...). Returns (B) float64, nats/dim.
torch::Tensor prior_term(const NoiseSchedule& s, const torch::Tensor& x0);

// The bound's term at timestep t for given x₀ and x_t (both (B, ...)), one t for the
// batch or one per datum (t: (B) int64): the KL for t ≥ 1, the decoder NLL for t = 0.
// The denoiser sees x_t in x0's dtype. Returns (B) float64, nats/dim.
torch::Tensor bound_term(const Denoiser& d, const LikelihoodConfig& cfg, const torch::Tensor& x0,
                         const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning& cond = {});

// ── The whole bound for a batch ────────────────────────────────────────────────

struct VariationalBound {
  torch::Tensor prior;    // (B) L_T
  torch::Tensor decoder;  // (B) L_0
  torch::Tensor kl;       // (B) Σ_{t=1}^{T−1} of the KL terms (exact, or the MC estimate)
  torch::Tensor total;    // (B) prior + kl + decoder: the bound, nats/dim
  torch::Tensor terms;    // (B, T) term of each timestep (column 0: L_0); NaN where not drawn (MC)
};

// The bound of x0 (B, ...) under d. Data i uses the noise of stream (seed, first_index + i),
// so results do not depend on how the data are batched. on_call(k) is called after the
// k-th network call (k = 1 … T, or K + 1). Throws diffuse::Error for a bad config or, with
// the discretized decoder, for x0 off the 8-bit grid of [−1, 1].
VariationalBound variational_bound(const Denoiser& d, const LikelihoodConfig& cfg, const torch::Tensor& x0,
                                   const Conditioning& cond = {}, int64_t first_index = 0,
                                   const std::function<void(int64_t calls)>& on_call = {});
// The batches' bounds, concatenated along the data.
VariationalBound concat(const std::vector<VariationalBound>& parts);

// The strata of the Monte-Carlo estimate: e_0 = 1 < e_1 < … < e_K = T with
// e_k = min(max(e_{k−1} + 1, ⌊T^{k/K}⌋), T − (K − k)). Needs 1 ≤ K ≤ T − 1.
std::vector<int64_t> bound_strata(int64_t T, int64_t K);

// Network calls per datum of variational_bound.
int64_t bound_calls_per_datum(const NoiseSchedule& s, const LikelihoodConfig& cfg);

}  // namespace diffuse
