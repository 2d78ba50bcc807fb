// Seed 002's signals: curves made of random sinusoids (see data.hpp).
#include <torch/torch.h>

#include <cmath>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace {
class Signals : public DataSource {
 public:
  explicit Signals(const SignalsOptions& o) : o_(o) {
    if (o.dim < 2 || o.components < 1 || !(o.freq_min > 0 && o.freq_max >= o.freq_min))
      throw Error("invalid signal options", "dim >= 2, components >= 1, 0 < freq_min <= freq_max");
  }
  std::vector<int64_t> shape() const override { return {o_.dim}; }
  std::string spec() const override { return "signals"; }
  DataBatch sample(int64_t n, torch::Generator& gen) const override {
    const double two_pi = 2 * std::acos(-1.0);
    const int64_t K = o_.components;
    auto opts = torch::dtype(torch::kFloat64);
    auto f = o_.freq_min + (o_.freq_max - o_.freq_min) * torch::rand({n, K, 1}, gen, opts);
    auto phi = two_pi * torch::rand({n, K, 1}, gen, opts);
    auto w = torch::rand({n, K, 1}, gen, opts);
    w = w / w.sum(1, true);                                       // Σ_k w_k = 1
    auto u = torch::linspace(0, 1, o_.dim, opts).view({1, 1, -1});  // (1, 1, D)
    return {(w * torch::sin(two_pi * f * u + phi)).sum(1).to(torch::kFloat32), {}};  // (n, D)
  }

 private:
  SignalsOptions o_;
};
}  // namespace

std::unique_ptr<DataSource> make_signals(const SignalsOptions& o) {
  return std::make_unique<Signals>(o);
}

}  // namespace diffuse
