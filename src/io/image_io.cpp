// PNG reader and writer (libpng), to_uint8, make_grid, enlarged pictures (format notes: image_io.hpp).
//
// libpng reports errors by longjmp. The functions that call setjmp (png_decode,
// png_encode) hold no C++ objects with destructors, so a longjmp out of libpng
// skips nothing; they report failure by return value and the caller throws.
// libpng's callbacks never let a C++ exception cross its C frames.
#include <png.h>

#include <torch/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace image_detail {
// (C, H, W) or (H, W) uint8 or floating point in [0, 1] → contiguous CPU (C, H, W)
// uint8 with C = 1 or 3. `context` starts the error message, e.g. "cannot write 'x.png'".
// Shared with gif.cpp.
torch::Tensor as_chw_uint8(const torch::Tensor& image, const std::string& context) {
  if (!image.defined()) throw Error(context + ": the image tensor is undefined");
  auto t = image.detach();
  std::ostringstream shape;
  shape << t.sizes();
  if (t.dim() == 2) t = t.unsqueeze(0);
  if (t.dim() != 3 || (t.size(0) != 1 && t.size(0) != 3))
    throw Error(context + ": the image has shape " + shape.str() +
                "; expected (C, H, W) with C = 1 (gray) or 3 (RGB), or (H, W)");
  if (t.size(1) < 1 || t.size(2) < 1) throw Error(context + ": the image is empty " + shape.str());
  if (t.is_floating_point()) {
    t = torch::nan_to_num(t.to(torch::kFloat32), 0.0);
    // Small overshoot (interpolation) is clamped; a range far from [0, 1] is a mistake
    // that would otherwise give a silently saturated picture.
    const auto [lo, hi] = torch::aminmax(t);
    const double lo_v = lo.item<double>(), hi_v = hi.item<double>();
    if (lo_v < -0.5 || hi_v > 1.5)
      throw Error(context + ": floating-point image values must be in [0, 1], found " + std::to_string(lo_v) +
                      " … " + std::to_string(hi_v),
                  "images in [-1, 1]: convert with to_uint8; values in 0 … 255: convert to uint8 first");
    t = t.mul(255.0).round().clamp(0, 255).to(torch::kUInt8);
  } else if (t.scalar_type() != torch::kUInt8) {
    throw Error(context + ": the image has dtype " + std::string(c10::toString(t.scalar_type())) +
                "; expected uint8 (0 … 255) or floating point (0 … 1)");
  }
  return t.to(torch::kCPU).contiguous();
}
}  // namespace image_detail

namespace png_io {
namespace {

struct PngMessage {
  char text[256];
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* m = static_cast<PngMessage*>(png_get_error_ptr(png));
  std::snprintf(m->text, sizeof m->text, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}  // benign (e.g. unknown chunks): ignored

struct PngSource {
  const unsigned char* data;
  size_t size, pos;
  uint32_t max_side = uint32_t(kMaxImageSide);  // larger IHDR dimensions: a png_error before any pixel
};
void png_read_from(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "the file is truncated");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

struct PngDecoded {
  unsigned char* pixels = nullptr;  // malloc'd, (H, W, C) rows; the caller frees
  uint32_t width = 0, height = 0;
  int channels = 0;
};

bool png_decode(PngSource* src, PngDecoded* out, PngMessage* msg) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    std::snprintf(msg->text, sizeof msg->text, "out of memory");
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  unsigned char* volatile pixels = nullptr;
  png_bytep* volatile rows = nullptr;
  if (setjmp(png_jmpbuf(png))) {
    std::free(rows);
    std::free(pixels);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, src, png_read_from);
  png_set_user_limits(png, src->max_side, src->max_side);  // IHDR beyond this: a png_error
  png_set_chunk_malloc_max(png, 64u << 20);                 // ancillary chunks (iCCP, zTXt…) up to 64 MB
  png_read_info(png, info);
  png_set_expand(png);       // palette → RGB, gray of 1/2/4 bits → 8, tRNS → alpha
  png_set_strip_16(png);     // 16-bit → 8 (high byte)
  png_set_strip_alpha(png);  // drop alpha
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  const int channels = png_get_channels(png, info);
  if (png_get_bit_depth(png, info) != 8 || (channels != 1 && channels != 3))
    png_error(png, "unsupported pixel layout after conversion");
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (rowbytes != size_t(w) * channels) png_error(png, "unexpected row size");
  if (uint64_t(w) * h > uint64_t(kMaxImagePixels)) png_error(png, "image has too many pixels");
  pixels = static_cast<unsigned char*>(std::malloc(rowbytes * h));
  rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * h));
  if (!pixels || !rows) png_error(png, "out of memory (image too large)");
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = pixels + y * rowbytes;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  std::free(rows);
  png_destroy_read_struct(&png, &info, nullptr);
  out->pixels = pixels;
  out->width = w;
  out->height = h;
  out->channels = channels;
  return true;
}

void png_write_to(png_structp png, png_bytep data, png_size_t n) {
  auto* bytes = static_cast<std::string*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    bytes->append(reinterpret_cast<const char*>(data), n);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");
}
void png_flush_nothing(png_structp) {}

// hwc: (H, W, C) uint8 rows.
bool png_encode(const unsigned char* hwc, uint32_t w, uint32_t h, int channels, std::string* bytes,
                PngMessage* msg) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    std::snprintf(msg->text, sizeof msg->text, "out of memory");
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, bytes, png_write_to, png_flush_nothing);
  png_set_IHDR(png, info, w, h, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const size_t rowbytes = size_t(w) * channels;
  for (uint32_t y = 0; y < h; ++y) png_write_row(png, hwc + y * rowbytes);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace
}  // namespace png_io

void check_image_size(const std::string& path, int64_t width, int64_t height) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    throw Error("'" + path + "' is " + std::to_string(width) + "×" + std::to_string(height) +
                    " pixels, beyond what diffuse reads",
                "images may have at most " + std::to_string(kMaxImageSide) + " pixels per side and " +
                    std::to_string(kMaxImagePixels) + " pixels in all");
}

torch::Tensor read_png(const std::string& path) { return decode_png(read_file(path), path); }

torch::Tensor decode_png(const std::string& bytes, const std::string& path, int64_t max_side) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
    throw Error("'" + path + "' is not a PNG file (" +
                (bytes.empty() ? std::string("it is empty") : "bad signature") + ")");
  if (max_side < 1 || max_side > kMaxImageSide) throw Error("decode_png: max_side must be in 1 … 16384");
  png_io::PngSource src{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, uint32_t(max_side)};
  png_io::PngDecoded d;
  png_io::PngMessage msg{};
  if (!png_io::png_decode(&src, &d, &msg))
    throw Error("cannot decode PNG '" + path + "': " + msg.text,
                max_side < kMaxImageSide ? "images here may be at most " + std::to_string(max_side) + " pixels per side"
                                         : "the file may be corrupt or truncated");
  auto hwc = torch::from_blob(d.pixels, {int64_t(d.height), int64_t(d.width), int64_t(d.channels)},
                              [](void* p) { std::free(p); }, torch::kUInt8);
  return hwc.permute({2, 0, 1}).contiguous();
}

void write_png(const std::string& path, const torch::Tensor& image) {
  const std::string bytes = encode_png(image, "cannot write '" + path + "'");
  write_file_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), std::streamsize(bytes.size())); });
}

std::string encode_png(const torch::Tensor& image, const std::string& context) {
  auto chw = image_detail::as_chw_uint8(image, context);
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  if (h > PNG_USER_HEIGHT_MAX || w > PNG_USER_WIDTH_MAX)
    throw Error(context + ": the image is too large for PNG (" + std::to_string(h) + "×" +
                std::to_string(w) + ")");
  auto hwc = chw.permute({1, 2, 0}).contiguous();
  std::string bytes;
  png_io::PngMessage msg{};
  if (!png_io::png_encode(hwc.data_ptr<uint8_t>(), uint32_t(w), uint32_t(h), int(c), &bytes, &msg))
    throw Error(context + ": libpng: " + msg.text);
  return bytes;
}

torch::Tensor to_uint8(const torch::Tensor& images) {
  if (!images.defined()) throw Error("to_uint8: the image tensor is undefined");
  if (images.scalar_type() == torch::kUInt8) return images;
  if (!images.is_floating_point())
    throw Error("to_uint8: expected floating-point images in [-1, 1], got dtype " +
                std::string(c10::toString(images.scalar_type())));
  auto x = torch::nan_to_num(images.detach().to(torch::kFloat32), 0.0);
  return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow, int64_t padding, int pad_value) {
  if (!images.defined()) throw Error("make_grid: the image tensor is undefined");
  auto x = images.detach();
  std::ostringstream shape;
  shape << x.sizes();
  if (x.dim() == 3) x = x.unsqueeze(1);  // (N, H, W)
  if (x.dim() != 4 || x.size(0) < 1 || x.size(2) < 1 || x.size(3) < 1)
    throw Error("make_grid: expected images (N, C, H, W) with N ≥ 1, got shape " + shape.str());
  if (x.scalar_type() != torch::kUInt8)
    throw Error("make_grid: expected uint8 images, got dtype " + std::string(c10::toString(x.scalar_type())),
                "convert images in [-1, 1] with to_uint8 first");
  if (nrow < 1) throw Error("make_grid: nrow must be at least 1 (got " + std::to_string(nrow) + ")");
  if (padding < 0) throw Error("make_grid: padding must be ≥ 0 (got " + std::to_string(padding) + ")");
  if (pad_value < 0 || pad_value > 255)
    throw Error("make_grid: pad_value must be in 0 … 255 (got " + std::to_string(pad_value) + ")");
  x = x.to(torch::kCPU);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t cols = std::min(nrow, n), rows = (n + cols - 1) / cols;
  auto grid = torch::full({c, rows * (h + padding) + padding, cols * (w + padding) + padding}, pad_value,
                          torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = (i / cols) * (h + padding) + padding, left = (i % cols) * (w + padding) + padding;
    grid.narrow(1, top, h).narrow(2, left, w).copy_(x[i]);
  }
  return grid;
}

int64_t picture_scale(int64_t height, int64_t width, int64_t requested) {
  if (requested < 0 || requested > kPictureMaxScale)
    throw Error("picture scale " + std::to_string(requested) + " is out of range",
                "--picture-scale 0 (auto: the longer side at least " + std::to_string(kPictureMinSide) +
                    " px), 1 (native size) … " + std::to_string(kPictureMaxScale));
  if (requested > 0) return requested;
  const int64_t side = std::max<int64_t>(1, std::max(height, width));
  // The smallest k with k · side ≥ kPictureMinSide, i.e. ⌈kPictureMinSide / side⌉.
  return std::clamp<int64_t>((kPictureMinSide + side - 1) / side, 1, kPictureMaxAutoScale);
}

torch::Tensor upscale_nearest(const torch::Tensor& images, int64_t factor) {
  if (!images.defined() || images.dim() < 2)
    throw Error("upscale_nearest: expected images (…, H, W)");
  if (factor < 1) throw Error("upscale_nearest: the factor must be at least 1 (got " + std::to_string(factor) + ")");
  if (factor == 1) return images;
  const int64_t d = images.dim();
  return images.repeat_interleave(factor, d - 2).repeat_interleave(factor, d - 1);
}

void write_picture(const std::string& path, const torch::Tensor& picture, int64_t scale) {
  if (!picture.defined() || picture.dim() < 2) throw Error("cannot write '" + path + "': the picture is empty");
  const int64_t d = picture.dim();
  write_png(path, upscale_nearest(picture, picture_scale(picture.size(d - 2), picture.size(d - 1), scale)));
}

}  // namespace diffuse
