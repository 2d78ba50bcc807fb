// The progressive-distillation target x̃ (Salimans & Ho 2022, Algorithm 2, eq. 8–9): two
// teacher DDIM steps t → t' → t'', then the x₀ that makes one DDIM step t → t'' land on the same
// point. Formulas in include/diffuse/distill.hpp.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "diffuse/distill.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {

// (B, 1, …, 1) float64 column of per-row values, to broadcast against `like` (B, ...).
torch::Tensor target_column(const std::vector<double>& v, const torch::Tensor& like) {
  std::vector<int64_t> shape(size_t(std::max<int64_t>(like.dim(), 1)), 1);
  shape[0] = int64_t(v.size());
  return torch::tensor(v, torch::dtype(torch::kFloat64)).view(shape).to(like.device());
}

// √ᾱ (sqrt_alpha_bar = true) or √(1 − ᾱ) of each point.
std::vector<double> target_roots(const std::vector<GridPoint>& p, bool sqrt_alpha_bar) {
  std::vector<double> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = std::sqrt(sqrt_alpha_bar ? p[i].alpha_bar : 1.0 - p[i].alpha_bar);
  return out;
}

// A DDIM step (η = 0) per row onto the points `to`: √ᾱ_to x̂₀ + √(1 − ᾱ_to) ε̂, as sampler/ddim.cpp.
torch::Tensor target_ddim_step(const Prediction& p, const std::vector<GridPoint>& to) {
  auto a = target_column(target_roots(to, true), p.x0).to(p.x0.dtype());
  auto s = target_column(target_roots(to, false), p.x0).to(p.x0.dtype());
  return a * p.x0 + s * p.eps;
}

Prediction target_predict(const Denoiser& teacher, const torch::Tensor& z, const std::vector<GridPoint>& at,
                          const Conditioning& cond, double clip_x0) {
  Prediction p = predict_at_rows(teacher, z, at, cond);
  if (clip_x0 > 0) p.x0 = p.x0.clamp(-clip_x0, clip_x0);  // ε̂ kept, as the sampler's --clip
  return p;
}

}  // namespace

Prediction predict_at_rows(const Denoiser& denoiser, const torch::Tensor& x, const std::vector<GridPoint>& points,
                           const Conditioning& cond) {
  if (x.dim() < 1 || int64_t(points.size()) != x.size(0))
    throw Error("predict_at_rows: " + std::to_string(points.size()) + " grid points for a batch of " +
                (x.dim() < 1 ? std::string("a scalar") : std::to_string(x.size(0)) + " rows"));
  bool whole = true;
  std::vector<double> t(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    t[i] = points[i].t;
    if (!(t[i] >= 0)) throw Error("predict_at_rows: the end point of a grid (σ = 0) has no timestep to evaluate at");
    whole = whole && t[i] == std::floor(t[i]);
  }
  auto tt = torch::tensor(t, torch::dtype(torch::kFloat64)).to(x.device());
  return denoiser.predict(x, whole ? tt.to(torch::kLong) : tt, cond);
}

torch::Tensor distillation_target(const Denoiser& teacher, const torch::Tensor& z_t, const std::vector<GridPoint>& t,
                                  const std::vector<GridPoint>& mid, const std::vector<GridPoint>& next,
                                  const Conditioning& cond, double clip_x0) {
  if (mid.size() != t.size() || next.size() != t.size())
    throw Error("distillation_target: t, mid and next need one grid point per row each");
  for (size_t i = 0; i < t.size(); ++i)
    if (!(t[i].alpha_bar < mid[i].alpha_bar && mid[i].alpha_bar < next[i].alpha_bar))
      throw Error("distillation_target: the points must run from noise to data (ᾱ_t < ᾱ_mid < ᾱ_next)");
  // The teacher's two DDIM steps: z_t → z_t' → z_t''.
  auto z_mid = target_ddim_step(target_predict(teacher, z_t, t, cond, clip_x0), mid);
  auto z_next = target_ddim_step(target_predict(teacher, z_mid, mid, cond, clip_x0), next);
  // x̃ = (z_t'' − r z_t) / (α_t'' − r α_t), r = σ_t''/σ_t; at the end point r = 0 and x̃ = z_t''.
  std::vector<double> r(t.size()), den(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    r[i] = std::sqrt(1.0 - next[i].alpha_bar) / std::sqrt(1.0 - t[i].alpha_bar);
    den[i] = std::sqrt(next[i].alpha_bar) - r[i] * std::sqrt(t[i].alpha_bar);  // > 0: α'' > α, r < 1
  }
  auto rc = target_column(r, z_t).to(z_t.dtype()), dc = target_column(den, z_t).to(z_t.dtype());
  return (z_next - rc * z_t) / dc;
}

torch::Tensor student_target(const Denoiser& teacher, const torch::Tensor& z_t, const std::vector<GridPoint>& t,
                             const std::vector<GridPoint>& mid, const std::vector<GridPoint>& next,
                             const Conditioning& cond, double clip_x0) {
  if (mid.empty() != next.empty())
    throw Error("student_target: mid and next are both empty (the conversion) or both given (a halving)");
  auto x = mid.empty() ? predict_at_rows(teacher, z_t, t, cond).x0
                       : distillation_target(teacher, z_t, t, mid, next, cond, clip_x0);
  // Clamped after choosing: z_t'' then moves by at most (α'' − r α)·|x̃ − clamp(x̃)|.
  return clip_x0 > 0 ? x.clamp(-clip_x0, clip_x0) : x;
}

torch::Tensor distillation_target(const Denoiser& teacher, const torch::Tensor& z_t, const GridPoint& t,
                                  const GridPoint& mid, const GridPoint& next, const Conditioning& cond,
                                  double clip_x0) {
  const size_t B = size_t(z_t.dim() < 1 ? 0 : z_t.size(0));
  return distillation_target(teacher, z_t, std::vector<GridPoint>(B, t), std::vector<GridPoint>(B, mid),
                             std::vector<GridPoint>(B, next), cond, clip_x0);
}

}  // namespace diffuse
