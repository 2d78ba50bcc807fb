// ε, x₀ and v parameterizations and the conversions between them.
#include <torch/torch.h>

#include <cmath>

#include "diffuse/diffusion.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {
struct AS {
  torch::Tensor a, s;  // √ᾱ_t and √(1 − ᾱ_t), shaped to broadcast, float64
};
AS coefs(const NoiseSchedule& sch, const torch::Tensor& t, int64_t ndim) {
  auto ab = alpha_bar_of(sch, t, ndim);
  return {ab.sqrt(), (1.0 - ab).sqrt()};
}
}  // namespace

std::string to_string(PredictionType p) {
  switch (p) {
    case PredictionType::Epsilon: return "eps";
    case PredictionType::Sample: return "x0";
    case PredictionType::V: return "v";
  }
  return "?";
}

std::vector<std::string> prediction_type_names() { return {"eps", "x0", "v"}; }

PredictionType parse_prediction_type(const std::string& name) {
  if (name == "eps" || name == "epsilon") return PredictionType::Epsilon;
  if (name == "x0" || name == "sample") return PredictionType::Sample;
  if (name == "v" || name == "v_prediction") return PredictionType::V;
  throw Error("unknown prediction type '" + name + "'",
              "valid prediction types: " + join(prediction_type_names()));
}

torch::Tensor eps_from_x0(const NoiseSchedule& sch, const torch::Tensor& x_t,
                          const torch::Tensor& t, const torch::Tensor& x0) {
  auto [a, s] = coefs(sch, t, x_t.dim());
  return ((x_t - a.to(x_t.dtype()) * x0) / s.to(x_t.dtype()));
}

torch::Tensor x0_from_eps(const NoiseSchedule& sch, const torch::Tensor& x_t,
                          const torch::Tensor& t, const torch::Tensor& eps) {
  auto [a, s] = coefs(sch, t, x_t.dim());
  return (x_t - s.to(x_t.dtype()) * eps) / a.to(x_t.dtype());
}

torch::Tensor v_from(const NoiseSchedule& sch, const torch::Tensor& t, const torch::Tensor& eps,
                     const torch::Tensor& x0) {
  auto [a, s] = coefs(sch, t, eps.dim());
  return a.to(eps.dtype()) * eps - s.to(eps.dtype()) * x0;
}

EpsX0 to_eps_x0(const NoiseSchedule& sch, PredictionType p, const torch::Tensor& x_t,
                const torch::Tensor& t, const torch::Tensor& out) {
  switch (p) {
    case PredictionType::Epsilon: return {out, x0_from_eps(sch, x_t, t, out)};
    case PredictionType::Sample: return {eps_from_x0(sch, x_t, t, out), out};
    case PredictionType::V: {
      auto [a, s] = coefs(sch, t, x_t.dim());
      auto a_ = a.to(x_t.dtype()), s_ = s.to(x_t.dtype());
      return {s_ * x_t + a_ * out, a_ * x_t - s_ * out};
    }
  }
  throw Error("unhandled prediction type");
}

torch::Tensor target_for(const NoiseSchedule& sch, PredictionType p, const torch::Tensor& t,
                         const torch::Tensor& x0, const torch::Tensor& eps) {
  switch (p) {
    case PredictionType::Epsilon: return eps;
    case PredictionType::Sample: return x0;
    case PredictionType::V: return v_from(sch, t, eps, x0);
  }
  throw Error("unhandled prediction type");
}

}  // namespace diffuse
