// Internal: what a checkpoint holds and how it is written and read back.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "diffuse/train.hpp"

namespace diffuse {

inline constexpr const char* kCheckpointFormat = "diffuse-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// Parameters and buffers of a module by name, with a prefix ("model.", "ema.").
void put_module(std::map<std::string, torch::Tensor>& out, const std::string& prefix,
                torch::nn::Module& m);
// Copies tensors prefix+name into the module's parameters and buffers; every one must exist.
void get_module(const std::map<std::string, torch::Tensor>& in, const std::string& prefix,
                torch::nn::Module& m, const std::string& path);

struct CheckpointHeader {
  TrainConfig config;
  int64_t step = 0;
  std::vector<std::string> class_names;  // of the training data, if labelled
};
CheckpointHeader read_checkpoint_header(const std::map<std::string, std::string>& metadata,
                                        const std::string& path);
std::map<std::string, std::string> checkpoint_metadata(const TrainConfig& c, int64_t step,
                                                       const std::vector<std::string>& class_names);

}  // namespace diffuse
