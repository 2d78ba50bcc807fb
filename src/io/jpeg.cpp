// JPEG decoding with libjpeg(-turbo), and read_image: PNG or JPEG by file extension.
#include <cstdio>
// clang-format off
#include <csetjmp>
#include <jpeglib.h>
// clang-format on
#include <torch/types.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

namespace diffuse {

namespace {
// libjpeg reports errors through a callback that must not return: jump back to read_jpeg.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (a cut-off or damaged stream that libjpeg would fill with gray) are kept, not
// printed; read_jpeg turns them into an error.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    if (err->mgr.num_warnings++ == 0) (*cinfo->err->format_message)(cinfo, err->message);
  }
}

std::string lower_extension(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}
}  // namespace

torch::Tensor read_jpeg(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error("cannot open '" + path + "'", "check that the file exists and is readable");
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  err.message[0] = '\0';
  // Everything that needs destruction lives outside the setjmp region (no C++ objects are
  // created between setjmp and a possible longjmp).
  torch::Tensor out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error("'" + path + "' is not a readable JPEG: " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f.get());
  jpeg_read_header(&cinfo, TRUE);
  try {  // the limits of every image reader, from the header, before anything is allocated
    check_image_size(path, cinfo.image_width, cinfo.image_height);
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  // Gray stays gray; everything else (YCbCr, CMYK, …) is converted to RGB by libjpeg.
  const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int64_t H = cinfo.output_height, W = cinfo.output_width, C = cinfo.output_components;
  out = torch::empty({H, W, C}, torch::kUInt8);
  auto* base = out.data_ptr<uint8_t>();
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = base + int64_t(cinfo.output_scanline) * W * C;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  const bool damaged = err.mgr.num_warnings > 0;
  jpeg_destroy_decompress(&cinfo);
  if (damaged)
    throw Error("'" + path + "' is a damaged JPEG: " + err.message, "the file is truncated or corrupt");
  return out.permute({2, 0, 1}).contiguous();  // (C, H, W)
}

bool is_image_file(const std::string& path) {
  const auto ext = lower_extension(path);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

torch::Tensor read_image(const std::string& path) {
  const auto ext = lower_extension(path);
  if (ext == ".png") return read_png(path);
  if (ext == ".jpg" || ext == ".jpeg") return read_jpeg(path);
  throw Error("'" + path + "' is not a PNG or JPEG file (by its extension)", "use .png, .jpg or .jpeg images");
}

}  // namespace diffuse
