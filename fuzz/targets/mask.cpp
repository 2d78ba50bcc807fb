// Inpainting masks (--mask): a spec (box:x,y,w,h, half:SIDE, random:p) or a PNG file.
// Byte 0: height 1…64, byte 1: width 1…64, byte 2: odd → the rest is a PNG mask file.
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"

DIFFUSE_FUZZ_TARGET(mask) {
  if (size < 3) return;
  const int64_t h = 1 + data[0] % 64, w = 1 + data[1] % 64;
  const bool file = data[2] & 1;
  const std::string rest(reinterpret_cast<const char*>(data + 3), size - 3);
  const std::string spec =
      file ? diffuse::fuzz::second_file(data + 3, size - 3, ".png") : rest;
  diffuse::parse_mask(spec, h, w, 7);
}
