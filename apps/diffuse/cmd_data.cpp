// diffuse data: write data of a spec to files — vectors as CSV, images as one PNG each
// (plus labels.csv and an optional grid), picked by seed or by index, optionally of one
// class, resized down or made gray (inputs for `diffuse upscale` and `diffuse colorize`).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <ostream>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/restore.hpp"

namespace diffuse::cli {

namespace {
struct Opts {
  std::string data, out, data_dir, grid, cls, background = DataOptions{}.background;
  int64_t n = 1000, index = 0, size = 0, image_size = DataOptions{}.image_size, picture_scale = 0;
  uint64_t seed = 0;
  bool gray = false;
  CLI::Option *o_index{}, *o_size{}, *o_gray{}, *o_grid{}, *o_cls{}, *o_image_size{}, *o_picture_scale{};
};

bool ends_with_png(const std::string& s) {
  if (s.size() < 4) return false;
  std::string e = s.substr(s.size() - 4);
  for (auto& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e == ".png";
}

std::string image_spec_names() {
  std::vector<std::string> names;
  for (const auto& s : data_spec_names())
    if (is_image_spec(s)) names.push_back(s);
  return join(names);
}

struct Picked {
  torch::Tensor x;       // (n, C, H, W) float in [−1, 1]
  torch::Tensor labels;  // (n) int64 or undefined
  torch::Tensor index;   // (n) int64 item numbers of a finite set, or undefined (fresh draws)
};

// n images of `src`, of class k (−1: any): items first … first+n−1 of the (class-filtered)
// set when by_index, else a random subset without repetition drawn with `g`. Sources of
// fresh draws (size() 0) give fresh draws, keeping those of class k.
Picked pick_images(const DataSource& src, int64_t n, int64_t k, bool by_index, int64_t first,
                   torch::Generator& g) {
  const std::string which = src.spec() + (k >= 0 ? " (class " + src.class_names().at(size_t(k)) + ")" : "");
  if (src.size() == 0) {
    if (by_index) throw Error("--index needs a finite set of images; " + src.spec() + " draws fresh ones",
                              "leave out --index and choose the draws with --seed");
    std::vector<torch::Tensor> xs, ls;
    int64_t have = 0;
    for (int round = 0; have < n; ++round) {
      if (round == 1000) throw Error("found only " + std::to_string(have) + " images of " + which + " in 1000 rounds");
      auto b = src.sample(n, g);
      if (k >= 0) {
        auto keep = b.labels.eq(k).nonzero().flatten();
        b.x = b.x.index_select(0, keep);
        b.labels = b.labels.index_select(0, keep);
      }
      have += b.x.size(0);
      xs.push_back(b.x);
      if (b.labels.defined()) ls.push_back(b.labels);
    }
    Picked p{torch::cat(xs).slice(0, 0, n), ls.empty() ? torch::Tensor() : torch::cat(ls).slice(0, 0, n), {}};
    return p;
  }
  // pool: the item numbers that may be picked, in the source's order.
  auto pool = k >= 0 ? src.labels().eq(k).nonzero().flatten() : torch::arange(src.size(), torch::kLong);
  const int64_t M = pool.size(0);
  torch::Tensor idx;
  if (by_index) {
    if (first < 0 || first + n > M)
      throw Error("--index " + std::to_string(first) + " --n " + std::to_string(n) + " asks for items " +
                      std::to_string(first) + " … " + std::to_string(first + n - 1) + " but " + which + " has " +
                      std::to_string(M) + " images",
                  "valid: 0 <= --index and --index + --n <= " + std::to_string(M));
    idx = pool.slice(0, first, first + n);
  } else {
    if (n > M)
      throw Error("--n " + std::to_string(n) + " but " + which + " has " + std::to_string(M) + " images",
                  "images are picked without repetition; ask for at most " + std::to_string(M));
    idx = pool.index_select(0, torch::randperm(M, g, torch::kLong).slice(0, 0, n));
  }
  auto b = src.items(idx);
  return {b.x, b.labels, idx};
}

void write_images(const Opts& o, const DataSource& src) {
  const int64_t num_classes = src.num_classes();
  const auto names = src.class_names();
  int64_t k = -1;
  if (given(o.o_cls)) {
    if (num_classes == 0)
      throw Error("--class needs labeled images; " + src.spec() + " has no classes",
                  "folder:PATH is labeled when every image lies in a subfolder (the class name), or by a labels.csv "
                  "beside the images (as --out DIR writes it)");
    k = parse_class(o.cls, names, num_classes);
  }
  auto g = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  Picked p = pick_images(src, o.n, k, given(o.o_index), o.index, g);
  auto x = p.x;  // (n, C, H, W) in [−1, 1]
  // RGB → gray with the colorize operator's luma weights, so the file is its measurement.
  if (o.gray && x.size(1) == 3) x = Degradation::gray().apply(x);
  if (given(o.o_size)) {
    const int64_t H = x.size(2), W = x.size(3);
    if (o.size < 1 || o.size > std::min(H, W))
      throw Error("--size " + std::to_string(o.size) + " is not in [1, " + std::to_string(std::min(H, W)) + "]",
                  "--size shrinks by area averaging; " + src.spec() + " images are " + std::to_string(W) + "×" +
                      std::to_string(H));
    // Area average: output pixel (i, j) is the mean of the input pixels it covers
    // (adaptive average pooling). When S divides H these are the means of (H/S)×(H/S)
    // blocks: the operator A of `diffuse upscale --factor H/S`.
    x = torch::adaptive_avg_pool2d(x, {o.size, o.size});
  }
  auto u8 = to_uint8(x);
  const int64_t n = u8.size(0);
  std::string what = std::to_string(n) + (n == 1 ? " image " : " images ") + "(" + std::to_string(u8.size(1)) + "×" +
                     std::to_string(u8.size(2)) + "×" + std::to_string(u8.size(3)) + ") of " + src.spec();
  if (!o.out.empty() && ends_with_png(o.out)) {
    if (n != 1) throw Error("--out " + o.out + " is one PNG but --n is " + std::to_string(n),
                            "give --n 1, or a folder as --out for one PNG per image");
    write_png(o.out, u8[0]);
    what += " to " + o.out;
    if (p.labels.defined() && num_classes > 0) {
      const int64_t l = p.labels[0].item<int64_t>();
      what += " (class " + std::to_string(l) + (size_t(l) < names.size() ? " " + names[size_t(l)] : "") + ")";
    }
  } else if (!o.out.empty()) {
    std::string dir = o.out;  // "out/" and "out" name the same folder
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    ensure_dir(dir);
    std::vector<std::string> files;
    for (int64_t i = 0; i < n; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.png", (long long)i);
      files.push_back(name);
      write_png(dir + "/" + name, u8[i]);
    }
    what += " to " + dir + "/ (" + files.front() + (n > 1 ? " … " + files.back() : "");
    if (p.labels.defined() && num_classes > 0) {
      write_file_atomic(dir + "/labels.csv", [&](std::ostream& os) {
        os << "file,index,label,class\n";
        for (int64_t i = 0; i < n; ++i) {
          const int64_t l = p.labels[i].item<int64_t>();
          os << files[size_t(i)] << ',' << (p.index.defined() ? std::to_string(p.index[i].item<int64_t>()) : "")
             << ',' << l << ',' << (size_t(l) < names.size() ? csv_field(names[size_t(l)]) : "") << '\n';
        }
      });
      what += ", labels.csv";
    }
    what += ")";
  }
  if (!o.grid.empty()) {
    write_picture(o.grid, make_grid(u8, int64_t(std::ceil(std::sqrt(double(n)))), 2), o.picture_scale);
    what += (o.out.empty() ? " as a grid " : ", grid ") + o.grid;
  }
  std::printf("wrote %s\n", what.c_str());
}
}  // namespace

void add_data(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "data", "write data of a spec to files: vectors as CSV (one a row), images as PNGs (one a file)");
  cmd->add_option("--data", o->data, "data spec: " + join(data_spec_names()))->required();
  cmd->add_option("--n", o->n, "number of vectors or images")->capture_default_str();
  cmd->add_option("--out", o->out,
                  "vectors: output CSV file; images: output folder (000000.png …, labels.csv), or FILE.png with --n 1");
  cmd->add_option("--seed", o->seed, "random seed (images: which ones are picked, without repetition)")
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "fashion-mnist, emoji: folder of the data files (default: Debian's)");
  auto* img = "Images";
  o->o_grid = cmd->add_option("--grid", o->grid, "a grid of the images to this PNG")->group(img);
  o->o_picture_scale =
      cmd->add_option("--picture-scale", o->picture_scale, kPictureScaleHelp)->capture_default_str()->group(img);
  o->o_index = cmd->add_option("--index", o->index,
                               "take items I … I+n−1 in the set's order (of --class if given) instead of by --seed")
                   ->group(img);
  o->o_cls = cmd->add_option("--class", o->cls, "only images of this class (a number or a name)")->group(img);
  o->o_size = cmd->add_option("--size", o->size, "shrink to S×S by area averaging (e.g. 7 for upscale --factor 4)")
                  ->group(img);
  o->o_gray = cmd->add_flag("--gray", o->gray, "RGB → gray by the luma of 'diffuse colorize' (gray data unchanged)")
                  ->group(img);
  o->o_image_size = cmd->add_option("--image-size", o->image_size,
                                    "folder:PATH, emoji: side of the square images, as in training (0: the source's default)")
                        ->capture_default_str()
                        ->group(img);
  cmd->add_option("--background", o->background, "emoji: colour behind the glyphs: white, black, #rrggbb")
      ->capture_default_str()
      ->group(img);
  cmd->callback([o] {
    if (o->n < 1) throw Error("--n must be >= 1");
    picture_scale(1, 1, o->picture_scale);  // a bad factor is an error before loading
    DataOptions dopt;
    dopt.data_dir = o->data_dir;
    dopt.image_size = o->image_size;
    dopt.background = o->background;
    auto src = make_data_source(o->data, dopt);
    if (src->is_image()) {
      if (o->out.empty() && o->grid.empty())
        throw Error("nothing to write", "give --out DIR (one PNG per image), --out FILE.png (--n 1) or --grid FILE.png");
      write_images(*o, *src);
      return;
    }
    for (auto* opt : {o->o_grid, o->o_picture_scale, o->o_index, o->o_cls, o->o_size, o->o_gray, o->o_image_size})
      if (given(opt))
        throw Error(opt->get_name() + " applies to image data; " + o->data + " is vector data",
                    "image specs: " + image_spec_names());
    if (o->out.empty()) throw Error("--out is required", "vectors are written to a CSV file: --out FILE.csv");
    auto g = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    write_csv(o->out, src->sample(o->n, g).x);
    std::printf("wrote %lld vectors of dimension %lld to %s\n", (long long)o->n, (long long)src->shape()[0],
                o->out.c_str());
  });
}

}  // namespace diffuse::cli
