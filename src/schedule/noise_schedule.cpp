// NoiseSchedule: the ᾱ table, σ, SNR and the posterior q(x_{t−1}|x_t, x_0).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/schedule.hpp"
#include "core/enum_names.hpp"

namespace diffuse {

namespace {
const EnumNames<ScheduleKind>& kind_names() {
  static const EnumNames<ScheduleKind> names(
      "schedule", {{ScheduleKind::Linear, "linear"},
                   {ScheduleKind::Cosine, "cosine"},
                   {ScheduleKind::Sigmoid, "sigmoid"},
                   {ScheduleKind::Sin2, "sin2"},
                   {ScheduleKind::Quadratic, "quadratic"},
                   {ScheduleKind::Custom, "custom"}});
  return names;
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace

std::string to_string(ScheduleKind kind) { return kind_names().name(kind); }
std::vector<std::string> schedule_kind_names() { return kind_names().names(); }
ScheduleKind parse_schedule_kind(const std::string& name) { return kind_names().parse(name); }

NoiseSchedule::NoiseSchedule(std::vector<double> betas) : betas_(std::move(betas)) {
  if (betas_.empty()) throw Error("a schedule needs T >= 1 steps");
  alphas_cumprod_.resize(betas_.size());
  double prod = 1.0;
  for (size_t i = 0; i < betas_.size(); ++i) {
    const double b = betas_[i];
    if (!(b > 0.0 && b < 1.0))
      throw Error("beta[" + std::to_string(i) + "] = " + fmt(b) + " is outside (0, 1)",
                  "every β must satisfy 0 < β < 1; check the schedule parameters");
    prod *= 1.0 - b;  // ᾱ_t = Π_{s≤t} α_s
    if (!(prod > 0.0))
      throw Error("alpha_bar underflows to 0 at t = " + std::to_string(i) +
                      ": the schedule destroys the signal completely",
                  "use fewer steps T (sin2 builds up to T = 551 with max_beta 0.999) or smaller betas");
    alphas_cumprod_[i] = prod;
  }
}

double NoiseSchedule::sigma(int64_t t) const {
  const double ab = alpha_bar(t);
  return std::sqrt((1.0 - ab) / ab);
}

double NoiseSchedule::snr(int64_t t) const {
  const double ab = alpha_bar(t);
  return ab / (1.0 - ab);
}

double NoiseSchedule::posterior_variance(int64_t t) const {
  return (1.0 - alpha_bar_prev(t)) / (1.0 - alpha_bar(t)) * beta(t);
}

double NoiseSchedule::posterior_coef_x0(int64_t t) const {
  return beta(t) * std::sqrt(alpha_bar_prev(t)) / (1.0 - alpha_bar(t));
}

double NoiseSchedule::posterior_coef_xt(int64_t t) const {
  return std::sqrt(alpha(t)) * (1.0 - alpha_bar_prev(t)) / (1.0 - alpha_bar(t));
}

double NoiseSchedule::sigma_at(double t) const {
  if (!(t >= 0.0 && t <= double(T() - 1)))
    throw Error("timestep " + fmt(t) + " is outside [0, " + std::to_string(T() - 1) + "]");
  const int64_t lo = std::min<int64_t>(int64_t(std::floor(t)), T() - 1);
  const double w = t - double(lo);
  if (w == 0.0) return sigma(lo);
  // log σ(t) = (1 − w) log σ_lo + w log σ_hi
  return std::exp((1.0 - w) * std::log(sigma(lo)) + w * std::log(sigma(lo + 1)));
}

double NoiseSchedule::alpha_bar_at(double t) const {
  if (t == std::floor(t) && t >= 0.0 && t <= double(T() - 1)) return alpha_bar(int64_t(t));
  const double s = sigma_at(t);
  return 1.0 / (1.0 + s * s);
}

double NoiseSchedule::t_at_sigma(double sig) const {
  if (!(sig > 0.0)) throw Error("σ = " + fmt(sig) + " has no timestep", "σ must be > 0");
  const double ls = std::log(sig);
  if (ls <= std::log(sigma(0))) return 0.0;
  if (ls >= std::log(sigma(T() - 1))) return double(T() - 1);
  // σ grows with t: find lo with log σ_lo ≤ log σ < log σ_{lo+1} by bisection.
  int64_t lo = 0, hi = T() - 1;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (std::log(sigma(mid)) <= ls ? lo : hi) = mid;
  }
  const double a = std::log(sigma(lo)), b = std::log(sigma(hi));
  return double(lo) + (ls - a) / (b - a);
}

NoiseSchedule make_schedule(const ScheduleConfig& c) {
  if (c.kind != ScheduleKind::Custom && (c.T < 1 || c.T > kMaxScheduleSteps))
    throw Error("T = " + std::to_string(c.T) + " is invalid",
                "T must lie in 1 … " + std::to_string(kMaxScheduleSteps));
  auto check_beta = [](const char* name, double v) {
    if (!(v > 0.0 && v < 1.0))
      throw Error(std::string(name) + " = " + fmt(v) + " is outside (0, 1)",
                  "β values must satisfy 0 < β < 1");
  };
  switch (c.kind) {
    case ScheduleKind::Linear:
    case ScheduleKind::Quadratic:
      check_beta("beta_start", c.beta_start);
      check_beta("beta_end", c.beta_end);
      return NoiseSchedule(c.kind == ScheduleKind::Linear
                               ? linear_betas(c.T, c.beta_start, c.beta_end)
                               : quadratic_betas(c.T, c.beta_start, c.beta_end));
    case ScheduleKind::Cosine:
      check_beta("max_beta", c.max_beta);
      if (!(c.cosine_s >= 0.0 && c.cosine_s < 1.0))
        throw Error("cosine_s = " + fmt(c.cosine_s) + " is outside [0, 1)",
                    "the cosine offset s is small and non-negative (default 0.008)");
      return NoiseSchedule(cosine_betas(c.T, c.cosine_s, c.max_beta));
    case ScheduleKind::Sigmoid:
      check_beta("beta_max", c.beta_max);
      if (!std::isfinite(c.sigmoid_start) || !std::isfinite(c.sigmoid_end))
        throw Error("sigmoid_start and sigmoid_end must be finite numbers");
      return NoiseSchedule(sigmoid_betas(c.T, c.beta_max, c.sigmoid_start, c.sigmoid_end));
    case ScheduleKind::Sin2:
      check_beta("max_beta", c.max_beta);
      return NoiseSchedule(sin2_betas(c.T, c.max_beta));
    case ScheduleKind::Custom:
      return NoiseSchedule(read_betas_file(c.betas_file));
  }
  throw Error("unhandled schedule kind");
}

}  // namespace diffuse
