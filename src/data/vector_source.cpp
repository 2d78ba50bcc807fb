// Data specs and the CSV source; normalisation.
#include <torch/torch.h>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

std::unique_ptr<DataSource> make_toy(const std::string& name);
std::unique_ptr<DataSource> make_image_dataset(const std::string& spec, const DataOptions& o);
std::unique_ptr<DataSource> make_emoji_source(const std::string& spec, const DataOptions& o);

namespace {
class CsvSource : public DataSource {
 public:
  explicit CsvSource(std::string path) : path_(std::move(path)), rows_(read_csv(path_)) {}
  std::vector<int64_t> shape() const override { return {rows_.size(1)}; }
  std::string spec() const override { return "csv:" + path_; }
  torch::Tensor all() const override { return rows_; }
  DataBatch sample(int64_t n, torch::Generator& gen) const override {
    auto idx = torch::randint(0, rows_.size(0), {n}, gen, torch::dtype(torch::kLong));
    return {rows_.index_select(0, idx), {}};
  }

 private:
  std::string path_;
  torch::Tensor rows_;
};
}  // namespace

DataBatch DataSource::items(const torch::Tensor&) const {
  throw Error(spec() + " draws fresh data; it has no numbered items");
}

std::vector<std::string> data_spec_names() {
  return {"signals", "toy:swissroll", "toy:8gaussians", "toy:moons", "toy:checkerboard", "csv:PATH",
          "fashion-mnist", "fashion-mnist:test", "folder:PATH", "emoji", "emoji:test"};
}

std::unique_ptr<DataSource> make_data_source(const std::string& spec, const DataOptions& o) {
  if (spec == "signals") return make_signals();
  if (spec.rfind("toy:", 0) == 0) return make_toy(spec.substr(4));
  if (spec.rfind("csv:", 0) == 0) {
    if (spec.size() == 4) throw Error("csv: needs a path", "write csv:PATH/TO/FILE.csv");
    return std::make_unique<CsvSource>(spec.substr(4));
  }
  if (spec.rfind("fashion-mnist", 0) == 0 || spec.rfind("folder:", 0) == 0) return make_image_dataset(spec, o);
  if (spec == "emoji" || spec.rfind("emoji:", 0) == 0) return make_emoji_source(spec, o);
  throw Error("unknown data spec '" + spec + "'", "valid specs: " + join(data_spec_names()));
}

Normalizer Normalizer::fit(const torch::Tensor& data) {
  auto x = data.to(torch::kFloat64);
  auto mean = x.mean(0);
  auto std = x.std(0, /*unbiased=*/false).clamp_min(1e-6);
  return {mean.to(torch::kFloat32), std.to(torch::kFloat32)};
}

torch::Tensor Normalizer::encode(const torch::Tensor& x) const {
  if (!mean.defined()) return x;
  return (x - mean.to(x.device())) / std.to(x.device());
}

torch::Tensor Normalizer::decode(const torch::Tensor& x) const {
  if (!mean.defined()) return x;
  return x * std.to(x.device()) + mean.to(x.device());
}

}  // namespace diffuse
