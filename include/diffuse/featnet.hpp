// diffuse — the feature network behind the project's Fréchet distance.
//
// The Inception network of FID cannot be downloaded here, so diffuse trains its own
// classifier on a labelled image set and takes the activations of its penultimate layer
// as features (the same role Inception's pool3 plays in FID). Two ship in assets/:
// featnet_fmnist (Fashion-MNIST, 1×28×28, ten classes) and featnet_emoji32 (the emoji set,
// 3×32×32, the nine Unicode emoji groups). For C×S×S images:
//
//   x (B, C, S, S) in [−1, 1]
//   → stage 1: [conv3×3 32, BN, ReLU] ×2 → maxpool 2        (B, 32, S/2, S/2)
//   → stage 2: [conv3×3 64, BN, ReLU] ×2 → maxpool 2        (B, 64, S/4, S/4)
//   → stage k ≥ 3: [conv3×3 128, BN, ReLU] ×2 → maxpool 2   while the side is even and > 4
//   → flatten → Linear → feature_dim, BN, ReLU               features (B, feature_dim)
//   → dropout → Linear feature_dim → classes                 logits
//
// so 28×28 has two stages (28 → 14 → 7, flatten 64·7·7 = 3136) and 32×32 three
// (32 → 16 → 8 → 4, flatten 128·4·4 = 2048).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace diffuse {

struct DataOptions;

// What a network takes and predicts; saved in its safetensors metadata. Files written
// before these keys existed are Fashion-MNIST networks: 1×28×28, its ten classes.
struct FeatNetSpec {
  int64_t in_channels = 1;               // 1 (gray) or 3 (RGB)
  int64_t image_size = 28;               // side S of the square images, >= 8
  int64_t feature_dim = 128;             // size of the feature vector (penultimate layer)
  std::vector<std::string> class_names;  // one per logit (empty: Fashion-MNIST's ten)
  std::string data = "fashion-mnist";    // the data spec it was trained on
  std::string background;                // emoji: the colour behind the glyphs ("" otherwise)
};
// The number of conv stages (maxpool halvings) for side S: halve while even and > 4.
int64_t featnet_stages(int64_t image_size);

struct FeatNetConfig {
  int64_t feature_dim = 128;  // size of the feature vector (penultimate layer)
  int64_t epochs = 6;         // passes over the training images
  int64_t batch = 128;        // images per optimizer step
  double lr = 2e-3;           // AdamW peak learning rate, cosine-decayed to 0
  double weight_decay = 5e-4;
  double dropout = 0.3;       // before the last layer
  bool hflip = true;          // random horizontal flips (keep the class of both data sets)
  int64_t shift = 0;          // random translations by up to this many pixels (edges repeated)
  uint64_t seed = 0;
  int64_t threads = 0;        // intra-op threads; 0: all cores
};
void validate(const FeatNetConfig& c);  // throws diffuse::Error naming the field
// The defaults for a data set: Fashion-MNIST's above; emoji (3 201 training images):
// 20 epochs, translations by up to 2 pixels and flips (measured, docs/evaluation.md).
FeatNetConfig featnet_defaults(const std::string& data);

class FeatNetImpl;  // the torch module (src/eval/featnet.cpp)

// A trained feature network, in eval mode.
class FeatNet {
 public:
  FeatNet();  // untrained Fashion-MNIST network
  explicit FeatNet(int64_t feature_dim);  // untrained Fashion-MNIST network
  explicit FeatNet(const FeatNetSpec& spec);
  ~FeatNet();
  FeatNet(FeatNet&&) noexcept;
  FeatNet& operator=(FeatNet&&) noexcept;

  const FeatNetSpec& spec() const;  // class_names always filled in
  int64_t feature_dim() const;
  int64_t in_channels() const;
  int64_t image_size() const;
  int64_t num_classes() const;
  // images: (N, C, S, S) of the spec, uint8 [0, 255] or floating point in [−1, 1].
  // Returns float64 (N, feature_dim) features / (N, classes) logits, computed in batches.
  torch::Tensor features(const torch::Tensor& images, int64_t batch = 500) const;
  torch::Tensor logits(const torch::Tensor& images, int64_t batch = 500) const;

  void save(const std::string& path) const;  // safetensors with the spec as metadata, atomically
  static FeatNet load(const std::string& path);
  FeatNetImpl& module() const;

 private:
  std::unique_ptr<FeatNetImpl> impl_;
};

// Where the shipped Fashion-MNIST weights are looked for: $DIFFUSE_FEATNET, else the source
// tree's assets/featnet_fmnist.safetensors, else the installed share/diffuse copy.
std::string default_featnet_path();
FeatNet load_default_featnet();  // throws, naming the paths tried and the command that makes them

// The networks available without --featnet: $DIFFUSE_FEATNET if set, then every
// featnet_*.safetensors of the source tree's assets/ and of the installed share/diffuse
// (the source tree's first when both hold a name), each with its spec.
struct FeatNetFile {
  std::string path;
  FeatNetSpec spec;
};
std::vector<FeatNetFile> available_featnets();
// "fashion-mnist" or "emoji" for specs of those data sets (any split or variant), else "".
std::string featnet_data_family(const std::string& spec);
// The spec of the train or test split of the data set `spec` names, variant kept:
// fashion-mnist → fashion-mnist:test; emoji:color → emoji:test:color. Throws for data
// without splits (folders, vectors).
std::string data_split_spec(const std::string& spec, const std::string& split);

// The network for images of the data family (may be "": any) with `channels` × S × S:
// an available network of that family (and, for emoji, that background) with the same
// channels and size; with exact = false, else the family's first (images get converted).
// Throws diffuse::Error listing the available networks and how to train one.
FeatNetFile find_featnet(const std::string& family, int64_t channels, int64_t image_size,
                         const std::string& background = "", bool exact = true);

struct FeatNetReport {
  int64_t epoch = 0;
  double train_loss = 0, train_accuracy = 0, test_accuracy = 0;
};
// Trains on the labelled image data `data` names (fashion-mnist, emoji…, see data.hpp;
// images made with `o`) and reports after each epoch the accuracy on its test split.
FeatNet train_featnet(const FeatNetConfig& cfg, const std::string& data, const DataOptions& o,
                      const std::function<void(const FeatNetReport&)>& on_epoch = {});

// Top-1 accuracy of the network on labelled images.
double featnet_accuracy(const FeatNet& net, const torch::Tensor& images, const torch::Tensor& labels);

}  // namespace diffuse
