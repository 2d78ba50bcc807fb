// diffuse — data sources: the seed-002 signals, 2-D toys, CSV files, images.
//
// A data spec names a source on the command line:
//   signals           50-dim curves, each a weighted sum of random sinusoids (seed 002)
//   toy:swissroll  toy:8gaussians  toy:moons  toy:checkerboard    2-D toys
//   csv:PATH          one vector per row (a header row of names is allowed)
//   fashion-mnist     Fashion-MNIST train split (fashion-mnist:test for the test split),
//                     from Debian's dataset-fashion-mnist (or DataOptions::data_dir)
//   folder:PATH       a folder of PNG images, labels from subfolder names if any
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace diffuse {

struct DataBatch {
  torch::Tensor x;       // (n, D) vectors or (n, C, H, W) images in [−1, 1], float32
  torch::Tensor labels;  // (n) int64 class ids, or undefined for unlabeled data
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  // Shape of one sample: {D} for vectors, {C, H, W} for images.
  virtual std::vector<int64_t> shape() const = 0;
  bool is_image() const { return shape().size() == 3; }
  // n fresh draws (or, for a finite set, n items drawn with replacement).
  virtual DataBatch sample(int64_t n, torch::Generator& gen) const = 0;
  // The whole set for finite vector sources (CSV); undefined otherwise.
  virtual torch::Tensor all() const { return {}; }
  // Finite image sets (fashion-mnist, folder:PATH, …): the number of images, the
  // images at `index` ((n) int64, each in [0, size())) and the labels of all images
  // ((size()) int64, undefined when unlabeled). Sources of fresh draws have size() 0,
  // and items() throws there.
  virtual int64_t size() const { return 0; }
  virtual DataBatch items(const torch::Tensor& index) const;
  virtual torch::Tensor labels() const { return {}; }
  virtual int64_t num_classes() const { return 0; }
  virtual std::vector<std::string> class_names() const { return {}; }
  virtual std::string spec() const = 0;
};

struct DataOptions {
  std::string data_dir;      // fashion-mnist: folder of the IDX files ("": Debian's location)
  int64_t image_size = 28;   // folder:PATH: images are resized and center-cropped to this
  int64_t channels = 0;      // folder:PATH: 1 or 3 (0: from the first image)
};

// Parses a spec, throwing diffuse::Error that lists the valid specs.
std::unique_ptr<DataSource> make_data_source(const std::string& spec, const DataOptions& o = {});
std::vector<std::string> data_spec_names();
// Images of a dataset as a source (images (N, C, H, W) uint8, labels (N) int64 or undefined).
std::unique_ptr<DataSource> make_image_source(std::string spec, torch::Tensor images, torch::Tensor labels,
                                              std::vector<std::string> class_names);

// Seed 002's signals: x(u) = Σ_k w_k sin(2π f_k u + φ_k), u = 0 … 1 over `dim` points,
// f_k ~ U(freq_min, freq_max) cycles, φ_k ~ U(0, 2π), w ~ U(0, 1) normalised to Σw = 1
// (so |x| ≤ 1).
struct SignalsOptions {
  int64_t dim = 50;         // points per curve
  int64_t components = 3;   // sinusoids per curve
  double freq_min = 0.5;    // lowest frequency, cycles per curve
  double freq_max = 4.0;    // highest frequency, cycles per curve
};
std::unique_ptr<DataSource> make_signals(const SignalsOptions& o = {});

// Per-dimension standardisation x ↦ (x − mean)/std, fitted on data (N, D).
struct Normalizer {
  torch::Tensor mean, std;  // (D) float32; undefined = identity
  static Normalizer fit(const torch::Tensor& data);
  torch::Tensor encode(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& x) const;
};

}  // namespace diffuse

namespace diffuse {
// Whether a spec names image data (fashion-mnist…, folder:…), without loading it.
bool is_image_spec(const std::string& spec);
}  // namespace diffuse
