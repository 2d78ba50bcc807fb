// Training the feature network (see featnet.hpp) on a labelled image set's train split.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/progress.hpp"
#include "featnet_impl.hpp"

namespace diffuse {

void validate(const FeatNetConfig& c) {
  if (c.feature_dim < 2) throw Error("feature_dim must be >= 2");
  if (c.epochs < 1) throw Error("epochs must be >= 1");
  if (c.batch < 2) throw Error("batch must be >= 2", "BatchNorm needs at least 2 images a batch");
  if (!(c.lr > 0)) throw Error("lr must be > 0");
  if (c.weight_decay < 0) throw Error("weight_decay must be >= 0");
  if (c.dropout < 0 || c.dropout >= 1) throw Error("dropout must be in [0, 1)");
  if (c.shift < 0) throw Error("shift must be >= 0", "0: no translations");
  if (c.threads < 0) throw Error("threads must be >= 0", "0: all cores");
}

FeatNetConfig featnet_defaults(const std::string& data) {
  FeatNetConfig c;
  if (featnet_data_family(data) == "emoji") {
    c.epochs = 20;
    c.shift = 2;
  }
  return c;
}

namespace featnet_impl {
namespace {

// x (B, C, S, S) → each image translated by its own (dy, dx) ∈ [−k, k]², the pixels that
// come in copies of the edge ones (the emoji's background, Fashion-MNIST's black).
torch::Tensor random_shift(const torch::Tensor& x, int64_t k, at::Generator& gen) {
  if (k == 0) return x;
  namespace F = torch::nn::functional;
  const int64_t B = x.size(0), S = x.size(2);
  auto padded = F::pad(x, F::PadFuncOptions({k, k, k, k}).mode(torch::kReplicate));
  auto offset = torch::randint(0, 2 * k + 1, {B, 2}, gen, torch::kLong);
  auto o = offset.accessor<int64_t, 2>();
  auto out = torch::empty_like(x);
  for (int64_t b = 0; b < B; ++b) out[b].copy_(padded[b].narrow(1, o[b][0], S).narrow(2, o[b][1], S));
  return out;
}

struct Split {
  torch::Tensor x, y;  // (N, C, S, S) float32 in [−1, 1], (N) int64
  std::vector<std::string> class_names;
};

Split load_split(const std::string& spec, const DataOptions& o) {
  auto src = make_data_source(spec, o);
  if (!src->is_image() || src->size() == 0 || !src->labels().defined())
    throw Error("'" + spec + "' is not a labelled image set", "a feature network trains on fashion-mnist or emoji");
  auto batch = src->items(torch::arange(src->size(), torch::kLong));
  return {batch.x, batch.labels, src->class_names()};
}

}  // namespace
}  // namespace featnet_impl

FeatNet train_featnet(const FeatNetConfig& cfg, const std::string& data, const DataOptions& o,
                      const std::function<void(const FeatNetReport&)>& on_epoch) {
  using namespace featnet_impl;
  validate(cfg);
  if (cfg.threads > 0) torch::set_num_threads(int(cfg.threads));
  auto train = load_split(data_split_spec(data, "train"), o);
  auto test = load_split(data_split_spec(data, "test"), o);
  FeatNetSpec spec;
  spec.in_channels = train.x.size(1);
  spec.image_size = train.x.size(2);
  spec.feature_dim = cfg.feature_dim;
  spec.class_names = train.class_names;
  spec.data = data;
  if (featnet_data_family(data) == "emoji") spec.background = o.background;
  if (train.x.size(2) != train.x.size(3)) throw Error("a feature network trains on square images");

  torch::manual_seed(cfg.seed);
  FeatNet net(spec);
  auto& m = net.module();
  m.drop->options.p(cfg.dropout);
  const int64_t N = train.x.size(0), per_epoch = N / cfg.batch, total = per_epoch * cfg.epochs;
  if (per_epoch < 1)
    throw Error("batch " + std::to_string(cfg.batch) + " is larger than the " + std::to_string(N) + " training images");
  torch::optim::AdamW opt(m.parameters(), torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed + 1);
  Progress progress("featnet", total, 0, 50);
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= cfg.epochs; ++epoch) {
    m.train();
    auto perm = torch::randperm(N, gen, torch::kLong);
    double loss_sum = 0, correct = 0;
    for (int64_t b = 0; b < per_epoch; ++b, ++step) {
      // lr(s) = lr · ½ (1 + cos(π s / S))
      const double lr = cfg.lr * 0.5 * (1.0 + std::cos(M_PI * double(step) / double(total)));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      auto idx = perm.slice(0, b * cfg.batch, (b + 1) * cfg.batch);
      auto x = train.x.index_select(0, idx), y = train.y.index_select(0, idx);
      if (cfg.hflip) {
        auto flip = torch::rand({x.size(0)}, gen).lt(0.5).view({-1, 1, 1, 1});
        x = torch::where(flip, x.flip(3), x);
      }
      x = random_shift(x, cfg.shift, gen);
      auto logits = m.forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      correct += logits.argmax(1).eq(y).sum().item<double>();
      char extra[64];
      std::snprintf(extra, sizeof extra, "epoch %lld  loss %.4f", (long long)epoch, loss_sum / double(b + 1));
      progress.update(step + 1, extra);
    }
    m.eval();
    FeatNetReport r{epoch, loss_sum / double(per_epoch), correct / double(per_epoch * cfg.batch),
                    featnet_accuracy(net, test.x, test.y)};
    if (on_epoch) on_epoch(r);
  }
  progress.finish();
  m.eval();
  return net;
}

}  // namespace diffuse
