// diffuse — the feature network behind the project's Fréchet distance.
//
// The Inception network of FID cannot be downloaded here, so diffuse trains its own
// classifier on the Fashion-MNIST train split and takes the activations of its
// penultimate layer as features (the same role Inception's pool3 plays in FID):
//
//   x (B, 1, 28, 28) in [−1, 1]
//   → [conv3×3 32, BN, ReLU] ×2 → maxpool 2     (B, 32, 14, 14)
//   → [conv3×3 64, BN, ReLU] ×2 → maxpool 2     (B, 64, 7, 7)
//   → flatten → Linear 3136→feature_dim, BN, ReLU   features (B, feature_dim)
//   → dropout → Linear feature_dim→10               logits
//
// The default weights ship in the repository (assets/featnet_fmnist.safetensors),
// written by `diffuse eval train-featnet` with the defaults below.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace diffuse {

struct FeatNetConfig {
  int64_t feature_dim = 128;  // size of the feature vector (penultimate layer)
  int64_t epochs = 6;         // passes over the 60 000 training images
  int64_t batch = 128;        // images per optimizer step
  double lr = 2e-3;           // AdamW peak learning rate, cosine-decayed to 0
  double weight_decay = 5e-4;
  double dropout = 0.3;       // before the last layer
  bool hflip = true;          // random horizontal flips (Fashion-MNIST is flip-symmetric)
  uint64_t seed = 0;
  int64_t threads = 0;        // intra-op threads; 0: all cores
};
void validate(const FeatNetConfig& c);  // throws diffuse::Error naming the field

class FeatNetImpl;  // the torch module (src/eval/featnet.cpp)

// A trained feature network, in eval mode.
class FeatNet {
 public:
  FeatNet();  // untrained, default feature_dim
  explicit FeatNet(int64_t feature_dim);
  ~FeatNet();
  FeatNet(FeatNet&&) noexcept;
  FeatNet& operator=(FeatNet&&) noexcept;

  int64_t feature_dim() const;
  // images: (N, 1, 28, 28), uint8 [0, 255] or floating point in [−1, 1].
  // Returns float64 (N, feature_dim) features / (N, 10) logits, computed in batches.
  torch::Tensor features(const torch::Tensor& images, int64_t batch = 500) const;
  torch::Tensor logits(const torch::Tensor& images, int64_t batch = 500) const;

  void save(const std::string& path) const;  // safetensors, atomically
  static FeatNet load(const std::string& path);
  FeatNetImpl& module() const;

 private:
  std::unique_ptr<FeatNetImpl> impl_;
};

// Where the shipped weights are looked for: $DIFFUSE_FEATNET, else the source tree's
// assets/featnet_fmnist.safetensors, else the installed share/diffuse copy.
std::string default_featnet_path();
FeatNet load_default_featnet();  // throws, naming the paths tried and the command that makes them

struct FeatNetReport {
  int64_t epoch = 0;
  double train_loss = 0, train_accuracy = 0, test_accuracy = 0;
};
// Trains on the Fashion-MNIST train split found in data_dir and reports after each
// epoch (test accuracy on the 10 000 test images).
FeatNet train_featnet(const FeatNetConfig& cfg, const std::string& data_dir,
                      const std::function<void(const FeatNetReport&)>& on_epoch = {});

// Top-1 accuracy of the network on labelled images.
double featnet_accuracy(const FeatNet& net, const torch::Tensor& images, const torch::Tensor& labels);

}  // namespace diffuse
