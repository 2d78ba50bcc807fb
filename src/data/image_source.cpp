// Image datasets held in memory as uint8 and served as floats in [−1, 1].
#include <torch/torch.h>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"

namespace diffuse {

namespace {
class ImageSource : public DataSource {
 public:
  ImageSource(std::string spec, torch::Tensor images, torch::Tensor labels, std::vector<std::string> names)
      : spec_(std::move(spec)), images_(std::move(images)), labels_(std::move(labels)), names_(std::move(names)) {
    if (images_.dim() != 4 || images_.scalar_type() != torch::kUInt8 || images_.size(0) < 1)
      throw Error("image data must be a non-empty (N, C, H, W) uint8 tensor");
  }
  std::vector<int64_t> shape() const override { return {images_.size(1), images_.size(2), images_.size(3)}; }
  int64_t num_classes() const override { return labels_.defined() ? int64_t(names_.size()) : 0; }
  std::vector<std::string> class_names() const override { return names_; }
  std::string spec() const override { return spec_; }
  DataBatch sample(int64_t n, torch::Generator& gen) const override {
    return items(torch::randint(0, images_.size(0), {n}, gen, torch::dtype(torch::kLong)));
  }
  int64_t size() const override { return images_.size(0); }
  torch::Tensor labels() const override { return labels_; }
  DataBatch items(const torch::Tensor& idx) const override {
    // x ∈ [−1, 1]: x = u8 / 127.5 − 1
    auto x = images_.index_select(0, idx).to(torch::kFloat32) / 127.5 - 1.0;
    return {x, labels_.defined() ? labels_.index_select(0, idx) : torch::Tensor()};
  }

 private:
  std::string spec_;
  torch::Tensor images_, labels_;
  std::vector<std::string> names_;
};
}  // namespace

bool is_image_spec(const std::string& spec) {
  return spec.rfind("fashion-mnist", 0) == 0 || spec.rfind("folder:", 0) == 0 || spec == "emoji" ||
         spec.rfind("emoji:", 0) == 0;
}

std::unique_ptr<DataSource> make_image_source(std::string spec, torch::Tensor images, torch::Tensor labels,
                                              std::vector<std::string> class_names) {
  return std::make_unique<ImageSource>(std::move(spec), std::move(images), std::move(labels),
                                       std::move(class_names));
}

std::unique_ptr<DataSource> make_image_dataset(const std::string& spec, const DataOptions& o) {
  if (spec.rfind("fashion-mnist", 0) == 0) {
    std::string split = spec == "fashion-mnist" ? "train" : spec.substr(std::string("fashion-mnist").size());
    if (split != "train" && split.size() > 1 && split[0] == ':') split = split.substr(1);
    if (split != "train" && split != "test")
      throw Error("unknown Fashion-MNIST split in '" + spec + "'",
                  "write fashion-mnist (the train split), fashion-mnist:train or fashion-mnist:test");
    const std::string dir = o.data_dir.empty() ? "/usr/share/datasets/fashion-mnist" : o.data_dir;
    auto d = load_fashion_mnist(dir, split);
    return make_image_source(spec, d.images, d.labels, d.class_names);
  }
  if (spec.rfind("folder:", 0) == 0) {
    if (spec.size() == 7) throw Error("folder: needs a path", "write folder:PATH/TO/IMAGES");
    auto d = load_image_folder(spec.substr(7), o.image_size > 0 ? o.image_size : 28, o.channels);
    return make_image_source(spec, d.images, d.labels, d.class_names);
  }
  throw Error("unknown image data spec '" + spec + "'");
}

}  // namespace diffuse
