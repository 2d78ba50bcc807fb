// PSNR and SSIM (reconstruction.hpp) against closed forms and against an independent scipy
// implementation (tools/reference/ssim_reference.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "diffuse/error.hpp"
#include "diffuse/reconstruction.hpp"

using namespace diffuse;

TEST(Reconstruction, PsnrAndSsimMatchScipy) {
  // The images of tools/reference/ssim_reference.py.
  auto x = torch::empty({1, 2, 16, 14}, torch::kFloat64), y = torch::empty_like(x);
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 14; ++j) {
        const double v = 0.8 * std::sin(0.7 * i + 1.3 * j + c);
        x[0][c][i][j] = v;
        y[0][c][i][j] = std::clamp(v + 0.3 * std::cos(1.1 * i * j + 0.5 * c), -1.0, 1.0);
      }
  EXPECT_NEAR(ssim(x, y).item<double>(), 0.5701146309351106, 1e-10);
  EXPECT_NEAR(psnr(x, y).item<double>(), 19.383534407457272, 1e-10);
  EXPECT_NEAR(ssim(x.to(torch::kFloat32), y.to(torch::kFloat32)).item<double>(), 0.5701146309351106, 1e-5);
}

TEST(Reconstruction, ClosedForms) {
  auto x = torch::rand({3, 1, 12, 12}, torch::kFloat64) * 2 - 1;
  EXPECT_TRUE(torch::allclose(ssim(x, x), torch::ones({3}, torch::kFloat64), 0, 1e-12));
  EXPECT_TRUE(std::isinf(psnr(x, x)[0].item<double>()));
  // y = x + δ: MSE = δ², PSNR = 10 log10(R²/δ²).
  EXPECT_NEAR(psnr(x, x + 0.1)[1].item<double>(), 10 * std::log10(4.0 / 0.01), 1e-9);
  EXPECT_NEAR(psnr(x, x + 0.1, 1.0)[1].item<double>(), 10 * std::log10(1.0 / 0.01), 1e-9);
  // Constant images a, b: no variance, SSIM = (2ab + C1) / (a² + b² + C1).
  const double a = 0.3, b = -0.2, c1 = std::pow(0.01 * 2, 2);
  auto ca = torch::full({1, 3, 11, 13}, a, torch::kFloat64), cb = torch::full({1, 3, 11, 13}, b, torch::kFloat64);
  EXPECT_NEAR(ssim(ca, cb).item<double>(), (2 * a * b + c1) / (a * a + b * b + c1), 1e-9);
  EXPECT_THROW(ssim(torch::zeros({1, 1, 10, 10}), torch::zeros({1, 1, 10, 10})), Error);
  EXPECT_THROW(psnr(torch::zeros({1, 1, 4, 4}), torch::zeros({1, 1, 4, 5})), Error);
}
