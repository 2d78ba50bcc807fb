// AdamW's state in a checkpoint, and the warm-up + cosine learning rate (optimizer_state.hpp).
#include "train/optimizer_state.hpp"

#include <algorithm>
#include <cmath>

namespace diffuse {

std::string adam_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

void put_optimizer(std::map<std::string, torch::Tensor>& out, torch::optim::AdamW& opt, torch::nn::Module& m) {
  for (const auto& p : m.named_parameters()) {
    auto it = opt.state().find(adam_key(p.value()));
    if (it == opt.state().end()) continue;
    auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
    out["optim." + p.key() + ".exp_avg"] = st.exp_avg();
    out["optim." + p.key() + ".exp_avg_sq"] = st.exp_avg_sq();
    out["optim." + p.key() + ".step"] = torch::tensor(st.step(), torch::kLong);
  }
}

void get_optimizer(const std::map<std::string, torch::Tensor>& in, torch::optim::AdamW& opt, torch::nn::Module& m,
                   const torch::Device& dev) {
  for (const auto& p : m.named_parameters()) {
    auto it = in.find("optim." + p.key() + ".exp_avg");
    if (it == in.end()) continue;
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->exp_avg(it->second.to(dev).clone());
    st->exp_avg_sq(in.at("optim." + p.key() + ".exp_avg_sq").to(dev).clone());
    st->step(in.at("optim." + p.key() + ".step").item<int64_t>());
    opt.state()[adam_key(p.value())] = std::move(st);
  }
}

double warmup_cosine_lr(double lr, int64_t warmup, int64_t steps, double min_lr_ratio, int64_t s) {
  if (s < warmup) return lr * double(s + 1) / double(warmup);
  const double span = double(std::max<int64_t>(1, steps - warmup));
  const double p = std::min(1.0, double(s - warmup) / span);
  const double lo = lr * min_lr_ratio;
  return lo + (lr - lo) * 0.5 * (1.0 + std::cos(std::acos(-1.0) * p));
}

}  // namespace diffuse
