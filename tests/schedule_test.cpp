// Schedules against an independent reference (tools/reference/schedules.py,
// numpy), validation errors, and the posterior identities of seed 002.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "diffuse/error.hpp"
#include "diffuse/schedule.hpp"

using namespace diffuse;

namespace {
struct Golden {
  const char* kind;
  int64_t t;
  double beta, alpha_bar;
};
// Produced by: python3 tools/reference/schedules.py
const Golden kGolden[] = {
  {"linear", 0, 0.0001, 0.99990000000000001},
  {"linear", 1, 0.00011991991991991993, 0.99978009207207208},
  {"linear", 250, 0.0050799799799799801, 0.52142303061852746},
  {"linear", 500, 0.010059959959959959, 0.077796658365023891},
  {"linear", 998, 0.019980080080080079, 4.118193638138445e-05},
  {"linear", 999, 0.02, 4.0358297653756761e-05},
  {"quadratic", 0, 0.0001, 0.99990000000000001},
  {"quadratic", 1, 0.00010264836435083402, 0.99979736190048563},
  {"quadratic", 250, 0.0018394000397882609, 0.82001023591230515},
  {"quadratic", 500, 0.0057420710676884821, 0.33127457951725564},
  {"quadratic", 998, 0.019962808524510992, 0.00074838006079675098},
  {"quadratic", 999, 0.02, 0.00073341245958081591},
  {"cosine", 0, 4.128422482196914e-05, 0.99995871577517803},
  {"cosine", 1, 4.6141752736428288e-05, 0.99991257592736804},
  {"cosine", 250, 0.0013272239542118092, 0.84588798649688235},
  {"cosine", 500, 0.0031556914415847848, 0.49228517244880227},
  {"cosine", 998, 0.74999939290111661, 2.4287669070348464e-06},
  {"cosine", 999, 0.999, 2.4287669070348484e-09},
  {"sigmoid", 0, 0.00024726231566347745, 0.99975273768433648},
  {"sigmoid", 1, 0.00027903670124155314, 0.99947376997835591},
  {"sigmoid", 25, 0.0048813791076739227, 0.95895534063045951},
  {"sigmoid", 50, 0.051514687910868551, 0.53214385378425355},
  {"sigmoid", 98, 0.099720963298758458, 0.0059918070419631431},
  {"sigmoid", 99, 0.09975273768433654, 0.0053941078858510327},
  {"sin2", 0, 0.0002467198171337559, 0.99975328018286624},
  {"sin2", 1, 0.00098663578586388745, 0.99876688781960299},
  {"sin2", 25, 0.15772644703565586, 0.21067569376014322},
  {"sin2", 50, 0.51570537953906403, 5.6900550874143094e-06},
  {"sin2", 98, 0.999, 1.0225862776623811e-57},
  {"sin2", 99, 0.999, 1.022586277662382e-60},
};

ScheduleConfig config_for(const std::string& kind) {
  ScheduleConfig c;
  c.kind = parse_schedule_kind(kind);
  c.T = (kind == "sigmoid" || kind == "sin2") ? 100 : 1000;
  return c;
}
}  // namespace

TEST(Schedule, MatchesIndependentReference) {
  for (const auto& g : kGolden) {
    const NoiseSchedule s = make_schedule(config_for(g.kind));
    SCOPED_TRACE(std::string(g.kind) + " t=" + std::to_string(g.t));
    EXPECT_NEAR(s.beta(g.t), g.beta, 1e-15 + 1e-12 * g.beta);
    EXPECT_NEAR(s.alpha_bar(g.t), g.alpha_bar, 1e-12 * g.alpha_bar + 1e-300);
  }
}

TEST(Schedule, AlphaBarZeroIsOneMinusBetaZero) {
  for (const char* k : {"linear", "cosine", "sigmoid", "quadratic"}) {
    auto s = make_schedule(config_for(k));
    EXPECT_DOUBLE_EQ(s.alpha_bar(0), 1.0 - s.beta(0));
  }
}

TEST(Schedule, PosteriorMatchesSeed002) {
  auto s = make_schedule(config_for("linear"));
  for (int64_t t : {1, 10, 500, 999}) {
    const double ab = s.alpha_bar(t), abp = s.alpha_bar(t - 1), b = s.beta(t), a = 1 - b;
    // ψ₂ = (1 − ᾱ_t)/(β_t(1 − ᾱ_{t−1})) is the precision; β̃_t = 1/ψ₂.
    EXPECT_NEAR(s.posterior_variance(t), b * (1 - abp) / (1 - ab), 1e-15);
    EXPECT_NEAR(1.0 / s.posterior_variance(t), 1.0 / (1 - abp) + a / b, 1e-9 / s.posterior_variance(t));
    // With x₀ = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t the mean is (x_t − β_t/√(1−ᾱ_t) ε)/√α_t:
    // coefficient of x_t: c0/√ᾱ_t + ct = 1/√α_t; of ε: −c0·√(1−ᾱ_t)/√ᾱ_t = −β_t/(√α_t √(1−ᾱ_t)).
    const double c0 = s.posterior_coef_x0(t), ct = s.posterior_coef_xt(t);
    EXPECT_NEAR(c0 / std::sqrt(ab) + ct, 1 / std::sqrt(a), 1e-12);
    EXPECT_NEAR(c0 * std::sqrt(1 - ab) / std::sqrt(ab), b / (std::sqrt(a) * std::sqrt(1 - ab)), 1e-12);
  }
  EXPECT_EQ(s.posterior_variance(0), 0.0);  // ᾱ_{−1} = 1
}

TEST(Schedule, SigmaAndSnr) {
  auto s = make_schedule(config_for("cosine"));
  for (int64_t t : {0, 300, 999}) {
    EXPECT_NEAR(s.sigma(t) * s.sigma(t), 1.0 / s.snr(t), 1e-9 / s.snr(t));
    EXPECT_NEAR(s.snr(t), s.alpha_bar(t) / (1 - s.alpha_bar(t)), 1e-9 * s.snr(t));
  }
}

namespace {
std::string error_of(const ScheduleConfig& c) {
  try {
    make_schedule(c);
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "";
}
}  // namespace

TEST(Schedule, InvalidParametersGiveClearErrors) {
  ScheduleConfig c;
  c.T = 0;
  EXPECT_NE(error_of(c).find("T must lie in 1 … 100000"), std::string::npos);
  c.T = kMaxScheduleSteps + 1;  // bounded: a config is not an allocation of gigabytes
  EXPECT_NE(error_of(c).find("T = 100001 is invalid"), std::string::npos);
  c = {};
  c.beta_end = 1.5;
  EXPECT_NE(error_of(c).find("beta_end = 1.5 is outside (0, 1)"), std::string::npos);
  c = {};
  c.beta_start = 0;
  EXPECT_NE(error_of(c).find("beta_start"), std::string::npos);
  c = {};
  c.kind = ScheduleKind::Sin2;  // T = 1000 of sin² underflows ᾱ
  EXPECT_NE(error_of(c).find("alpha_bar underflows"), std::string::npos);
  c = {};
  c.kind = ScheduleKind::Custom;
  EXPECT_NE(error_of(c).find("--betas-file"), std::string::npos);
  c.betas_file = "/nonexistent/betas.txt";
  EXPECT_NE(error_of(c).find("betas file '/nonexistent/betas.txt' not found"), std::string::npos);
  c.betas_file = "/tmp";
  EXPECT_NE(error_of(c).find("is not a regular file"), std::string::npos);
  try {
    parse_schedule_kind("cosinus");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("linear, cosine, sigmoid, sin2, quadratic, custom"), std::string::npos);
  }
}

TEST(Schedule, CustomFile) {
  const std::string path = ::testing::TempDir() + "/betas.txt";
  {
    std::ofstream f(path);
    f << "# three steps\n0.1, 0.2\n0.3\n";
  }
  ScheduleConfig c;
  c.kind = ScheduleKind::Custom;
  c.betas_file = path;
  auto s = make_schedule(c);
  ASSERT_EQ(s.T(), 3);
  // Seed 001's worked example: β = 0.1, 0.2, 0.3 → ᾱ = 0.9, 0.72, 0.504.
  EXPECT_NEAR(s.alpha_bar(2), 0.9 * 0.8 * 0.7, 1e-15);
  {
    std::ofstream f(path);
    f << "0.1\n1.2\n";
  }
  EXPECT_NE(error_of(c).find("beta[1] = 1.2 is outside (0, 1)"), std::string::npos);
  {
    std::ofstream f(path);
    f << "0.1\nabc\n";
  }
  EXPECT_NE(error_of(c).find(":2: 'abc' is not a number"), std::string::npos);
  std::remove(path.c_str());
}
