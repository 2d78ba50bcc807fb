// safetensors files (checkpoints, feature networks, --weights of the reference tests).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

DIFFUSE_FUZZ_TARGET(safetensors) {
  diffuse::load_safetensors(diffuse::fuzz::input_file(data, size, ".safetensors"));
}
