// The noise the stochastic samplers inject. An ODE sampler also reproduces N(μ, Σ), so the
// oracle distribution tests cannot tell whether dpm++2m-sde, euler-ancestral, DDIM with
// η > 0, s_noise and churn add the right noise; these tests measure it.
//   - Per step: with a denoiser whose x₀ is fixed, every step is affine in the state with
//     scalar coefficients; two runs from the same x_T with different noise seeds differ
//     after step i by Δ_{i+1} = a_i Δ_i + (fresh noise of run 1 − run 2). Regressing Δ_{i+1}
//     on Δ_i leaves the fresh noise, whose variance per element is twice the step's
//     injected variance, checked against the closed form of each sampler's equations
//     (k-diffusion, diffusers, Ho et al., Karras et al.).
//   - Whole trajectories against tools/reference/stochastic_samplers.py, which writes each
//     sampler from its published equations and replays the same noise stream.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "diffuse/denoiser.hpp"
#include "diffuse/sampler.hpp"

using namespace diffuse;

struct StepNoiseCase {
  std::string name;
  SamplerConfig cfg;
};

namespace {

// A model whose x₀ estimate is the constant 0.3 whatever x_t and t.
ModelDenoiser fixed_x0_denoiser(const NoiseSchedule& s) {
  ModelFn f = [](const torch::Tensor& x, const torch::Tensor&, const Conditioning&) { return torch::full_like(x, 0.3); };
  return ModelDenoiser(f, s, PredictionType::Sample);
}

// x₀(x_t, t) = tanh(x_t)(1 − t/2000): a model whose samples depend on the noise.
ModelDenoiser tanh_x0_denoiser(const NoiseSchedule& s) {
  ModelFn f = [](const torch::Tensor& x, const torch::Tensor& t, const Conditioning&) {
    return torch::tanh(x) * (1.0 - t.to(x.dtype()).view({-1, 1}) / 2000.0);
  };
  return ModelDenoiser(f, s, PredictionType::Sample);
}

// The variance (VP units, per element) of the fresh noise step i adds to the state, from the
// sampler's equations; grid from sampling_grid, S = its steps.
double injected_variance(const SamplerConfig& c, const NoiseSchedule& sch, const std::vector<GridPoint>& g, size_t i) {
  const size_t S = g.size() - 1;
  const double s = g[i].sigma, n = g[i + 1].sigma;
  const double s_noise = c.s_noise.value_or(1.0);
  switch (c.kind) {
    case SamplerKind::Ddpm: {  // Ho et al. 2020, respaced: σ² = β̃ or β of the step, none on the last
      if (i + 1 == S) return 0.0;
      const double ab = g[i].alpha_bar, ab_next = g[i + 1].alpha_bar, beta = 1 - ab / ab_next;
      return c.variance.value_or(DdpmVariance::BetaTilde) == DdpmVariance::Beta ? beta
                                                                               : (1 - ab_next) / (1 - ab) * beta;
    }
    case SamplerKind::Ddim: {  // σ_t(η)² = η² (1 − ᾱ')/(1 − ᾱ) (1 − ᾱ/ᾱ')  (Song et al. 2021, eq. 16)
      const double ab = g[i].alpha_bar;
      const double ab_next = i + 1 < S || c.final_alpha_one.value_or(true) ? g[i + 1].alpha_bar : sch.alpha_bar(0);
      const double eta = c.eta.value_or(0.0);
      // (max: a last step from σ_min to ᾱ_0 has ᾱ = ᾱ' up to rounding, zero length)
      return std::max(0.0, eta * eta * (1 - ab_next) / (1 - ab) * (1 - ab / ab_next));
    }
    case SamplerKind::EulerAncestral: {  // k-diffusion get_ancestral_step, VE → VP: / (1 + σ_{i+1}²)
      const double eta = c.eta.value_or(1.0);
      const double up = std::min(n, eta * std::sqrt(n * n * (s * s - n * n) / (s * s)));
      return s_noise * s_noise * up * up / (1 + n * n);
    }
    case SamplerKind::DpmPp2mSde: {  // k-diffusion sample_dpmpp_2m_sde: σ_{i+1} √(1 − e^{−2ηh}) s_noise
      if (n == 0) return 0.0;
      const double h = std::log(s / n), eta = c.eta.value_or(1.0);
      return n * n * (-std::expm1(-2 * eta * h)) * s_noise * s_noise / (1 + n * n);
    }
    case SamplerKind::Euler:
    case SamplerKind::Heun: {
      // Karras et al. 2022, Alg. 2: σ̂ = σ(1 + γ), x̂ = x + √(σ̂² − σ²) s_noise z. With x₀ fixed
      // the Euler (and Heun) step to σ_{i+1} scales x̂ − x₀ by σ_{i+1}/σ̂, the noise with it.
      const double churn = c.churn.value_or(0.0);
      const bool in = s >= c.s_tmin.value_or(0.0) && s <= c.s_tmax.value_or(INFINITY);
      const double gamma = churn > 0 && in ? std::min(churn / double(S), std::sqrt(2.0) - 1) : 0.0;
      const double hat = s * (1 + gamma);
      return (n / hat) * (n / hat) * (hat * hat - s * s) * s_noise * s_noise / (1 + n * n);
    }
    default: return 0.0;
  }
}

struct MeasuredNoise {
  std::vector<double> var;       // per step: half the mean square of the regression residual
  std::vector<double> spread;    // per step: mean square of Δ_{i+1} (the scale of "zero")
};

// Two runs from the same x_T with noise seeds 101 and 202; N rows of 8.
MeasuredNoise measure_step_noise(const SamplerConfig& cfg, int64_t N = 2000) {
  const auto sch = make_schedule(ScheduleConfig{});
  const auto d = fixed_x0_denoiser(sch);
  NoiseStream start(5, 0, N);
  auto x_T = start.randn({8}, torch::dtype(torch::kFloat64));
  std::vector<torch::Tensor> a, b;
  NoiseStream n1(101, 0, N), n2(202, 0, N);
  sample(d, x_T, cfg, n1, [&](const StepInfo& s) { a.push_back(s.x.clone()); });
  sample(d, x_T, cfg, n2, [&](const StepInfo& s) { b.push_back(s.x.clone()); });
  MeasuredNoise m;
  auto prev = torch::zeros_like(x_T);
  for (size_t i = 0; i < a.size(); ++i) {
    auto delta = a[i] - b[i];
    const double pp = prev.pow(2).sum().item<double>();
    const double slope = pp > 0 ? (delta * prev).sum().item<double>() / pp : 0.0;
    m.var.push_back(0.5 * (delta - slope * prev).pow(2).mean().item<double>());
    m.spread.push_back(delta.pow(2).mean().item<double>());
    prev = delta;
  }
  return m;
}

SamplerConfig noise_config(SamplerKind k, SigmaSchedule sig, int64_t steps = 12) {
  SamplerConfig c;
  c.kind = k;
  c.steps = steps;
  c.sigmas = sig;
  return c;
}

std::vector<StepNoiseCase> noise_cases() {
  std::vector<StepNoiseCase> out;
  for (auto sig : {SigmaSchedule::Timesteps, SigmaSchedule::Karras}) {
    const std::string g = sig == SigmaSchedule::Karras ? "_karras" : "_trailing";
    auto c = noise_config(SamplerKind::Ddpm, sig);
    out.push_back({"ddpm_beta_tilde" + g, c});
    c.variance = DdpmVariance::Beta;
    out.push_back({"ddpm_beta" + g, c});
    c = noise_config(SamplerKind::Ddim, sig);
    c.eta = 1.0;
    out.push_back({"ddim_eta1" + g, c});
    c.eta = 0.5;
    c.final_alpha_one = false;  // noise on the last step too
    out.push_back({"ddim_eta0_5_final_alpha_bar0" + g, c});
    c = noise_config(SamplerKind::EulerAncestral, sig);
    out.push_back({"euler_ancestral" + g, c});
    c.eta = 0.5;
    c.s_noise = 1.5;
    out.push_back({"euler_ancestral_eta0_5_s_noise1_5" + g, c});
    c = noise_config(SamplerKind::DpmPp2mSde, sig);
    out.push_back({"dpmpp_2m_sde" + g, c});
    c.eta = 0.5;
    c.s_noise = 0.5;
    out.push_back({"dpmpp_2m_sde_eta0_5_s_noise0_5" + g, c});
    c = noise_config(SamplerKind::Euler, sig);
    c.churn = 5;  // γ = min(5/12, √2 − 1)
    c.s_tmin = 0.2;
    c.s_tmax = 20;
    out.push_back({"euler_churn5" + g, c});
    c = noise_config(SamplerKind::Heun, sig);
    c.churn = 2;  // γ = 1/6 at every step
    c.s_noise = 0.8;
    out.push_back({"heun_churn2_s_noise0_8" + g, c});
  }
  return out;
}

}  // namespace

class StepNoise : public ::testing::TestWithParam<StepNoiseCase> {};

// 16 000 elements per step: the variance estimate has a relative standard error √(2/16 000)
// = 1.1 %; the band is 5 of them. A step without noise must leave no residual at all.
TEST_P(StepNoise, EachStepInjectsTheVarianceOfItsEquations) {
  const auto& cfg = GetParam().cfg;
  const auto grid = sampling_grid(make_schedule(ScheduleConfig{}), cfg);
  const auto m = measure_step_noise(cfg);
  ASSERT_EQ(m.var.size(), grid.size() - 1);
  int noisy = 0;
  for (size_t i = 0; i < m.var.size(); ++i) {
    const double want = injected_variance(cfg, make_schedule(ScheduleConfig{}), grid, i);
    std::printf("%-40s step %2zu σ %9.4f → %8.4f: injected variance %.4e, formula %.4e\n", GetParam().name.c_str(), i,
                grid[i].sigma, grid[i + 1].sigma, m.var[i], want);
    if (want > 0) {
      ++noisy;
      EXPECT_NEAR(m.var[i] / want, 1.0, 0.056) << "step " << i;
    } else {
      EXPECT_LE(m.var[i], 1e-20 + 1e-20 * m.spread[i]) << "step " << i << " should add no noise";
    }
  }
  EXPECT_GE(noisy, 3);  // the case does exercise the noise
}

INSTANTIATE_TEST_SUITE_P(Samplers, StepNoise, ::testing::ValuesIn(noise_cases()),
                         [](const auto& info) { return info.param.name; });

// s_noise scales the injected standard deviation, η = 0 and churn 0 inject nothing: the
// samples do not depend on the noise seed at all.
TEST(StepNoiseOptions, SNoiseScalesAndZeroEtaIsDeterministic) {
  for (auto kind : {SamplerKind::EulerAncestral, SamplerKind::DpmPp2mSde}) {
    auto c = noise_config(kind, SigmaSchedule::Karras);
    const auto base = measure_step_noise(c, 1000);
    c.s_noise = 2.0;
    const auto doubled = measure_step_noise(c, 1000);
    for (size_t i = 0; i + 1 < base.var.size(); ++i)  // the last step adds none
      EXPECT_NEAR(doubled.var[i] / base.var[i], 4.0, 0.3) << to_string(kind) << " step " << i;
  }
  // (The fixed-x₀ model would not do here: every sampler's last step returns its x₀.)
  const auto sch = make_schedule(ScheduleConfig{});
  const auto d = tanh_x0_denoiser(sch);
  NoiseStream start(5, 0, 16);
  auto x_T = start.randn({8}, torch::dtype(torch::kFloat64));
  std::vector<SamplerConfig> quiet;
  for (auto kind : {SamplerKind::Ddim, SamplerKind::EulerAncestral, SamplerKind::DpmPp2mSde}) {
    auto c = noise_config(kind, SigmaSchedule::Karras);
    c.eta = 0.0;
    quiet.push_back(c);
  }
  auto c = noise_config(SamplerKind::EulerAncestral, SigmaSchedule::Karras);
  c.s_noise = 0.0;
  quiet.push_back(c);
  c = noise_config(SamplerKind::Heun, SigmaSchedule::Karras);
  c.churn = 0.0;
  quiet.push_back(c);
  for (const auto& q : quiet) {
    NoiseStream n1(101, 0, 16), n2(202, 0, 16);
    EXPECT_TRUE(torch::equal(sample(d, x_T, q, n1), sample(d, x_T, q, n2))) << to_string(q.kind);
  }
  // and the stochastic defaults do depend on it
  for (auto kind : {SamplerKind::EulerAncestral, SamplerKind::DpmPp2mSde, SamplerKind::Ddpm}) {
    NoiseStream n1(101, 0, 16), n2(202, 0, 16);
    auto c2 = noise_config(kind, SigmaSchedule::Timesteps);
    EXPECT_FALSE(torch::allclose(sample(d, x_T, c2, n1), sample(d, x_T, c2, n2))) << to_string(kind);
  }
}

// --- whole trajectories against the Python reference ------------------------------------

namespace {

// Printed by tools/reference/stochastic_samplers.py (see its docstring: model, grid, start,
// noise stream); the cases are in the order of its CASES.
const double kStochasticRef[10][12] = {
  // ddpm, beta-tilde
  {0.50703543676603746, -0.73130462057625523, -0.22555490474118103, 0.7022382346983268, -0.19038712560762358, 0.60112416407451696, -0.75904326654223886, -0.071004480603734987, 0.42249197135984723, -0.20334508461647188, 0.044014325994765215, -0.76367501333854815},
  // ddpm, beta
  {0.65003891542913506, -0.86080606243818092, -0.45539419143394511, 0.78755840370506691, -0.11342854090544562, 0.53525136389787653, -0.84490752572603722, -0.41683784383286243, 0.29886315493638455, -0.11229270075406284, 0.12541588912705037, -0.82687149150275618},
  // ddim, eta 1
  {0.50703543676603746, -0.73130462057625523, -0.22555490474118092, 0.70223823469832691, -0.1903871256076235, 0.60112416407451708, -0.75904326654223897, -0.071004480603734987, 0.42249197135984734, -0.20334508461647188, 0.044014325994765326, -0.76367501333854826},
  // ddim, eta 0.6, final_alpha_one false
  {0.57708029913337044, -0.38503839691281855, 0.58794709959459523, 0.075977894350179265, 0.55963674481323389, 0.79751086887821176, -0.28979590722927218, 0.4702009416091627, 0.47668340226757472, -0.67653551592824135, 0.41840454979308356, -0.76681166400170331},
  // euler-ancestral, eta 1, s_noise 1
  {0.50703543676603757, -0.73130462057625523, -0.22555490474118106, 0.70223823469832691, -0.19038712560762316, 0.60112416407451696, -0.75904326654223908, -0.071004480603735085, 0.42249197135984706, -0.2033450846164718, 0.044014325994765104, -0.76367501333854826},
  // euler-ancestral, eta 0.7, s_noise 1.2
  {0.60163070229898286, -0.67174552760613659, 0.50106626433040169, 0.45646749832110811, 0.51546383832828591, 0.79522655714145862, -0.63579053451268042, 0.39938232121465117, 0.5855238475493767, -0.63805850218697513, 0.322284679809208, -0.82725375971884729},
  // dpm++2m-sde, eta 1, s_noise 1
  {0.70898535985814348, -0.70810316189573241, -0.52911830639531088, 0.80618288373141, -0.24863672297057313, 0.61681816324507843, -0.78482702788333081, 0.081296858326398991, 0.45591350886198861, -0.06448525214472034, -0.14922046874361589, -0.77678843649250107},
  // dpm++2m-sde, eta 0.5, s_noise 0.8
  {0.5723845747826336, -0.61537154867652999, 0.21716279248320383, 0.61578459029631949, 0.19531477502569788, 0.7086682764852561, -0.67052845164469976, 0.29436081501955935, 0.51699585579730856, -0.43111097289114592, 0.10301488627597404, -0.76522051478370701},
  // euler, churn 5, s_tmin 0.1, s_tmax 10, s_noise 1.1
  {0.072611003353291806, -0.41827079721430677, 0.83759917271731221, -0.74559607120159577, 0.50308567593785658, 0.80229539392235516, -0.0065663298054104416, 0.48612977951502234, 0.47776824182279309, -0.74060967205293904, 0.43754292796660382, -0.45930951327655184},
  // heun, churn 2, s_noise 1
  {0.50830272891245043, -0.74281196056830701, 0.1243352889661163, 0.5423429967357638, 0.5960750547576098, 0.66635395396905883, -0.71114193034567919, -0.084266268270364514, 0.10529238246507792, -0.49007819573595884, 0.49296485247929361, -0.79497523417952631},
};

std::vector<std::pair<std::string, SamplerConfig>> stochastic_reference_cases() {
  auto cfg = [](SamplerKind k) {
    SamplerConfig c;
    c.kind = k;
    c.steps = 10;  // trailing timesteps, the default
    return c;
  };
  std::vector<std::pair<std::string, SamplerConfig>> out;
  auto c = cfg(SamplerKind::Ddpm);
  out.push_back({"ddpm, beta-tilde", c});
  c.variance = DdpmVariance::Beta;
  out.push_back({"ddpm, beta", c});
  c = cfg(SamplerKind::Ddim);
  c.eta = 1.0;
  out.push_back({"ddim, eta 1", c});
  c.eta = 0.6;
  c.final_alpha_one = false;
  out.push_back({"ddim, eta 0.6, final_alpha_one false", c});
  c = cfg(SamplerKind::EulerAncestral);
  out.push_back({"euler-ancestral", c});
  c.eta = 0.7;
  c.s_noise = 1.2;
  out.push_back({"euler-ancestral, eta 0.7, s_noise 1.2", c});
  c = cfg(SamplerKind::DpmPp2mSde);
  out.push_back({"dpm++2m-sde", c});
  c.eta = 0.5;
  c.s_noise = 0.8;
  out.push_back({"dpm++2m-sde, eta 0.5, s_noise 0.8", c});
  c = cfg(SamplerKind::Euler);
  c.churn = 5;
  c.s_tmin = 0.1;
  c.s_tmax = 10;
  c.s_noise = 1.1;
  out.push_back({"euler, churn 5", c});
  c = cfg(SamplerKind::Heun);
  c.churn = 2;
  out.push_back({"heun, churn 2", c});
  return out;
}

}  // namespace

TEST(StochasticSamplers, MatchPythonReferenceTrajectories) {
  const auto sch = make_schedule(ScheduleConfig{});  // linear, T = 1000, β 1e-4 … 0.02
  const auto model = tanh_x0_denoiser(sch);
  auto x_T = torch::sin(1.3 * torch::arange(12, torch::kFloat64) + 0.5).view({3, 4});
  const auto cases = stochastic_reference_cases();
  ASSERT_EQ(cases.size(), 10u);
  for (size_t k = 0; k < cases.size(); ++k) {
    auto noise = NoiseStream::shared(at::make_generator<at::CPUGeneratorImpl>(7), 3);
    auto x = sample(model, x_T, cases[k].second, noise).flatten();
    auto want = torch::from_blob(const_cast<double*>(kStochasticRef[k]), {12}, torch::kFloat64);
    const double err = (x - want).abs().max().item<double>();
    EXPECT_LT(err, 1e-9) << cases[k].first << ": got " << x << "\nwant " << want;
  }
}
