// IDX files (Fashion-MNIST and --data-dir), plain or gzip-compressed.
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

DIFFUSE_FUZZ_TARGET(idx) {
  diffuse::read_idx(diffuse::fuzz::input_file(data, size, ".idx"));
}
