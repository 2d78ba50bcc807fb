// The sampling grid: which timesteps / noise levels a sampler visits.
// Spacings as diffusers defines them (DDIMScheduler.set_timesteps and
// EulerDiscreteScheduler.set_timesteps); np.round is round-half-to-even, as
// std::nearbyint in the default rounding mode.
#include <cmath>

#include "diffuse/error.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse {

namespace {

bool grid_discrete_sampler(SamplerKind k) { return k == SamplerKind::Ddpm || k == SamplerKind::Ddim; }

// The timesteps (descending, possibly fractional) of cfg.spacing.
std::vector<double> grid_spaced_timesteps(int64_t T, int64_t S, const SamplerConfig& cfg) {
  std::vector<double> t(S);
  switch (cfg.spacing) {
    case TimestepSpacing::Leading: {
      const int64_t ratio = T / S;  // ⌊T/S⌋
      for (int64_t i = 0; i < S; ++i) t[i] = double((S - 1 - i) * ratio + cfg.steps_offset);
      break;
    }
    case TimestepSpacing::Trailing: {
      const double ratio = double(T) / double(S);
      for (int64_t i = 0; i < S; ++i) t[i] = std::nearbyint(double(T) - double(i) * ratio) - 1.0;
      break;
    }
    case TimestepSpacing::Linspace: {
      const bool round = grid_discrete_sampler(cfg.kind);
      for (int64_t i = 0; i < S; ++i) {
        // np.linspace: j·((T−1)/(S−1)), its last entry exactly T−1; j = S−1−i.
        const double v = S == 1 ? 0.0 : i == 0 ? double(T - 1) : double(S - 1 - i) * (double(T - 1) / double(S - 1));
        t[i] = round ? std::nearbyint(v) : v;
      }
      break;
    }
  }
  return t;
}

}  // namespace

std::vector<GridPoint> sampling_grid(const NoiseSchedule& sch, const SamplerConfig& cfg) {
  validate(cfg);
  const int64_t T = sch.T();
  std::vector<double> ts;
  std::vector<double> sigmas;
  if (!cfg.timesteps.empty()) {
    for (size_t i = 0; i < cfg.timesteps.size(); ++i) {
      const int64_t v = cfg.timesteps[i];
      if (v < 0 || v >= T)
        throw Error("timestep " + std::to_string(v) + " is outside [0, " + std::to_string(T - 1) + "]",
                    "this model has T = " + std::to_string(T));
      if (i > 0 && v >= cfg.timesteps[i - 1])
        throw Error("custom timesteps must be strictly descending", "e.g. 999,749,499,249,0");
      ts.push_back(double(v));
    }
  } else {
    const int64_t S = cfg.steps == 0 ? T : cfg.steps;
    if (S > T)
      throw Error(std::to_string(S) + " steps is more than the model's T = " + std::to_string(T),
                  "use --steps between 1 and " + std::to_string(T) + " (0 = all)");
    if (cfg.sigmas == SigmaSchedule::Timesteps) {
      ts = grid_spaced_timesteps(T, S, cfg);
      for (size_t i = 0; i < ts.size(); ++i) {
        if (ts[i] < 0 || ts[i] > double(T - 1))
          throw Error("timestep " + std::to_string(int64_t(ts[i])) + " of the " + to_string(cfg.spacing) +
                          " spacing is outside [0, " + std::to_string(T - 1) + "]",
                      "lower steps_offset (it is added to every timestep)");
        if (i > 0 && !(ts[i] < ts[i - 1]))
          throw Error(std::to_string(S) + " steps of the " + to_string(cfg.spacing) + " spacing repeat a timestep",
                      "use fewer steps or another spacing");
      }
    } else {
      // Karras et al. 2022, eq. 5; or log σ linear. From σ_max = σ(T−1) to σ_min = σ(0).
      const double smax = sch.sigma_max(), smin = sch.sigma_min();
      for (int64_t i = 0; i < S; ++i) {
        const double f = S == 1 ? 0.0 : double(i) / double(S - 1);
        double s;
        if (cfg.sigmas == SigmaSchedule::Karras) {
          const double a = std::pow(smax, 1.0 / cfg.rho), b = std::pow(smin, 1.0 / cfg.rho);
          s = std::pow(a + f * (b - a), cfg.rho);
        } else {
          s = std::exp(std::log(smax) + f * (std::log(smin) - std::log(smax)));
        }
        sigmas.push_back(s);
        ts.push_back(sch.t_at_sigma(s));
      }
    }
  }
  std::vector<GridPoint> grid;
  for (size_t i = 0; i < ts.size(); ++i) {
    const double s = sigmas.empty() ? sch.sigma_at(ts[i]) : sigmas[i];
    grid.push_back({ts[i], s, 1.0 / (1.0 + s * s)});
    if (ts[i] == std::floor(ts[i]) && sigmas.empty()) grid.back().alpha_bar = sch.alpha_bar(int64_t(ts[i]));
  }
  grid.push_back({-1.0, 0.0, 1.0});
  return grid;
}

Prediction predict_at(const Denoiser& d, const torch::Tensor& x, const GridPoint& p, const Conditioning& cond) {
  const int64_t B = x.size(0);
  auto t = p.t == std::floor(p.t) ? torch::full({B}, int64_t(p.t), torch::dtype(torch::kLong).device(x.device()))
                                  : torch::full({B}, p.t, torch::dtype(torch::kFloat64).device(x.device()));
  return d.predict(x, t, cond);
}

int64_t network_calls(const NoiseSchedule& sch, const SamplerConfig& cfg) {
  const int64_t S = int64_t(sampling_grid(sch, cfg).size()) - 1;
  return cfg.kind == SamplerKind::Heun ? 2 * S - 1 : S;
}

}  // namespace diffuse
