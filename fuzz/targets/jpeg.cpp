// JPEG images (folder: data, restoration inputs).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

DIFFUSE_FUZZ_TARGET(jpeg) {
  diffuse::read_jpeg(diffuse::fuzz::input_file(data, size, ".jpg"));
}
