#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/nn/mlp.hpp"

namespace diffuse {

MlpBlockImpl::MlpBlockImpl(int64_t hidden) {
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  fc1 = register_module("fc1", torch::nn::Linear(hidden, hidden));
  emb_proj = register_module("emb_proj", torch::nn::Linear(hidden, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
}

torch::Tensor MlpBlockImpl::forward(const torch::Tensor& h, const torch::Tensor& emb) {
  auto y = torch::silu(fc1(norm(h)) + emb_proj(emb));
  return h + fc2(y);
}

MlpDenoiserImpl::MlpDenoiserImpl(const MlpOptions& o) : options_(o) {
  if (o.dim < 1 || o.hidden < 1 || o.blocks < 0 || o.time_dim < 2 || o.num_classes < 0)
    throw Error("invalid MLP options", "dim, hidden, time_dim must be positive; blocks, num_classes >= 0");
  in_ = register_module("in", torch::nn::Linear(o.dim, o.hidden));
  t1_ = register_module("t1", torch::nn::Linear(o.time_dim, o.hidden));
  t2_ = register_module("t2", torch::nn::Linear(o.hidden, o.hidden));
  if (o.num_classes > 0)
    label_emb_ = register_module("label_emb", torch::nn::Embedding(o.num_classes + 1, o.hidden));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.blocks; ++i) blocks_->push_back(MlpBlock(o.hidden));
  out_norm_ = register_module("out_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden})));
  out_ = register_module("out", torch::nn::Linear(o.hidden, o.dim));
  // A zero last layer makes the untrained model predict 0, a stable start.
  torch::NoGradGuard g;
  out_->weight.zero_();
  out_->bias.zero_();
}

torch::Tensor MlpDenoiserImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                       const torch::Tensor& labels) {
  auto emb = t2_(torch::silu(t1_(timestep_embedding(t, options_.time_dim))));  // (B, H)
  if (label_emb_) {
    auto y = labels.defined() ? labels.to(torch::kLong)
                              : torch::full({x.size(0)}, options_.num_classes,
                                            torch::dtype(torch::kLong).device(x.device()));
    emb = emb + label_emb_(y);
  }
  emb = torch::silu(emb);
  auto h = in_(x);
  for (auto& b : *blocks_) h = b->as<MlpBlock>()->forward(h, emb);
  return out_(torch::silu(out_norm_(h)));
}

}  // namespace diffuse
