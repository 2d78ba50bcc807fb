// PNG images (folder: data, restoration inputs, masks, eval fd --samples).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

DIFFUSE_FUZZ_TARGET(png) {
  diffuse::read_png(diffuse::fuzz::input_file(data, size, ".png"));
}
