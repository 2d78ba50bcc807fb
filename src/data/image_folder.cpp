// A folder of PNG/JPEG images → (N, C, S, S) uint8, labeled by subfolder or by the labels.csv
// `diffuse data` writes beside its images (see image_io.hpp).
#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>
#include <torch/version.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace image_folder_io {
namespace {

namespace fs = std::filesystem;

// (c, H, W) uint8 → (channels, H, W) uint8; RGB → gray by ITU-R 601 luma.
torch::Tensor folder_convert_channels(const torch::Tensor& chw, int64_t channels) {
  if (chw.size(0) == channels) return chw;
  if (channels == 3) return chw.expand({3, chw.size(1), chw.size(2)});
  auto f = chw.to(torch::kFloat32);
  return (f[0] * 0.299 + f[1] * 0.587 + f[2] * 0.114).round().clamp(0, 255).to(torch::kUInt8).unsqueeze(0);
}

// Resize so the short side is `size` (bilinear, antialiased), then center-crop to size × size.
torch::Tensor folder_resize_crop(const torch::Tensor& chw, int64_t size) {
  const int64_t h = chw.size(1), w = chw.size(2);
  if (h == size && w == size) return chw;
  const int64_t new_h = h <= w ? size : std::max<int64_t>(size, std::llround(double(h) * size / w));
  const int64_t new_w = w <= h ? size : std::max<int64_t>(size, std::llround(double(w) * size / h));
  auto x = chw.unsqueeze(0).to(torch::kFloat32);
  if (new_h != h || new_w != w) {
    namespace F = torch::nn::functional;
    auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{new_h, new_w});
#if TORCH_VERSION_MAJOR > 1 || TORCH_VERSION_MINOR >= 11
    opts.mode(torch::kBilinear).align_corners(false).antialias(true);
#else
    if (new_h < h) opts.mode(torch::kArea);  // no antialiased bilinear: area averaging to shrink
    else opts.mode(torch::kBilinear).align_corners(false);
#endif
    x = F::interpolate(x, opts);
  }
  x = x.narrow(2, (new_h - size) / 2, size).narrow(3, (new_w - size) / 2, size);
  return x.round().clamp(0, 255).to(torch::kUInt8).squeeze(0);
}

std::string folder_list(const std::vector<std::string>& names, size_t shown = 10) {
  std::vector<std::string> head(names.begin(), names.begin() + std::min(shown, names.size()));
  std::string s = join(head);
  if (names.size() > shown) s += ", … (" + std::to_string(names.size() - shown) + " more)";
  return s;
}

// The first line of the labels.csv `diffuse data` writes beside its images (apps/diffuse/cmd_data.cpp).
constexpr const char* kLabelsHeader = "file,index,label,class";

// Whether `text` starts with the line kLabelsHeader (ended by LF or CRLF, or the end).
bool folder_has_labels_header(const std::string& text) {
  std::string first = text.substr(0, text.find('\n'));
  if (!first.empty() && first.back() == '\r') first.pop_back();
  return first == kLabelsHeader;
}

// The labels of `images` (paths relative to the folder, sorted) from labels.csv (`text`, read
// from `csv`, its header checked): exactly one row per image, and no row of a file that is not
// there. class_names[l] is the `class` of label l's rows (its number when none names it), for
// l = 0 … the largest label, so the labels keep the data set's numbering (Fashion-MNIST's 0 … 9
// even when some are absent) and the class count stays class_names.size().
std::vector<int64_t> folder_csv_labels(const std::string& csv, const std::string& text,
                                       const std::vector<fs::path>& images, std::vector<std::string>& class_names) {
  auto where = [&](int64_t line) { return csv + ":" + std::to_string(line) + ": "; };
  auto records = parse_csv_records(text, csv);
  records.erase(records.begin());  // the header
  std::map<std::string, std::pair<int64_t, int64_t>> row_of;  // file → (line, label)
  std::vector<int64_t> named_on;                               // label → the line naming it, 0: none
  for (const auto& r : records) {
    if (r.fields.size() != 4)
      throw Error(where(r.line) + std::to_string(r.fields.size()) + " fields, not the 4 of " + kLabelsHeader,
                  "a field holding a comma is quoted: \"a,b\"");
    const std::string &file = r.fields[0], &label = r.fields[2], &cls = r.fields[3];
    // At most 6 digits: a label is a class number, not a size to allocate from a typo.
    if (label.empty() || label.size() > 6 || label.find_first_not_of("0123456789") != std::string::npos)
      throw Error(where(r.line) + "label '" + label + "' is not an integer in 0 … 999999",
                  "labels number the classes from 0");
    const auto l = size_t(std::stoll(label));
    const auto [it, fresh] = row_of.emplace(file, std::make_pair(r.line, int64_t(l)));
    if (!fresh)
      throw Error(where(r.line) + "a second row for " + file + " (the first is line " +
                      std::to_string(it->second.first) + ")",
                  "give each image one row");
    for (size_t k = class_names.size(); k <= l; ++k) class_names.push_back(std::to_string(k));
    named_on.resize(class_names.size(), 0);
    if (cls.empty()) continue;
    if (named_on[l] != 0 && class_names[l] != cls)
      throw Error(where(r.line) + "label " + std::to_string(l) + " is class '" + cls + "', but line " +
                      std::to_string(named_on[l]) + " calls it '" + class_names[l] + "'",
                  "give each label one class name");
    if (named_on[l] == 0) {
      class_names[l] = cls;
      named_on[l] = r.line;
    }
  }
  std::vector<int64_t> labels;
  std::vector<std::string> missing;
  std::set<std::string> present;
  for (const auto& p : images) {
    const std::string f = p.generic_string();
    present.insert(f);
    if (auto it = row_of.find(f); it != row_of.end()) labels.push_back(it->second.second);
    else missing.push_back(f);
  }
  if (!missing.empty())
    throw Error(std::to_string(missing.size()) + " image(s) have no row in " + csv + ": " + folder_list(missing),
                "give every image in the folder one row " + std::string(kLabelsHeader) +
                    ", or remove labels.csv for unlabeled images");
  for (const auto& r : records)
    if (!present.count(r.fields[0]))
      throw Error(where(r.line) + "'" + r.fields[0] + "' is not an image in the folder",
                  "remove the rows of images that are not there");
  return labels;
}

}  // namespace
}  // namespace image_folder_io

LabeledImages load_image_folder(const std::string& path, int64_t image_size, int64_t channels) {
  namespace fs = std::filesystem;
  using namespace image_folder_io;
  if (image_size < 0)
    throw Error("image size must be at least 1, or 0 for the first image's (got " + std::to_string(image_size) + ")");
  if (channels != 0 && channels != 1 && channels != 3)
    throw Error("image channels must be 1 (gray), 3 (RGB) or 0 (as the first image); got " +
                std::to_string(channels));
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("image folder '" + path + "' not found", "check the path");
  if (!fs::is_directory(path, ec)) throw Error("'" + path + "' is not a folder", "pass a folder of PNG or JPEG images");

  // Collect files (sorted), skipping hidden entries.
  const fs::path root(path);
  std::vector<fs::path> pngs;
  std::vector<std::string> others;
  std::string labels_csv, labels_text;  // a top-level labels.csv with kLabelsHeader, and its text
  bool bad_labels_csv = false;          // a top-level labels.csv with another first line
  fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec), end;
  if (ec) throw Error("cannot list image folder '" + path + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const fs::path p = it->path();
    std::error_code entry_ec;  // a broken symlink is not a listing error: it is not a file
    if (p.filename().string().rfind('.', 0) == 0) {
      if (it->is_directory(entry_ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(entry_ec)) continue;
    const fs::path rel = p.lexically_relative(root);
    if (is_image_file(p.string())) {
      pngs.push_back(rel);
    } else if (rel == fs::path("labels.csv")) {  // `diffuse data` writes it beside its images: their labels
      labels_text = read_file(p.string());
      if (folder_has_labels_header(labels_text)) labels_csv = p.string();
      else others.push_back(rel.generic_string());
      bad_labels_csv = labels_csv.empty();
    } else {
      others.push_back(rel.generic_string());
    }
  }
  if (ec) throw Error("cannot list image folder '" + path + "': " + ec.message());
  if (!others.empty()) {
    std::sort(others.begin(), others.end());
    std::string hint = "move other files out of the folder (images: .png, .jpg, .jpeg)";
    if (bad_labels_csv) hint += "; labels.csv gives the labels when its first line is " + std::string(kLabelsHeader);
    throw Error("image folder '" + path + "' holds " + std::to_string(others.size()) +
                    " file(s) that are not PNG or JPEG images: " + folder_list(others),
                hint);
  }
  if (pngs.empty())
    throw Error("image folder '" + path + "' holds no PNG or JPEG images",
                "put .png/.jpg files in it, or in one subfolder per class for labels");
  std::sort(pngs.begin(), pngs.end(),
            [](const fs::path& a, const fs::path& b) { return a.generic_string() < b.generic_string(); });
  const int64_t n = int64_t(pngs.size());

  // Labels: the top-level subfolder, when every image has one; else the rows of labels.csv.
  const bool by_subfolder = std::all_of(pngs.begin(), pngs.end(), [](const fs::path& p) {
    return !p.parent_path().empty();
  });
  if (by_subfolder && !labels_csv.empty())
    throw Error("image folder '" + path + "' has its images in class subfolders and a labels.csv: labels come "
                "from either subfolders or labels.csv, not both",
                "remove " + labels_csv + " to label by subfolder, or put the images directly in the folder");
  const bool labeled = by_subfolder || !labels_csv.empty();
  LabeledImages out;
  std::vector<int64_t> labels;
  if (!labels_csv.empty()) labels = folder_csv_labels(labels_csv, labels_text, pngs, out.class_names);
  if (by_subfolder) {
    std::map<std::string, int64_t> index;
    for (const auto& p : pngs) index.emplace(p.begin()->string(), 0);
    for (auto& [name, i] : index) {
      i = int64_t(out.class_names.size());
      out.class_names.push_back(name);
    }
    for (const auto& p : pngs) labels.push_back(index.at(p.begin()->string()));
  }

  // Decode (in parallel), convert, resize; failures are collected, never skipped.
  std::vector<std::string> failures(pngs.size());
  auto decode = [&](int64_t i) -> torch::Tensor {
    try {
      return read_image((root / pngs[i]).string());
    } catch (const std::exception& e) {
      failures[i] = e.what();
      return {};
    }
  };
  if (channels == 0 || image_size == 0)  // as the first image that decodes
    for (int64_t i = 0; i < n; ++i)
      if (auto img = decode(i); img.defined()) {
        if (channels == 0) channels = img.size(0);
        if (image_size == 0) image_size = std::min(img.size(1), img.size(2));
        break;
      }
  if (channels == 0) channels = 3;  // nothing decodes: the error below reports every file
  if (image_size == 0) image_size = 1;
  out.images = torch::empty({n, channels, image_size, image_size}, torch::kUInt8);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t stop) {
    for (int64_t i = begin; i < stop; ++i) {
      auto img = decode(i);
      if (!img.defined()) continue;
      try {
        out.images[i].copy_(folder_resize_crop(folder_convert_channels(img, channels), image_size));
      } catch (const std::exception& e) {
        failures[i] = "cannot resize '" + (root / pngs[i]).string() + "': " + e.what();
      }
    }
  });
  std::vector<std::string> bad;
  std::string first_reason;
  for (int64_t i = 0; i < n; ++i)
    if (!failures[i].empty()) {
      if (bad.empty()) first_reason = failures[i];
      bad.push_back(pngs[i].generic_string());
    }
  if (!bad.empty())
    throw Error(std::to_string(bad.size()) + " of " + std::to_string(n) + " image files in '" + path +
                    "' could not be read: " + folder_list(bad) + " (the first: " + first_reason + ")",
                "repair or remove those files");
  if (labeled) out.labels = torch::tensor(labels, torch::kInt64);
  return out;
}

}  // namespace diffuse
