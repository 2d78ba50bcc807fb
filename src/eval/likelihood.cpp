// The variational bound on −log p(x₀) (Ho et al. 2020, eq. 5; Nichol & Dhariwal 2021,
// improved-diffusion's gaussian_diffusion.py: _vb_terms_bpd, _prior_bpd, calc_bpd_loop).
// See include/diffuse/likelihood.hpp for the terms and the index convention, and
// docs/likelihood.md for the formulas.
#include "diffuse/likelihood.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/enum_names.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {

const EnumNames<DecoderKind>& decoder_names() {
  static const EnumNames<DecoderKind> n(
      "decoder", {{DecoderKind::Discretized8Bit, "discretized-8bit"}, {DecoderKind::Continuous, "continuous"}});
  return n;
}

// Seed streams of the noise: x_t at timestep t of the exact sum uses stream t (so L_0,
// stream 0, is the same in both modes); the k-th Monte-Carlo draw its own stream.
constexpr uint64_t kNllTimestepStream = 0x7469'6d65'7374'6570ULL;  // which t each datum draws
constexpr uint64_t kNllDrawStream = 0x6472'6177'6e6f'6973ULL;      // x_t of the k-th draw

std::vector<double> nll_table(const NoiseSchedule& s, const std::function<double(int64_t)>& f) {
  std::vector<double> v(size_t(s.T()));
  for (int64_t t = 0; t < s.T(); ++t) v[size_t(t)] = f(t);
  return v;
}

// log β̃_t of the true posterior, with t = 0 (β̃_0 = 0, never used in a KL) set to
// log β̃_1 like improved-diffusion's posterior_log_variance_clipped.
double posterior_log_variance_clipped(const NoiseSchedule& s, int64_t t) {
  if (t == 0) return s.T() > 1 ? std::log(s.posterior_variance(1)) : std::log(s.beta(0));
  return std::log(s.posterior_variance(t));
}

// Throws unless x (any shape) lies on the 8-bit grid u/127.5 − 1, u ∈ {0 … 255}.
void nll_check_8bit_grid(const torch::Tensor& x) {
  auto u = x.to(torch::kFloat64) * 127.5 + 127.5;
  const double off = (u - u.round()).abs().max().item<double>();
  const double lo = u.min().item<double>(), hi = u.max().item<double>();
  if (!(off < 1e-3) || lo < -1e-3 || hi > 255.0 + 1e-3)
    throw Error("the discretized decoder needs 8-bit data mapped to [−1, 1] by u/127.5 − 1",
                "got values in [" + std::to_string(lo / 127.5 - 1) + ", " + std::to_string(hi / 127.5 - 1) +
                    "] up to " + std::to_string(off) +
                    " of a bin off the grid; use the continuous decoder for real-valued data");
}

}  // namespace

std::string to_string(DecoderKind k) { return decoder_names().name(k); }
DecoderKind parse_decoder_kind(const std::string& name) { return decoder_names().parse(name); }

void validate(const LikelihoodConfig& cfg, const NoiseSchedule& s) {
  if (cfg.t_samples < 0 || cfg.t_samples > s.T() - 1)
    throw Error("t_samples must be in [0, T − 1] = [0, " + std::to_string(s.T() - 1) + "], got " +
                    std::to_string(cfg.t_samples),
                "0 sums all T − 1 KL terms exactly; K draws K of them per datum");
  if (!std::isfinite(cfg.clip_x0) || cfg.clip_x0 < 0)
    throw Error("clip_x0 must be >= 0 (0: off), got " + std::to_string(cfg.clip_x0));
}

// ── Elementwise pieces ─────────────────────────────────────────────────────────

torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1, const torch::Tensor& mean2,
                        const torch::Tensor& logvar2) {
  // KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) = ½ (−1 + log σ₂² − log σ₁² + σ₁²/σ₂² + (μ₁ − μ₂)²/σ₂²)
  return 0.5 * (-1.0 + logvar2 - logvar1 + torch::exp(logvar1 - logvar2) +
                (mean1 - mean2).square() * torch::exp(-logvar2));
}

torch::Tensor gaussian_nll(const torch::Tensor& x, const torch::Tensor& mean, const torch::Tensor& logvar) {
  // −log N(x; μ, σ²) = ½ (log 2π + log σ² + (x − μ)²/σ²)
  return 0.5 * (std::log(2.0 * M_PI) + logvar + (x - mean).square() * torch::exp(-logvar));
}

torch::Tensor discretized_gaussian_nll(const torch::Tensor& x, const torch::Tensor& mean,
                                       const torch::Tensor& logvar) {
  // Ho et al. 2020, eq. 13: p(x₀ | x₁) = Π_i ∫_{δ−(x_i)}^{δ+(x_i)} N(y; μ_i, σ²) dy with
  // δ+(x) = ∞ if x = 1 else x + 1/255, δ−(x) = −∞ if x = −1 else x − 1/255.
  // With a = (x − 1/255 − μ)/σ, b = (x + 1/255 − μ)/σ:
  //   u = 0:    log Φ(b);   u = 255:  log(1 − Φ(a)) = log Φ(−a);
  //   else:     log(Φ(b) − Φ(a)) = log Φ(b) + log(1 − e^{log Φ(a) − log Φ(b)}),
  // evaluated on the side of the tail (a > 0: Φ(b) − Φ(a) = Φ(−a) − Φ(−b)) so that
  // nothing cancels, even many σ away.
  constexpr double kHalfBin = 1.0 / 255.0;
  auto inv_sigma = torch::exp(-0.5 * logvar);
  auto a = (x - kHalfBin - mean) * inv_sigma, b = (x + kHalfBin - mean) * inv_sigma;
  namespace sp = torch::special;
  auto lo_b = sp::log_ndtr(b), lo_a = sp::log_ndtr(a);
  auto up_a = sp::log_ndtr(-a), up_b = sp::log_ndtr(-b);
  auto mid_low = lo_b + torch::log(-torch::expm1(lo_a - lo_b));   // a ≤ 0
  auto mid_high = up_a + torch::log(-torch::expm1(up_b - up_a));  // a > 0
  auto mid = torch::where(a > 0, mid_high, mid_low);
  auto u = (x * 127.5 + 127.5).round();
  auto logp = torch::where(u <= 0, lo_b, torch::where(u >= 255, up_a, mid));
  return -logp;
}

double reverse_log_variance(const NoiseSchedule& s, DdpmVariance v, int64_t t) {
  if (t < 0 || t >= s.T()) throw Error("timestep " + std::to_string(t) + " outside [0, T)");
  // σ_0² = β̃_1 for both choices (improved-diffusion: posterior_log_variance_clipped
  // for FIXED_SMALL, np.append(posterior_variance[1], betas[1:]) for FIXED_LARGE).
  if (t == 0) return posterior_log_variance_clipped(s, 0);
  return v == DdpmVariance::BetaTilde ? std::log(s.posterior_variance(t)) : std::log(s.beta(t));
}

torch::Tensor prior_term(const NoiseSchedule& s, const torch::Tensor& x0) {
  // L_T = KL(q(x_T | x₀) ‖ N(0, I)), q(x_T | x₀) = N(√ᾱ x₀, (1 − ᾱ) I) with ᾱ = ᾱ_{T−1}.
  const double ab = s.alpha_bar(s.T() - 1);
  auto x = x0.to(torch::kFloat64);
  auto zero = torch::zeros({}, x.options());
  auto kl = normal_kl(std::sqrt(ab) * x, torch::full({}, std::log1p(-ab), x.options()), zero, zero);
  return kl.flatten(1).mean(1);
}

torch::Tensor bound_term(const Denoiser& d, const LikelihoodConfig& cfg, const torch::Tensor& x0,
                         const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning& cond) {
  const NoiseSchedule& s = d.schedule();
  if (x0.dim() < 2 || x0.sizes() != x_t.sizes())
    throw Error("bound_term: x0 and x_t must both be (B, ...) of the same shape");
  if (t.dim() != 1 || t.size(0) != x0.size(0) || t.is_floating_point())
    throw Error("bound_term: t must be (B) integer timesteps");
  const auto tl = t.to(torch::kLong);
  const bool has_decoder = (tl == 0).any().item<bool>();
  if (has_decoder && cfg.decoder == DecoderKind::Discretized8Bit) nll_check_8bit_grid(x0);
  torch::NoGradGuard no_grad;
  const int64_t nd = x0.dim();
  auto x0d = x0.to(torch::kFloat64), xtd = x_t.to(torch::kFloat64);

  // x̂₀(x_t, t) from the network (in x0's dtype), optionally clamped.
  auto x0_hat = d.predict(x_t.to(x0.dtype()), tl, cond).x0.to(torch::kFloat64);
  if (cfg.clip_x0 > 0) x0_hat = x0_hat.clamp(-cfg.clip_x0, cfg.clip_x0);

  // Posterior q(x_{t−1} | x_t, x₀) = N(c0 x₀ + ct x_t, β̃_t I) (Ho et al. 2020, eqs. 6–7),
  // c0 = β_t √ᾱ_{t−1}/(1 − ᾱ_t), ct = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t).
  auto c0 = gather_coef(nll_table(s, [&](int64_t i) { return s.posterior_coef_x0(i); }), tl, nd);
  auto ct = gather_coef(nll_table(s, [&](int64_t i) { return s.posterior_coef_xt(i); }), tl, nd);
  auto post_logvar =
      gather_coef(nll_table(s, [&](int64_t i) { return posterior_log_variance_clipped(s, i); }), tl, nd);
  // Model p_θ(x_{t−1} | x_t) = N(μ̃_t(x_t, x̂₀), σ_t² I); at t = 0, c0 = 1 and ct = 0, so μ = x̂₀.
  auto model_logvar =
      gather_coef(nll_table(s, [&](int64_t i) { return reverse_log_variance(s, cfg.variance, i); }), tl, nd);
  auto mean_post = c0 * x0d + ct * xtd, mean_model = c0 * x0_hat + ct * xtd;

  // t ≥ 1: L_{t−1} = KL(q(x_{t−1} | x_t, x₀) ‖ p_θ(x_{t−1} | x_t)), mean over dims.
  auto kl = normal_kl(mean_post, post_logvar, mean_model, model_logvar).flatten(1).mean(1);
  if (!has_decoder) return kl;
  // t = 0: L_0 = −log p_θ(x₀ | x₁), discretized (8-bit data) or a density (vectors).
  auto dec = cfg.decoder == DecoderKind::Discretized8Bit ? discretized_gaussian_nll(x0d, mean_model, model_logvar)
                                                         : gaussian_nll(x0d, mean_model, model_logvar);
  return torch::where(tl == 0, dec.flatten(1).mean(1), kl);
}

// ── The bound of a batch ───────────────────────────────────────────────────────

std::vector<int64_t> bound_strata(int64_t T, int64_t K) {
  if (T < 2 || K < 1 || K > T - 1)
    throw Error("bound_strata: need 1 <= K <= T − 1, got K = " + std::to_string(K) + ", T = " + std::to_string(T));
  // e_k ≈ T^{k/K}, kept strictly increasing and leaving one timestep for each later stratum.
  std::vector<int64_t> e(static_cast<size_t>(K + 1));
  e[0] = 1;
  e[size_t(K)] = T;
  for (int64_t k = 1; k < K; ++k) {
    const auto geo = int64_t(std::floor(std::pow(double(T), double(k) / double(K))));
    e[size_t(k)] = std::min(std::max(e[size_t(k - 1)] + 1, geo), T - (K - k));
  }
  return e;
}

int64_t bound_calls_per_datum(const NoiseSchedule& s, const LikelihoodConfig& cfg) {
  return cfg.t_samples > 0 ? cfg.t_samples + 1 : s.T();
}

VariationalBound variational_bound(const Denoiser& d, const LikelihoodConfig& cfg, const torch::Tensor& x0,
                                   const Conditioning& cond, int64_t first_index,
                                   const std::function<void(int64_t calls)>& on_call) {
  const NoiseSchedule& s = d.schedule();
  validate(cfg, s);
  if (x0.dim() < 2 || x0.size(0) < 1) throw Error("variational_bound: x0 must be (B, ...) with B >= 1");
  if (cfg.decoder == DecoderKind::Discretized8Bit) nll_check_8bit_grid(x0);
  torch::NoGradGuard no_grad;
  const int64_t B = x0.size(0), T = s.T();
  const std::vector<int64_t> shape(x0.sizes().begin() + 1, x0.sizes().end());
  const auto dev = x0.device();
  auto x0d = x0.to(torch::kFloat64);
  // x_t ~ q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I), row i's noise from (stream, first_index + i).
  auto noised = [&](const torch::Tensor& t, uint64_t stream) {
    NoiseStream noise(stream, first_index, B);
    return q_sample(s, x0d, t, noise.randn(shape, torch::TensorOptions().dtype(torch::kFloat64).device(dev)));
  };
  auto longs = torch::TensorOptions().dtype(torch::kLong).device(dev);

  VariationalBound r;
  r.prior = prior_term(s, x0d);
  r.terms = torch::full({B, T}, std::numeric_limits<double>::quiet_NaN(), x0d.options());
  int64_t calls = 0;
  auto term_at = [&](const torch::Tensor& t, uint64_t stream) {
    auto v = bound_term(d, cfg, x0, noised(t, stream), t, cond);
    if (on_call) on_call(++calls);
    return v;
  };
  auto t0 = torch::zeros({B}, longs);
  r.decoder = term_at(t0, mix_seed(cfg.seed, 0));
  r.terms.select(1, 0).copy_(r.decoder);
  r.kl = torch::zeros({B}, x0d.options());
  if (cfg.t_samples == 0) {
    // Σ_{t=1}^{T−1} L_t, every term (T − 1 network calls).
    for (int64_t t = 1; t < T; ++t) {
      auto v = term_at(torch::full({B}, t, longs), mix_seed(cfg.seed, uint64_t(t)));
      r.terms.select(1, t).copy_(v);
      r.kl += v;
    }
  } else {
    // Stratified over geometric strata of 1 … T−1 (see bound_strata): datum i draws one
    // t uniformly in each stratum [e_k, e_{k+1}) and Σ_k (e_{k+1} − e_k) L_{t_k} is an
    // unbiased estimate of Σ_t L_t. The large early terms sit in strata of one timestep.
    const auto edges = bound_strata(T, cfg.t_samples);
    const int64_t K = cfg.t_samples;
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < B; ++i) {
      auto g = at::make_generator<at::CPUGeneratorImpl>(
          mix_seed(mix_seed(cfg.seed, kNllTimestepStream), uint64_t(first_index + i)));
      auto u = torch::rand({K}, g, torch::kFloat64);
      std::vector<int64_t> ts(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k) {
        const int64_t w = edges[size_t(k + 1)] - edges[size_t(k)];
        ts[size_t(k)] = edges[size_t(k)] + std::min<int64_t>(w - 1, int64_t(u[k].item<double>() * double(w)));
      }
      rows.push_back(torch::tensor(ts, torch::kLong));
    }
    auto draws = torch::stack(rows).to(dev);  // (B, K)
    for (int64_t k = 0; k < K; ++k) {
      auto t = draws.select(1, k).contiguous();
      auto v = term_at(t, mix_seed(mix_seed(cfg.seed, kNllDrawStream), uint64_t(k)));
      r.terms.scatter_(1, t.unsqueeze(1), v.unsqueeze(1));
      r.kl += double(edges[size_t(k + 1)] - edges[size_t(k)]) * v;
    }
  }
  r.total = r.prior + r.kl + r.decoder;
  return r;
}

VariationalBound concat(const std::vector<VariationalBound>& parts) {
  if (parts.empty()) throw Error("concat: no bounds to concatenate");
  std::vector<torch::Tensor> p, d, k, t, m;
  for (const auto& b : parts) {
    p.push_back(b.prior.cpu());
    d.push_back(b.decoder.cpu());
    k.push_back(b.kl.cpu());
    t.push_back(b.total.cpu());
    m.push_back(b.terms.cpu());
  }
  return {torch::cat(p), torch::cat(d), torch::cat(k), torch::cat(t), torch::cat(m)};
}

}  // namespace diffuse
