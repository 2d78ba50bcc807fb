// The feature network's torch module, shared by featnet.cpp (model, weights) and
// featnet_train.cpp (training). Not installed.
#pragma once
#include <torch/torch.h>

#include "diffuse/featnet.hpp"

namespace diffuse {

class FeatNetImpl : public torch::nn::Module {
 public:
  explicit FeatNetImpl(const FeatNetSpec& spec);  // class_names empty → Fashion-MNIST's
  torch::Tensor features(const torch::Tensor& x);  // (B, C, S, S) in [−1, 1] → (B, feature_dim)
  torch::Tensor forward(const torch::Tensor& x);   // → logits (B, classes)

  FeatNetSpec spec;
  torch::nn::Sequential convs{nullptr};
  torch::nn::Linear fc{nullptr}, head{nullptr};
  torch::nn::BatchNorm1d fc_norm{nullptr};
  torch::nn::Dropout drop{nullptr};
};

namespace featnet_impl {
// (N, C, S, S) uint8 [0, 255] or float [−1, 1] of the spec's shape → float32 [−1, 1]; throws otherwise.
torch::Tensor as_input(const torch::Tensor& images, const FeatNetSpec& spec);
}  // namespace featnet_impl

}  // namespace diffuse
