// diffuse — vector data sources: the seed-002 signals, 2-D toys, CSV files.
//
// A data spec names a source on the command line:
//   signals           50-dim curves, each a weighted sum of random sinusoids (seed 002)
//   toy:swissroll  toy:8gaussians  toy:moons  toy:checkerboard    2-D toys
//   csv:PATH          one vector per row (a header row of names is allowed)
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace diffuse {

class VectorSource {
 public:
  virtual ~VectorSource() = default;
  virtual int64_t dim() const = 0;
  // n fresh draws (or, for a finite set, n rows drawn with replacement): (n, D) float32.
  virtual torch::Tensor sample(int64_t n, torch::Generator& gen) const = 0;
  // The whole set for finite sources (CSV); undefined for generative ones.
  virtual torch::Tensor all() const { return {}; }
  virtual std::string spec() const = 0;
};

// Parses a spec, throwing diffuse::Error that lists the valid specs.
std::unique_ptr<VectorSource> make_vector_source(const std::string& spec);
std::vector<std::string> vector_spec_names();

// Seed 002's signals: x(u) = Σ_k w_k sin(2π f_k u + φ_k), u = 0 … 1 over `dim` points,
// f_k ~ U(freq_min, freq_max) cycles, φ_k ~ U(0, 2π), w ~ U(0, 1) normalised to Σw = 1
// (so |x| ≤ 1).
struct SignalsOptions {
  int64_t dim = 50;         // points per curve
  int64_t components = 3;   // sinusoids per curve
  double freq_min = 0.5;    // lowest frequency, cycles per curve
  double freq_max = 4.0;    // highest frequency, cycles per curve
};
std::unique_ptr<VectorSource> make_signals(const SignalsOptions& o = {});

// Per-dimension standardisation x ↦ (x − mean)/std, fitted on data (N, D).
struct Normalizer {
  torch::Tensor mean, std;  // (D) float32; undefined = identity
  static Normalizer fit(const torch::Tensor& data);
  torch::Tensor encode(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& x) const;
};

}  // namespace diffuse
