// The forward process q(x_t|x_0), q(x_t|x_{t−1}) and the posterior mean.
#include <torch/torch.h>

#include <cmath>

#include "diffuse/diffusion.hpp"

namespace diffuse {

torch::Tensor gather_coef(const std::vector<double>& values, const torch::Tensor& t, int64_t ndim) {
  auto table = torch::tensor(values, torch::dtype(torch::kFloat64)).to(t.device());
  std::vector<int64_t> shape(std::max<int64_t>(ndim, 1), 1);
  shape[0] = t.size(0);
  return table.index_select(0, t.to(torch::kLong)).view(shape);
}

torch::Tensor alpha_bar_of(const NoiseSchedule& s, const torch::Tensor& t, int64_t ndim) {
  if (!t.is_floating_point()) return gather_coef(s.alphas_cumprod(), t, ndim);
  auto tc = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  std::vector<double> ab(size_t(tc.numel()));
  const double* tp = tc.data_ptr<double>();
  for (size_t i = 0; i < ab.size(); ++i) ab[i] = s.alpha_bar_at(tp[i]);
  std::vector<int64_t> shape(std::max<int64_t>(ndim, 1), 1);
  shape[0] = t.size(0);
  return torch::tensor(ab, torch::dtype(torch::kFloat64)).view(shape).to(t.device());
}

namespace {
// f applied to every entry of a table.
template <class F>
std::vector<double> map_table(const NoiseSchedule& s, F f) {
  std::vector<double> out(s.T());
  for (int64_t i = 0; i < s.T(); ++i) out[i] = f(i);
  return out;
}
}  // namespace

torch::Tensor q_sample(const NoiseSchedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                       const torch::Tensor& noise) {
  auto a = gather_coef(map_table(s, [&](int64_t i) { return std::sqrt(s.alpha_bar(i)); }), t, x0.dim());
  auto b = gather_coef(map_table(s, [&](int64_t i) { return std::sqrt(1 - s.alpha_bar(i)); }), t,
                       x0.dim());
  return a.to(x0.dtype()) * x0 + b.to(x0.dtype()) * noise;
}

torch::Tensor q_step(const NoiseSchedule& s, const torch::Tensor& x_prev, const torch::Tensor& t,
                     const torch::Tensor& noise) {
  auto a = gather_coef(map_table(s, [&](int64_t i) { return std::sqrt(s.alpha(i)); }), t, x_prev.dim());
  auto b = gather_coef(map_table(s, [&](int64_t i) { return std::sqrt(s.beta(i)); }), t, x_prev.dim());
  return a.to(x_prev.dtype()) * x_prev + b.to(x_prev.dtype()) * noise;
}

torch::Tensor q_posterior_mean(const NoiseSchedule& s, const torch::Tensor& x0,
                               const torch::Tensor& x_t, const torch::Tensor& t) {
  auto c0 = gather_coef(map_table(s, [&](int64_t i) { return s.posterior_coef_x0(i); }), t, x0.dim());
  auto ct = gather_coef(map_table(s, [&](int64_t i) { return s.posterior_coef_xt(i); }), t, x0.dim());
  return c0.to(x0.dtype()) * x0 + ct.to(x_t.dtype()) * x_t;
}

}  // namespace diffuse
