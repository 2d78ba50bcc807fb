// Training configs (--config FILE, a run's config.json, the config in a checkpoint).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

DIFFUSE_FUZZ_TARGET(train_config) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  diffuse::validate(diffuse::train_config_from_json(text, {}, "fuzz input"));
}
