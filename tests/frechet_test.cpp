// The Fréchet distance against closed forms.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/metrics.hpp"

using namespace diffuse;

TEST(Frechet, ClosedFormForCommutingCovariances) {
  // Diagonal Σ₁ = diag(a), Σ₂ = diag(b): d² = ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)².
  auto a = torch::tensor({4.0, 1.0, 0.25, 0.0}, torch::kFloat64), b = torch::tensor({1.0, 1.0, 1.0, 2.0}, torch::kFloat64);
  GaussianStats A{torch::tensor({0.0, 1.0, 2.0, 3.0}, torch::kFloat64), torch::diag(a)};
  GaussianStats B{torch::tensor({1.0, 1.0, 0.0, 3.0}, torch::kFloat64), torch::diag(b)};
  const double want = 1.0 + 4.0 + (1.0 + 0.0 + 0.25 + 2.0);
  EXPECT_NEAR(frechet_distance(A, B), want, 1e-12);
  // Rotating both sets by the same orthogonal Q leaves d² unchanged, and the
  // product Σ₁Σ₂ is then not symmetric (the case a naive sqrtm gets wrong).
  auto g = at::make_generator<at::CPUGeneratorImpl>(1);
  auto Q = std::get<0>(torch::linalg::qr(torch::randn({4, 4}, g, torch::kFloat64)));
  GaussianStats RA{torch::matmul(Q, A.mean), torch::matmul(torch::matmul(Q, A.cov), Q.t())};
  GaussianStats RB{torch::matmul(Q, B.mean), torch::matmul(torch::matmul(Q, B.cov), Q.t())};
  // Σ₁ is singular: a round-off eigenvalue δ ~ 1e−16 contributes √δ ~ 1e−8.
  EXPECT_NEAR(frechet_distance(RA, RB), want, 1e-7);
  EXPECT_NEAR(frechet_distance(RA, RA), 0.0, 1e-7);
}

TEST(Frechet, NonCommutingPairMatchesTheMatrixSquareRoot) {
  // Σ₁ = [[2, 1], [1, 2]], Σ₂ = diag(1, 4): tr (Σ₁Σ₂)^{1/2} from the eigenvalues of
  // Σ₁Σ₂ = [[2, 4], [1, 8]] (real, positive): λ = 5 ± √13, so the trace is Σ √λ.
  GaussianStats A{torch::zeros({2}, torch::kFloat64), torch::tensor({{2.0, 1.0}, {1.0, 2.0}}, torch::kFloat64)};
  GaussianStats B{torch::zeros({2}, torch::kFloat64), torch::tensor({{1.0, 0.0}, {0.0, 4.0}}, torch::kFloat64)};
  const double tr = std::sqrt(5 + std::sqrt(13.0)) + std::sqrt(5 - std::sqrt(13.0));
  EXPECT_NEAR(frechet_distance(A, B), 4.0 + 5.0 - 2 * tr, 1e-12);
}

TEST(Frechet, StatsOfSamples) {
  auto x = torch::tensor({{0.0, 1.0}, {2.0, 1.0}, {4.0, 4.0}}, torch::kFloat64);
  auto s = gaussian_stats(x);
  EXPECT_TRUE(torch::allclose(s.mean, torch::tensor({2.0, 2.0}, torch::kFloat64)));
  EXPECT_NEAR(s.cov[0][0].item<double>(), 4.0, 1e-12);  // unbiased: (4 + 0 + 4)/2
  EXPECT_NEAR(s.cov[0][1].item<double>(), 3.0, 1e-12);  // ((−2)(−1) + 0 + 2·2)/2
  EXPECT_EQ(s.n, 3);
  EXPECT_THROW(gaussian_stats(torch::zeros({1, 3})), std::runtime_error);
}

namespace {
// The feature sets of tools/reference/frechet_scipy.py, built from the same formulas.
std::pair<torch::Tensor, torch::Tensor> reference_sets() {
  auto j = torch::arange(8, torch::kFloat64).unsqueeze(0);
  auto i = torch::arange(200, torch::kFloat64).unsqueeze(1);
  auto a = torch::sin(0.37 * i * (j + 1) + 0.11 * j) + 0.05 * j * torch::cos(0.91 * i);
  i = torch::arange(150, torch::kFloat64).unsqueeze(1);
  auto b = 1.2 * torch::cos(0.23 * i * (j + 2) - 0.3 * j) + 0.1 * torch::sin(1.7 * i + j);
  return {a, b};
}
}  // namespace

TEST(FrechetReference, MatchesScipySqrtm) {
  // tools/reference/frechet_scipy.py (Debian python3-scipy 1.10): pytorch-fid's formula
  // with scipy.linalg.sqrtm(Σ₁Σ₂) gives fd(a, b) = 0.153121555827.
  auto [a, b] = reference_sets();
  EXPECT_NEAR(frechet_distance(gaussian_stats(a), gaussian_stats(b)), 0.153121555827, 1e-9);
}

TEST(FrechetReference, PrecisionRecallMatchesBruteForce) {
  // tools/reference/frechet_scipy.py: brute-force k-NN balls in numpy.
  auto [a, b] = reference_sets();
  const double want[3][2] = {{0.0, 0.145}, {0.026666666667, 0.615}, {0.093333333333, 0.725}};
  const int64_t ks[3] = {1, 3, 5};
  for (int c = 0; c < 3; ++c) {
    auto pr = precision_recall(a, b, ks[c]);
    EXPECT_NEAR(pr.precision, want[c][0], 1e-9) << "k = " << ks[c];
    EXPECT_NEAR(pr.recall, want[c][1], 1e-9) << "k = " << ks[c];
  }
  EXPECT_THROW(precision_recall(a, b.slice(1, 0, 4)), diffuse::Error);
}
