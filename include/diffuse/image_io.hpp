// diffuse — images: IDX (MNIST-format) files, Fashion-MNIST, PNG, image grids,
// animated GIFs, folders of PNG images.
//
// Image tensors are uint8 (C, H, W) or (N, C, H, W), channel-first, with C = 1
// (grayscale) or C = 3 (RGB); models see float images in [-1, 1] (to_uint8
// converts back). Every writer is atomic (see io.hpp). Every reader throws
// diffuse::Error naming the file and the problem.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace diffuse {

// IDX files (LeCun's MNIST format), gzip-compressed or plain: the magic bytes
// (0, 0, type, ndim), ndim big-endian uint32 dimensions, then the data, row-major.
// Only type 0x08 (unsigned byte) is supported. Returns a uint8 tensor with the
// file's dims; errors name the file (missing, bad magic, truncated, trailing data).
torch::Tensor read_idx(const std::string& path);

struct LabeledImages {
  torch::Tensor images;                  // (N, C, H, W) uint8
  torch::Tensor labels;                  // (N) int64, or undefined when unlabeled
  std::vector<std::string> class_names;  // label i is class_names[i]; empty when unlabeled
};

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST (Zalando's 28×28 grayscale clothes, 10 classes) from the files
// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in `dir` (empty = kFashionMnistDir).
// split: "train" (60000 images) or "test" (10000). images: (N, 1, 28, 28) uint8.
// A missing file gives an error whose hint says how to install the package.
LabeledImages load_fashion_mnist(const std::string& dir, const std::string& split);
// "t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
// "sneaker", "bag", "ankle boot" (label 0 … 9).
const std::vector<std::string>& fashion_mnist_classes();

// The largest image the readers accept (a decompression bomb or a corrupt size field is an
// error, not an allocation): at most kMaxImageSide pixels per side and kMaxImagePixels in all.
constexpr int64_t kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 67 M pixels (8192 × 8192)
// Throws diffuse::Error naming `path` when width × height exceeds those limits.
void check_image_size(const std::string& path, int64_t width, int64_t height);

// PNG (libpng), any bit depth and colour type, converted to 8-bit grayscale
// (C = 1) or RGB (C = 3): alpha dropped (not composited), palettes expanded,
// 16-bit samples reduced to their high byte. Returns (C, H, W) uint8.
torch::Tensor read_png(const std::string& path);
// The same from the bytes of a PNG file in memory; `name` is what errors call it. Images wider
// or taller than max_side are refused from the header, before any pixel is decoded.
torch::Tensor decode_png(const std::string& bytes, const std::string& name, int64_t max_side = kMaxImageSide);
// A baseline or progressive JPEG, gray (C = 1) or converted to RGB (C = 3). (C, H, W) uint8.
torch::Tensor read_jpeg(const std::string& path);
// PNG or JPEG by the file's extension (.png, .jpg, .jpeg; any case).
torch::Tensor read_image(const std::string& path);
bool is_image_file(const std::string& path);  // by extension, as read_image
// image: (C, H, W) or (H, W), C = 1 or 3; uint8, or floating point in [0, 1]
// (scaled by 255, rounded, clamped). Atomic write.
void write_png(const std::string& path, const torch::Tensor& image);
// The PNG file write_png writes, in memory; `context` starts error messages.
std::string encode_png(const torch::Tensor& image, const std::string& context = "cannot encode PNG");

// Images in [-1, 1] (any shape, floating point) → uint8 in [0, 255]:
// round((x + 1) · 127.5), clamped; NaN becomes 128 (mid gray).
torch::Tensor to_uint8(const torch::Tensor& images);

// A grid of the N images (N, C, H, W) uint8, `nrow` images per row (the last row
// may be short), `padding` pixels between images and around the border, filled
// with pad_value (0 … 255). Returns (C, rows·(H + padding) + padding,
// min(nrow, N)·(W + padding) + padding) uint8 — the layout of torchvision's make_grid.
torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow, int64_t padding = 2,
                        int pad_value = 255);

// Pictures of small images — grids, strips, chain GIFs, the forward-process picture,
// training's periodic sample grids — are enlarged by an integer factor, nearest neighbour
// (each pixel becomes a k×k block, so no colour is invented), so that a person can see
// them; images written one per file stay at their native size.
// picture_scale: the factor for a height × width picture. `requested` ≥ 1 is used as it is
// (1: native size); 0 (auto) is the smallest factor that makes the longer side at least
// kPictureMinSide pixels, at most kPictureMaxAutoScale, and 1 for pictures already that
// large. E.g. 16 samples of 28×28 in a 4×4 grid (122 px) → 5× (610 px); 100 in a 10×10
// grid (302 px) → 2×; the forward picture of 28×28 images (272 × 242) → 2×. A requested
// factor outside 0 … kPictureMaxScale is an error.
inline constexpr int64_t kPictureMinSide = 512;
inline constexpr int64_t kPictureMaxAutoScale = 8;
inline constexpr int64_t kPictureMaxScale = 32;
int64_t picture_scale(int64_t height, int64_t width, int64_t requested = 0);
// (…, H, W) → (…, H·factor, W·factor), each pixel repeated factor × factor times.
torch::Tensor upscale_nearest(const torch::Tensor& images, int64_t factor);
// write_png of the picture (C, H, W) enlarged by picture_scale(H, W, scale).
void write_picture(const std::string& path, const torch::Tensor& picture, int64_t scale = 0);

// Animated GIF (giflib) of `frames`, each (C, H, W) or (H, W) uint8 (or float in
// [0, 1]) of one size, C = 1 (exact, a 256-gray palette) or 3 (all frames
// quantised together to one 256-colour palette by median cut, GifQuantizeBuffer,
// falling back to a fixed 6×7×6 colour cube). delay_cs: time per frame in 1/100 s;
// loops forever; the last frame is shown hold_last times as long. `scale` enlarges
// each frame by an integer factor (nearest neighbour) so 28×28 images are visible;
// 0: picture_scale's automatic factor for the frames' size. Atomic write.
void write_gif(const std::string& path, const std::vector<torch::Tensor>& frames,
               int delay_cs = 8, int hold_last = 10, int scale = 1);

// A folder of PNG or JPEG images of any size, grayscale or RGB (searched recursively;
// hidden files and folders, whose names start with '.', are ignored). Each image
// is converted to `channels` (1 or 3; 0 = those of the first image in sorted
// order; RGB → gray by ITU-R 601 luma), resized so its short side is image_size
// (bilinear, antialiased; 0 = the short side of the first image in sorted order) and
// center-cropped to image_size × image_size.
// Labeled when every image lies in a subfolder of `path`: the label is the index
// of its top-level subfolder name among the sorted names of those holding images
// (class_names). Otherwise labeled by a top-level labels.csv whose first line is
// file,index,label,class (as `diffuse data` writes it): one row per image (file relative to
// `path`; quoted CSV fields), labels integers >= 0 kept as they are, class_names[l] the class
// of label l's rows (its number when none names it) for l = 0 … the largest label; a missing
// or extra row, or labels.csv beside class subfolders, is an error. Else unlabeled.
// Files ending .png, .jpg or .jpeg (any case) are read: one that fails to decode is
// reported by name in the thrown error (up to 10 names, all failures counted), never
// skipped; any other file (a labels.csv with another first line too) is an error
// naming it. An empty folder is an error.
LabeledImages load_image_folder(const std::string& path, int64_t image_size,
                                int64_t channels = 0);

}  // namespace diffuse
