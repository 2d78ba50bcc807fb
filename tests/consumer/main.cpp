// Samples N(μ, Σ) with the installed library's DDPM sampler and analytic denoiser.
#include <diffuse/denoiser.hpp>
#include <diffuse/sampler.hpp>
#include <diffuse/schedule.hpp>
#include <torch/torch.h>

#include <cstdio>

int main() {
  diffuse::ScheduleConfig sc;
  sc.T = 100;
  sc.beta_end = 0.2;
  diffuse::GaussianDenoiser d(torch::full({2}, 3.0), torch::eye(2) * 0.25, diffuse::make_schedule(sc));
  diffuse::NoiseStream init(0, 0, 2000), steps(1, 0, 2000);
  auto x = diffuse::sample(d, init.randn({2}), diffuse::SamplerConfig{}, steps);
  const double m = x.mean().item<double>();
  std::printf("consumer: sample mean %.3f (want 3)\n", m);
  return std::abs(m - 3.0) < 0.05 ? 0 : 1;
}
