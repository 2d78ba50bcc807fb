// Class labels of drawn samples in proportion to class weights (eval fd on unbalanced data).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"

using namespace diffuse;

TEST(LabelsInProportion, EqualWeightsAreClassesInTurn) {
  auto l = labels_in_proportion({6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000}, 10, 1000);
  EXPECT_TRUE(torch::equal(l, torch::arange(1000, torch::kLong) % 10));
}

TEST(LabelsInProportion, EveryPrefixStaysWithinOneOfItsShare) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t K = 2 + trial % 9;
    std::vector<double> w(K);
    double total = 0;
    for (auto& x : w) total += (x = std::uniform_real_distribution<double>(0, 1)(rng) * (trial % 3 ? 1 : 100));
    w[trial % K] = trial % 4 == 0 ? 0.0 : w[trial % K];  // a class with no weight is never drawn
    total = 0;
    for (double x : w) total += x;
    const int64_t n = 500;
    auto l = labels_in_proportion(w, K, n);
    auto* p = l.data_ptr<int64_t>();
    std::vector<int64_t> count(K, 0);
    for (int64_t i = 0; i < n; ++i) {
      ++count[p[i]];
      for (int64_t c = 0; c < K; ++c)
        ASSERT_LT(std::abs(double(count[c]) - w[c] / total * double(i + 1)), 1.0 + 1e-9)
            << "trial " << trial << " prefix " << i + 1 << " class " << c;
    }
    // label i does not depend on n
    EXPECT_TRUE(torch::equal(labels_in_proportion(w, K, 123), l.slice(0, 0, 123)));
  }
}

TEST(LabelsInProportion, ErrorsSayWhy) {
  EXPECT_THROW(labels_in_proportion({1, 2}, 3, 10), Error);
  EXPECT_THROW(labels_in_proportion({0, 0}, 2, 10), Error);
  EXPECT_THROW(labels_in_proportion({1, -1}, 2, 10), Error);
}
