// diffuse — noise schedules β_1..β_T and the quantities derived from them.
//
// Index convention (as in diffusers): t = 0 … T−1, where index t holds β of the
// paper's step t+1. ᾱ_t = Π_{s≤t} (1 − β_s), so alpha_bar[0] = 1 − β[0].
// Everything is float64; tensors are made from these tables at the point of use.
// This header does not include LibTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace diffuse {

enum class ScheduleKind {
  Linear,     // β linear from beta_start to beta_end (Ho et al. 2020)
  Cosine,     // ᾱ(t) = cos²(((t/T)+s)/(1+s)·π/2), β capped at max_beta (Nichol & Dhariwal 2021)
  Sigmoid,    // β_t = sigmoid(f(t))·beta_max, f linear from sigmoid_start to sigmoid_end (seed 002)
  Sin2,       // β_t = 1 − cos²(π t / 2T), t = 1…T, capped at max_beta (seed 001)
  Quadratic,  // √β linear from √beta_start to √beta_end ("scaled_linear" in diffusers)
  Custom,     // β list read from betas_file
};

std::string to_string(ScheduleKind kind);
ScheduleKind parse_schedule_kind(const std::string& name);  // throws, listing the valid names
// The most diffusion steps T a schedule may have (a custom file may hold no more values).
constexpr int64_t kMaxScheduleSteps = 100000;
std::vector<std::string> schedule_kind_names();

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Linear;
  int64_t T = 1000;              // number of diffusion steps (ignored for custom: the file decides)
  double beta_start = 1e-4;      // linear, quadratic: first β
  double beta_end = 0.02;        // linear, quadratic: last β
  double cosine_s = 0.008;       // cosine: offset s
  double max_beta = 0.999;       // cosine, sin2: cap on β
  double beta_max = 0.1;         // sigmoid: β_max (seed 002 uses 0.1 with T = 100)
  double sigmoid_start = -6.0;   // sigmoid: f(0)
  double sigmoid_end = 6.0;      // sigmoid: f(T−1)
  std::string betas_file;        // custom: one β per line (or comma/space separated)
};

// The schedule of a trained model: a plain table of β and ᾱ, in float64.
class NoiseSchedule {
 public:
  NoiseSchedule() = default;
  explicit NoiseSchedule(std::vector<double> betas);  // validates 0 < β < 1, T ≥ 1

  int64_t T() const { return static_cast<int64_t>(betas_.size()); }
  const std::vector<double>& betas() const { return betas_; }
  const std::vector<double>& alphas_cumprod() const { return alphas_cumprod_; }

  double beta(int64_t t) const { return betas_.at(t); }
  double alpha(int64_t t) const { return 1.0 - betas_.at(t); }
  double alpha_bar(int64_t t) const { return alphas_cumprod_.at(t); }
  // ᾱ_{t−1}, with ᾱ_{−1} = 1.
  double alpha_bar_prev(int64_t t) const { return t == 0 ? 1.0 : alphas_cumprod_.at(t - 1); }
  // σ_t = √((1 − ᾱ_t)/ᾱ_t): the bridge to σ-space samplers (Karras et al. 2022).
  double sigma(int64_t t) const;
  // SNR_t = ᾱ_t / (1 − ᾱ_t).
  double snr(int64_t t) const;

  // Between timesteps: t ∈ [0, T−1] may be fractional. log σ is interpolated
  // linearly between the neighbouring timesteps (as k-diffusion and diffusers'
  // _sigma_to_t do), so sigma_at and t_at_sigma are exact inverses, and at integer
  // t they return the table values. ᾱ(t) = 1 / (1 + σ(t)²).
  double sigma_at(double t) const;
  double alpha_bar_at(double t) const;
  // The (fractional) t whose σ(t) = sigma, clamped to [0, T−1].
  double t_at_sigma(double sigma) const;
  double sigma_min() const { return sigma(0); }
  double sigma_max() const { return sigma(T() - 1); }

  // Posterior q(x_{t−1} | x_t, x_0) = N(c0·x_0 + ct·x_t, β̃_t I) (seed 002, §逆扩散过程):
  //   β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t
  //   c0  = β_t √ᾱ_{t−1} / (1 − ᾱ_t),   ct = √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
  double posterior_variance(int64_t t) const;
  double posterior_coef_x0(int64_t t) const;
  double posterior_coef_xt(int64_t t) const;

 private:
  std::vector<double> betas_, alphas_cumprod_;
};

NoiseSchedule make_schedule(const ScheduleConfig& cfg);  // validates, throws diffuse::Error

// The families, one per file under src/schedule/. Each returns β_0 … β_{T−1}.
std::vector<double> linear_betas(int64_t T, double beta_start, double beta_end);
std::vector<double> quadratic_betas(int64_t T, double beta_start, double beta_end);
std::vector<double> cosine_betas(int64_t T, double s, double max_beta);
std::vector<double> sigmoid_betas(int64_t T, double beta_max, double f_start, double f_end);
std::vector<double> sin2_betas(int64_t T, double max_beta);
std::vector<double> read_betas_file(const std::string& path);

}  // namespace diffuse
