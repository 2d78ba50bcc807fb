// CSV files of vectors (--data csv:PATH).
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

DIFFUSE_FUZZ_TARGET(csv) {
  diffuse::read_csv(diffuse::fuzz::input_file(data, size, ".csv"));
}
