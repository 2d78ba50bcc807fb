// The Fashion-MNIST feature network (see featnet.hpp): model, training, weights.
#include "diffuse/featnet.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/progress.hpp"

namespace diffuse {

namespace nn = torch::nn;

class FeatNetImpl : public nn::Module {
 public:
  explicit FeatNetImpl(int64_t feature_dim) : feature_dim(feature_dim) {
    // [conv3×3, BN, ReLU] ×2, maxpool, twice (one flat Sequential: they do not nest)
    convs = register_module("convs", nn::Sequential());
    int64_t in = 1;
    for (int64_t out : {32, 32, 0, 64, 64, 0}) {
      if (out == 0) {
        convs->push_back(nn::MaxPool2d(2));
        continue;
      }
      convs->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
      convs->push_back(nn::BatchNorm2d(out));
      convs->push_back(nn::ReLU());
      in = out;
    }
    fc = register_module("fc", nn::Linear(nn::LinearOptions(64 * 7 * 7, feature_dim).bias(false)));
    fc_norm = register_module("fc_norm", nn::BatchNorm1d(feature_dim));
    drop = register_module("drop", nn::Dropout(0.3));
    head = register_module("head", nn::Linear(feature_dim, 10));
  }
  // x: (B, 1, 28, 28) in [−1, 1] → features (B, feature_dim)
  torch::Tensor features(const torch::Tensor& x) {
    return torch::relu(fc_norm(fc(convs->forward(x).flatten(1))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head(drop(features(x))); }

  int64_t feature_dim;
  nn::Sequential convs{nullptr};
  nn::Linear fc{nullptr}, head{nullptr};
  nn::BatchNorm1d fc_norm{nullptr};
  nn::Dropout drop{nullptr};
};

namespace {

constexpr const char* kFormat = "diffuse-featnet-1";

std::string shape_string(c10::IntArrayRef s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

// (N, 1, 28, 28) uint8 or float in [−1, 1] → float32 in [−1, 1].
torch::Tensor as_input(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 1 || images.size(2) != 28 || images.size(3) != 28)
    throw Error("the feature network takes 28×28 grayscale images (N, 1, 28, 28), got shape " +
                    shape_string(images.sizes()),
                "it is trained on Fashion-MNIST; other image sizes have no features");
  if (images.scalar_type() == torch::kUInt8) return images.to(torch::kFloat32).div(127.5).sub(1.0);
  if (!images.is_floating_point()) throw Error("images must be uint8 or floating point");
  return images.to(torch::kFloat32);
}

template <class F>
torch::Tensor batched(const torch::Tensor& images, int64_t batch, F&& f) {
  torch::NoGradGuard no_grad;
  auto x = as_input(images);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) parts.push_back(f(x.slice(0, i, i + batch)).to(torch::kFloat64));
  if (parts.empty()) throw Error("no images to compute features of");
  return torch::cat(parts);
}

}  // namespace

void validate(const FeatNetConfig& c) {
  if (c.feature_dim < 2) throw Error("feature_dim must be >= 2");
  if (c.epochs < 1) throw Error("epochs must be >= 1");
  if (c.batch < 2) throw Error("batch must be >= 2", "BatchNorm needs at least 2 images a batch");
  if (!(c.lr > 0)) throw Error("lr must be > 0");
  if (c.weight_decay < 0) throw Error("weight_decay must be >= 0");
  if (c.dropout < 0 || c.dropout >= 1) throw Error("dropout must be in [0, 1)");
  if (c.threads < 0) throw Error("threads must be >= 0", "0: all cores");
}

FeatNet::FeatNet() : FeatNet(FeatNetConfig{}.feature_dim) {}
FeatNet::FeatNet(int64_t feature_dim) : impl_(std::make_unique<FeatNetImpl>(feature_dim)) { impl_->eval(); }
FeatNet::~FeatNet() = default;
FeatNet::FeatNet(FeatNet&&) noexcept = default;
FeatNet& FeatNet::operator=(FeatNet&&) noexcept = default;
FeatNetImpl& FeatNet::module() const { return *impl_; }
int64_t FeatNet::feature_dim() const { return impl_->feature_dim; }

torch::Tensor FeatNet::features(const torch::Tensor& images, int64_t batch) const {
  return batched(images, batch, [&](const torch::Tensor& x) { return impl_->features(x); });
}
torch::Tensor FeatNet::logits(const torch::Tensor& images, int64_t batch) const {
  return batched(images, batch, [&](const torch::Tensor& x) { return impl_->forward(x); });
}

void FeatNet::save(const std::string& path) const {
  std::map<std::string, torch::Tensor> t;
  for (const auto& p : impl_->named_parameters()) t[p.key()] = p.value().detach().cpu().contiguous();
  for (const auto& b : impl_->named_buffers()) t[b.key()] = b.value().detach().cpu().contiguous();
  save_safetensors(path, t, {{"format", kFormat}, {"feature_dim", std::to_string(impl_->feature_dim)}});
}

FeatNet FeatNet::load(const std::string& path) {
  auto file = load_safetensors(path);
  auto fmt = file.metadata.find("format");
  if (fmt == file.metadata.end() || fmt->second != kFormat)
    throw Error(path + " is not a diffuse feature network", "make one with: diffuse eval train-featnet --out FILE");
  FeatNet net(std::stoll(file.metadata.at("feature_dim")));
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw Error(path + " lacks tensor " + name);
    if (it->second.sizes() != dst.sizes()) throw Error(path + ": tensor " + name + " has the wrong shape");
    dst.copy_(it->second);
  };
  for (auto& p : net.impl_->named_parameters()) assign(p.key(), p.value());
  for (auto& b : net.impl_->named_buffers()) assign(b.key(), b.value());
  net.impl_->eval();
  return net;
}

std::string default_featnet_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("DIFFUSE_FEATNET"); env && *env) return env;
  const std::string name = "/featnet_fmnist.safetensors";
#ifdef DIFFUSE_SOURCE_ASSETS
  if (fs::exists(DIFFUSE_SOURCE_ASSETS + name)) return DIFFUSE_SOURCE_ASSETS + name;
#endif
#ifdef DIFFUSE_INSTALL_ASSETS
  if (fs::exists(DIFFUSE_INSTALL_ASSETS + name)) return DIFFUSE_INSTALL_ASSETS + name;
#endif
  return {};
}

FeatNet load_default_featnet() {
  const std::string path = default_featnet_path();
  if (path.empty())
    throw Error("no feature network found (looked at $DIFFUSE_FEATNET and assets/featnet_fmnist.safetensors)",
                "make one with: diffuse eval train-featnet --out assets/featnet_fmnist.safetensors, "
                "or pass --featnet FILE");
  return FeatNet::load(path);
}

double featnet_accuracy(const FeatNet& net, const torch::Tensor& images, const torch::Tensor& labels) {
  auto pred = net.logits(images).argmax(1);
  return pred.eq(labels.to(torch::kLong)).to(torch::kFloat64).mean().item<double>();
}

FeatNet train_featnet(const FeatNetConfig& cfg, const std::string& data_dir,
                      const std::function<void(const FeatNetReport&)>& on_epoch) {
  validate(cfg);
  if (cfg.threads > 0) torch::set_num_threads(int(cfg.threads));
  auto train = load_fashion_mnist(data_dir, "train");
  auto test = load_fashion_mnist(data_dir, "test");
  torch::manual_seed(cfg.seed);
  FeatNet net(cfg.feature_dim);
  auto& m = net.module();
  m.drop->options.p(cfg.dropout);
  auto x_all = as_input(train.images);
  auto y_all = train.labels.to(torch::kLong);
  const int64_t N = x_all.size(0), per_epoch = N / cfg.batch, total = per_epoch * cfg.epochs;
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
      auto x = x_all.index_select(0, idx), y = y_all.index_select(0, idx);
      if (cfg.hflip) {
        auto flip = torch::rand({x.size(0)}, gen).lt(0.5).view({-1, 1, 1, 1});
        x = torch::where(flip, x.flip(3), x);
      }
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
                    featnet_accuracy(net, test.images, test.labels)};
    if (on_epoch) on_epoch(r);
  }
  progress.finish();
  m.eval();
  return net;
}

}  // namespace diffuse
