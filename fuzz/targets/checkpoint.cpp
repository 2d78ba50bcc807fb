// A run's checkpoint header: format, version, step, the training config and class names
// in the safetensors metadata (what load_run reads before it builds the network).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "train/trainer_state.hpp"

DIFFUSE_FUZZ_TARGET(checkpoint) {
  const std::string path = diffuse::fuzz::input_file(data, size, ".safetensors");
  const auto file = diffuse::load_safetensors(path);
  diffuse::read_checkpoint_header(file.metadata, path);
}
