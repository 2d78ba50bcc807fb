// The analytic denoiser of N(μ, Σ) data; see denoiser.hpp for the equations.
#include <torch/torch.h>

#include <cmath>

#include "diffuse/denoiser.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

GaussianDenoiser::GaussianDenoiser(torch::Tensor mean, torch::Tensor cov, NoiseSchedule schedule)
    : mean_(mean.to(torch::kFloat64).flatten()), cov_(cov.to(torch::kFloat64)),
      schedule_(std::move(schedule)) {
  const int64_t D = mean_.size(0);
  if (cov_.dim() != 2 || cov_.size(0) != D || cov_.size(1) != D)
    throw Error("GaussianDenoiser: the covariance must be (D, D) with D = len(mean) = " +
                std::to_string(D));
  if (!torch::allclose(cov_, cov_.t(), 1e-10, 1e-10))
    throw Error("GaussianDenoiser: the covariance is not symmetric");
  auto [val, vec] = torch::linalg::eigh(cov_, "L");
  if (val.min().item<double>() < -1e-10)
    throw Error("GaussianDenoiser: the covariance is not positive semi-definite");
  eigval_ = val.clamp_min(0.0);
  eigvec_ = vec;
}

Prediction GaussianDenoiser::predict(const torch::Tensor& x_t, const torch::Tensor& t,
                                     const Conditioning&) const {
  // x_t: (B, D), t: (B)
  const auto dev = x_t.device();
  auto x = x_t.to(torch::kFloat64);
  auto ab = alpha_bar_of(schedule_, t, 2).to(dev);  // (B, 1); t may be fractional
  auto a = ab.sqrt(), s = (1.0 - ab).sqrt();
  auto mu = mean_.to(dev), U = eigvec_.to(dev), lam = eigval_.to(dev).unsqueeze(0);  // (1, D)
  auto z = torch::matmul(x - a * mu, U);                          // Uᵀ(x_t − aμ), as rows
  auto gain = a * lam / (a * a * lam + s * s);                    // aλ / (a²λ + s²)
  auto x0 = mu + torch::matmul(gain * z, U.t());                  // E[x₀ | x_t]
  auto eps = (x - a * x0) / s;                                    // E[ε | x_t]
  return {eps.to(x_t.dtype()), x0.to(x_t.dtype())};
}

}  // namespace diffuse
