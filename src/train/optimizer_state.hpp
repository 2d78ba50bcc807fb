// Internal: AdamW's state in a checkpoint, and the learning-rate schedule — shared by the
// Trainer (trainer.cpp) and the distiller (distill/distill.cpp).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

namespace diffuse {

// The key of a parameter in AdamW's state table (LibTorch 1.13 keys it by the TensorImpl address).
std::string adam_key(const torch::Tensor& p);
// AdamW's moments and step counts of m's parameters as "optim.NAME.exp_avg", ".exp_avg_sq", ".step".
void put_optimizer(std::map<std::string, torch::Tensor>& out, torch::optim::AdamW& opt, torch::nn::Module& m);
// The state written by put_optimizer, into opt (on `dev`); parameters without saved state keep none.
void get_optimizer(const std::map<std::string, torch::Tensor>& in, torch::optim::AdamW& opt, torch::nn::Module& m,
                   const torch::Device& dev);

// The learning rate of 0-based step s of a run of `steps` steps: linear warm-up over `warmup`
// steps to lr, then cosine decay to lr · min_lr_ratio at step `steps`.
double warmup_cosine_lr(double lr, int64_t warmup, int64_t steps, double min_lr_ratio, int64_t s);

}  // namespace diffuse
