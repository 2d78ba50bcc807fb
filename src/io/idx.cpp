// IDX reader (LeCun's MNIST format, gzip or plain) and the Fashion-MNIST loader.
#include <zlib.h>

#include <torch/types.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

namespace diffuse {

namespace idx_io {
namespace {

constexpr size_t kMaxIdxBytes = size_t(2) << 30;  // 2 GiB decompressed

// The whole (decompressed) file. zlib's gz* functions read plain files unchanged.
std::string idx_read_all(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error("IDX file '" + path + "' not found", "check the path");
  if (std::filesystem::is_directory(path, ec))
    throw Error("'" + path + "' is a folder, not an IDX file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open IDX file '" + path + "': " + std::strerror(errno));
  std::unique_ptr<gzFile_s, int (*)(gzFile)> close(f, gzclose);
  gzbuffer(f, 1 << 17);
  std::string data;
  std::string chunk(1 << 20, '\0');
  for (;;) {
    const int n = gzread(f, chunk.data(), unsigned(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* why = gzerror(f, &code);
      throw Error("cannot read IDX file '" + path + "': " + (code == Z_ERRNO ? std::strerror(errno) : why),
                  "the file may be corrupt; a .gz file must be a complete gzip stream");
    }
    if (n == 0) break;
    // A few bytes of gzip can inflate to gigabytes: stop at a size no IDX file of images reaches.
    if (data.size() + size_t(n) > kMaxIdxBytes)
      throw Error("IDX file '" + path + "' is larger than " + std::to_string(kMaxIdxBytes >> 20) + " MB",
                  "diffuse reads IDX files of up to that size (Fashion-MNIST's largest is 47 MB)");
    data.append(chunk.data(), size_t(n));
  }
  int code = 0;
  const char* why = gzerror(f, &code);
  if (code != Z_OK)  // e.g. Z_BUF_ERROR: "unexpected end of file" in a cut-off .gz
    throw Error("cannot read IDX file '" + path + "': " + why, "the file is truncated or corrupt");
  return data;
}

const char* idx_type_name(unsigned char t) {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

}  // namespace
}  // namespace idx_io

torch::Tensor read_idx(const std::string& path) {
  const std::string data = idx_io::idx_read_all(path);
  const auto* b = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() < 4 || b[0] != 0 || b[1] != 0 || !idx_io::idx_type_name(b[2]) || b[3] == 0)
    throw Error("'" + path + "' is not an IDX file (bad magic number)",
                "IDX files start with the bytes 0, 0, type, number of dimensions");
  if (b[2] != 0x08)
    throw Error("IDX file '" + path + "' holds " + idx_io::idx_type_name(b[2]) +
                " data; only unsigned byte (type 0x08) is supported");
  const int ndim = b[3];
  if (data.size() < 4 + 4 * size_t(ndim))
    throw Error("IDX file '" + path + "' is truncated (in its header of " + std::to_string(ndim) +
                " dimensions)");
  std::vector<int64_t> dims(ndim);
  uint64_t count = 1, nonzero = 1;  // nonzero: the product of the dimensions other than 0
  for (int i = 0; i < ndim; ++i) {
    const unsigned char* p = b + 4 + 4 * i;
    dims[i] = (int64_t(p[0]) << 24) | (int64_t(p[1]) << 16) | (int64_t(p[2]) << 8) | int64_t(p[3]);
    if (dims[i] == 0) {
      count = 0;
      continue;
    }
    if (nonzero > (uint64_t(1) << 62) / uint64_t(dims[i]))
      throw Error("IDX file '" + path + "' has dimensions whose product overflows", "the file is corrupt");
    nonzero *= uint64_t(dims[i]);
    if (count) count = nonzero;
  }
  const size_t offset = 4 + 4 * size_t(ndim), have = data.size() - offset;
  if (have < count)
    throw Error("IDX file '" + path + "' is truncated: its header promises " + std::to_string(count) +
                " bytes of data, the file holds " + std::to_string(have));
  if (have > count)
    throw Error("IDX file '" + path + "' has " + std::to_string(have - count) +
                " bytes after the data its header describes", "the file is corrupt");
  auto t = torch::empty(dims, torch::kUInt8);
  if (count) std::memcpy(t.data_ptr<uint8_t>(), b + offset, count);
  return t;
}

const std::vector<std::string>& fashion_mnist_classes() {
  // The dataset's names ("T-shirt/top", "Ankle boot") in a form that needs no quoting on a command line.
  static const std::vector<std::string> names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                 "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};
  return names;
}

LabeledImages load_fashion_mnist(const std::string& dir_in, const std::string& split) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test" || split == "t10k") prefix = "t10k";
  else
    throw Error("unknown Fashion-MNIST split '" + split + "'", "the splits are train (60000) and test (10000)");
  const std::string dir = dir_in.empty() ? kFashionMnistDir : dir_in;
  const std::string hint =
      "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
      "--data-dir";
  auto find = [&](const std::string& stem) {
    std::error_code ec;
    const auto base = std::filesystem::path(dir) / stem;
    for (const std::string& name : {base.string() + ".gz", base.string()})
      if (std::filesystem::is_regular_file(name, ec)) return name;
    throw Error("Fashion-MNIST file '" + base.string() + ".gz' not found", hint);
  };
  const std::string images_path = find(prefix + "-images-idx3-ubyte");
  const std::string labels_path = find(prefix + "-labels-idx1-ubyte");
  auto images = read_idx(images_path);
  auto labels = read_idx(labels_path);
  if (images.dim() != 3)
    throw Error("'" + images_path + "' holds " + std::to_string(images.dim()) +
                "-dimensional data; Fashion-MNIST images are (N, 28, 28)");
  if (labels.dim() != 1 || labels.size(0) != images.size(0))
    throw Error("'" + labels_path + "' does not hold one label per image of '" + images_path + "' (" +
                std::to_string(images.size(0)) + " images)");
  if (labels.numel() > 0 && labels.max().item<int64_t>() >= int64_t(fashion_mnist_classes().size()))
    throw Error("'" + labels_path + "' holds labels above 9; Fashion-MNIST has 10 classes");
  LabeledImages out;
  out.images = images.unsqueeze(1).contiguous();  // (N, 1, 28, 28)
  out.labels = labels.to(torch::kInt64);
  out.class_names = fashion_mnist_classes();
  return out;
}

}  // namespace diffuse
