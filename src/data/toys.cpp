// 2-D toy distributions, as in FFJORD (Grathwohl et al. 2019) and scikit-learn.
#include <torch/torch.h>

#include <cmath>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

std::unique_ptr<DataSource> make_toy(const std::string& name);

namespace {
const double kPi = std::acos(-1.0);

class Toy : public DataSource {
 public:
  explicit Toy(std::string name) : name_(std::move(name)) {}
  std::vector<int64_t> shape() const override { return {2}; }
  std::string spec() const override { return "toy:" + name_; }
  DataBatch sample(int64_t n, torch::Generator& g) const override {
    auto o = torch::dtype(torch::kFloat64);
    torch::Tensor x, y;
    if (name_ == "swissroll") {
      // θ = 1.5π(1 + 2u); (θ cos θ, θ sin θ) + N(0, 0.5²), scaled by 1/5.
      auto th = 1.5 * kPi * (1 + 2 * torch::rand({n}, g, o));
      x = (th * torch::cos(th) + 0.5 * torch::randn({n}, g, o)) / 5;
      y = (th * torch::sin(th) + 0.5 * torch::randn({n}, g, o)) / 5;
    } else if (name_ == "8gaussians") {
      // 8 centres on a circle of radius 4, std 0.5, all divided by √2.
      auto k = torch::randint(0, 8, {n}, g, torch::dtype(torch::kLong)).to(torch::kFloat64);
      auto ang = k * (kPi / 4);
      x = (4 * torch::cos(ang) + 0.5 * torch::randn({n}, g, o)) / std::sqrt(2.0);
      y = (4 * torch::sin(ang) + 0.5 * torch::randn({n}, g, o)) / std::sqrt(2.0);
    } else if (name_ == "moons") {
      // Two interleaved half circles (scikit-learn's make_moons, noise 0.05), centred, ×2.
      auto th = kPi * torch::rand({n}, g, o);
      auto upper = torch::rand({n}, g, o) < 0.5;
      x = torch::where(upper, torch::cos(th), 1 - torch::cos(th));
      y = torch::where(upper, torch::sin(th), 0.5 - torch::sin(th));
      x = 2 * (x - 0.5 + 0.05 * torch::randn({n}, g, o));
      y = 2 * (y - 0.25 + 0.05 * torch::randn({n}, g, o));
    } else {  // checkerboard: uniform on the dark squares of a 4×4 board over [−4, 4]².
      auto x1 = 4 * torch::rand({n}, g, o) - 2;
      auto r = torch::rand({n}, g, o) - 2 * torch::randint(0, 2, {n}, g, torch::dtype(torch::kLong));
      auto x2 = r + torch::remainder(torch::floor(x1), 2);
      x = 2 * x1;
      y = 2 * x2;
    }
    return {torch::stack({x, y}, 1).to(torch::kFloat32), {}};
  }

 private:
  std::string name_;
};
}  // namespace

std::unique_ptr<DataSource> make_toy(const std::string& name) {
  static const std::vector<std::string> names = {"swissroll", "8gaussians", "moons", "checkerboard"};
  for (const auto& n : names)
    if (n == name) return std::make_unique<Toy>(name);
  throw Error("unknown toy '" + name + "'", "valid toys: toy:" + join(names, ", toy:"));
}

}  // namespace diffuse
