// Weighted diffusion losses, all expressed as w(t)·‖ε̂ − ε‖² (see diffusion.hpp).
#include <torch/torch.h>

#include <algorithm>

#include "diffuse/diffusion.hpp"
#include "diffuse/error.hpp"
#include "core/enum_names.hpp"

namespace diffuse {

namespace {
const EnumNames<LossWeighting>& weighting_names() {
  static const EnumNames<LossWeighting> n("loss weighting", {{LossWeighting::Simple, "simple"},
                                                             {LossWeighting::X0, "x0"},
                                                             {LossWeighting::V, "v"},
                                                             {LossWeighting::MinSnr, "min-snr"},
                                                             {LossWeighting::TruncatedSnr, "truncated-snr"}});
  return n;
}
}  // namespace

std::string to_string(LossWeighting w) { return weighting_names().name(w); }
std::vector<std::string> loss_weighting_names() { return weighting_names().names(); }
LossWeighting parse_loss_weighting(const std::string& name) { return weighting_names().parse(name); }

torch::Tensor loss_weight(const NoiseSchedule& s, PredictionType p, const LossConfig& cfg,
                          const torch::Tensor& t) {
  if (cfg.weighting == LossWeighting::MinSnr && !(cfg.min_snr_gamma > 0))
    throw Error("min_snr_gamma must be positive", "the usual choice is 5");
  std::vector<double> w(s.T());
  for (int64_t i = 0; i < s.T(); ++i) {
    const double snr = s.snr(i);
    double w_eps = 1.0;  // weight on the ε-space error
    switch (cfg.weighting) {
      case LossWeighting::Simple: w_eps = 1.0; break;
      case LossWeighting::X0: w_eps = 1.0 / snr; break;
      case LossWeighting::V: w_eps = 1.0 + 1.0 / snr; break;
      case LossWeighting::MinSnr: w_eps = std::min(snr, cfg.min_snr_gamma) / snr; break;
      case LossWeighting::TruncatedSnr: w_eps = std::max(1.0, 1.0 / snr); break;  // max(SNR, 1) on x₀
    }
    // ‖ε̂ − ε‖² = c²·‖native error‖²: c² = 1 (ε), SNR (x₀: ε − ε̂ = −(a/s)(x₀ − x̂₀)),
    // ᾱ (v: v − v̂ = (ε − ε̂)/a).
    const double c2 = p == PredictionType::Epsilon ? 1.0
                      : p == PredictionType::Sample ? snr
                                                    : s.alpha_bar(i);
    w[i] = w_eps * c2;
  }
  return gather_coef(w, t, 1).view({-1});
}

torch::Tensor diffusion_loss(const NoiseSchedule& s, PredictionType p, const LossConfig& cfg,
                             const torch::Tensor& out, const torch::Tensor& target,
                             const torch::Tensor& t) {
  auto err = (out.to(torch::kFloat32) - target.to(torch::kFloat32)).pow(2);
  auto per_sample = err.flatten(1).mean(1);  // (B)
  auto w = loss_weight(s, p, cfg, t).to(per_sample.dtype());
  return (w * per_sample).mean();
}

}  // namespace diffuse
