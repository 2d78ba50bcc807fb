#include <torch/torch.h>

#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

namespace diffuse {

Network make_network(const TrainConfig& c) {
  if (c.model.dim < 1) throw Error("model.dim is not set (it comes from the data)");
  auto mlp = MlpDenoiser(c.model);
  Network net;
  net.module = mlp.ptr();
  net.forward = [mlp](const torch::Tensor& x, const torch::Tensor& t, const Conditioning& cond) mutable {
    return mlp->forward(x, t, cond.labels);
  };
  return net;
}

}  // namespace diffuse
