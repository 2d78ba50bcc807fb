// Animated GIF writer (giflib): one global 256-entry palette, a NETSCAPE2.0
// loop-forever block, a graphics control block (delay) per frame.
#include <gif_lib.h>

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace image_detail {
torch::Tensor as_chw_uint8(const torch::Tensor& image, const std::string& context);  // image_io.cpp
}  // namespace image_detail

namespace gif_io {
namespace {

struct GifSink {
  std::string bytes;
  bool out_of_memory = false;
};

int gif_write_to(GifFileType* gif, const GifByteType* data, int n) {
  auto* sink = static_cast<GifSink*>(gif->UserData);
  try {
    sink->bytes.append(reinterpret_cast<const char*>(data), size_t(n));
  } catch (...) {
    sink->out_of_memory = true;
    return 0;
  }
  return n;
}

std::string gif_error_text(int code) {
  const char* s = GifErrorString(code);
  return s ? s : "giflib error " + std::to_string(code);
}

// The fixed palette: 6 red × 7 green × 6 blue levels (252 colours, 4 unused).
std::vector<GifColorType> gif_cube_palette() {
  std::vector<GifColorType> p(256, GifColorType{0, 0, 0});
  for (int r = 0; r < 6; ++r)
    for (int g = 0; g < 7; ++g)
      for (int b = 0; b < 6; ++b)
        p[(r * 7 + g) * 6 + b] = {GifByteType(std::lround(r * 255.0 / 5)), GifByteType(std::lround(g * 255.0 / 6)),
                                  GifByteType(std::lround(b * 255.0 / 5))};
  return p;
}

// rgb: (F, 3, H, W) uint8 → palette indices (F, H, W) uint8 into the cube.
torch::Tensor gif_cube_indices(const torch::Tensor& rgb) {
  auto level = [&](int c, double n) { return rgb.select(1, c).to(torch::kFloat32).mul(n / 255.0).round(); };
  return level(0, 5).mul(7).add(level(1, 6)).mul(6).add(level(2, 5)).to(torch::kUInt8);
}

}  // namespace
}  // namespace gif_io

void write_gif(const std::string& path, const std::vector<torch::Tensor>& frames, int delay_cs, int hold_last,
               int scale) {
  const std::string context = "cannot write GIF '" + path + "'";
  if (frames.empty()) throw Error(context + ": no frames");
  if (delay_cs < 0 || delay_cs > 65535)
    throw Error(context + ": the frame delay must be in 0 … 65535 hundredths of a second (got " +
                std::to_string(delay_cs) + ")");
  if (hold_last < 1) throw Error(context + ": hold_last must be at least 1 (got " + std::to_string(hold_last) + ")");
  if (scale < 0) throw Error(context + ": scale must be 0 (auto) or at least 1 (got " + std::to_string(scale) + ")");

  std::vector<torch::Tensor> chw;
  for (size_t i = 0; i < frames.size(); ++i) {
    chw.push_back(image_detail::as_chw_uint8(frames[i], context + " (frame " + std::to_string(i) + ")"));
    if (chw[i].sizes() != chw[0].sizes()) {
      std::ostringstream a, b;
      a << chw[i].sizes();
      b << chw[0].sizes();
      throw Error(context + ": frame " + std::to_string(i) + " has shape " + a.str() + ", frame 0 has " + b.str(),
                  "all frames must have the same size and channels");
    }
  }
  auto stacked = torch::stack(chw);  // (F, C, H, W)
  const int64_t nframes = stacked.size(0), c = stacked.size(1), h = stacked.size(2), w = stacked.size(3);
  scale = int(picture_scale(h, w, scale));
  if (h * scale > 65535 || w * scale > 65535)
    throw Error(context + ": frames of " + std::to_string(h * scale) + "×" + std::to_string(w * scale) +
                " pixels are too large for GIF (at most 65535×65535)");

  // Palette and indices (F, H, W).
  std::vector<GifColorType> palette(256);
  torch::Tensor indices;
  if (c == 1) {
    for (int i = 0; i < 256; ++i) palette[i] = {GifByteType(i), GifByteType(i), GifByteType(i)};
    indices = stacked.select(1, 0).contiguous();
  } else {
    // All frames quantised together (one tall buffer) so the palette does not flicker.
    auto r = stacked.select(1, 0).contiguous(), g = stacked.select(1, 1).contiguous(),
         b = stacked.select(1, 2).contiguous();
    indices = torch::empty({nframes, h, w}, torch::kUInt8);
    int size = 256;
    const bool quantised =
        nframes * h <= int64_t(std::numeric_limits<int>::max()) &&
        GifQuantizeBuffer(unsigned(w), unsigned(nframes * h), &size, r.data_ptr<uint8_t>(), g.data_ptr<uint8_t>(),
                          b.data_ptr<uint8_t>(), indices.data_ptr<uint8_t>(), palette.data()) == GIF_OK;
    if (quantised) {
      for (int i = size; i < 256; ++i) palette[i] = {0, 0, 0};
    } else {
      palette = gif_io::gif_cube_palette();
      indices = gif_io::gif_cube_indices(stacked);
    }
  }
  indices = upscale_nearest(indices, scale).contiguous();
  const int W = int(w * scale), H = int(h * scale);

  gif_io::GifSink sink;
  int err = 0;
  GifFileType* gif = EGifOpen(&sink, gif_io::gif_write_to, &err);
  if (!gif) throw Error(context + ": " + gif_io::gif_error_text(err));
  auto fail = [&](const std::string& what) {
    const int code = gif->Error;
    int ignored = 0;
    EGifCloseFile(gif, &ignored);
    throw Error(context + ": " + what + ": " + (sink.out_of_memory ? "out of memory" : gif_io::gif_error_text(code)));
  };
  EGifSetGifVersion(gif, true);
  ColorMapObject* map = GifMakeMapObject(256, palette.data());
  if (!map) fail("cannot make the colour map");
  const int screen = EGifPutScreenDesc(gif, W, H, 8, 0, map);  // copies the map
  GifFreeMapObject(map);
  if (screen != GIF_OK) fail("cannot write the screen descriptor");
  // NETSCAPE2.0 application extension: loop count 0 = forever.
  static const GifByteType kNetscape[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
  static const GifByteType kLoopForever[] = {1, 0, 0};
  if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof kNetscape, kNetscape) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof kLoopForever, kLoopForever) != GIF_OK ||
      EGifPutExtensionTrailer(gif) != GIF_OK)
    fail("cannot write the loop extension");
  const int last_delay = int(std::min<int64_t>(65535, int64_t(delay_cs) * hold_last));
  for (int64_t f = 0; f < nframes; ++f) {
    GraphicsControlBlock gcb;
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.UserInputFlag = false;
    gcb.DelayTime = f + 1 == nframes ? last_delay : delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    const size_t len = EGifGCBToExtension(&gcb, ext);
    if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, int(len), ext) != GIF_OK ||
        EGifPutImageDesc(gif, 0, 0, W, H, false, nullptr) != GIF_OK)
      fail("cannot write frame " + std::to_string(f));
    auto* rows = indices[f].data_ptr<uint8_t>();
    for (int y = 0; y < H; ++y)
      if (EGifPutLine(gif, rows + int64_t(y) * W, W) != GIF_OK) fail("cannot write frame " + std::to_string(f));
  }
  if (EGifCloseFile(gif, &err) != GIF_OK)
    throw Error(context + ": " + (sink.out_of_memory ? "out of memory" : gif_io::gif_error_text(err)));
  write_file_atomic(path, [&](std::ostream& out) { out.write(sink.bytes.data(), std::streamsize(sink.bytes.size())); });
}

}  // namespace diffuse
