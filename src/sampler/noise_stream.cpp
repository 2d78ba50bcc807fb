#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "diffuse/sampler.hpp"

namespace diffuse {

uint64_t mix_seed(uint64_t seed, uint64_t index) {
  // splitmix64 of (seed, index): distinct, well-spread seeds for each sample.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

NoiseStream::NoiseStream(uint64_t seed, int64_t first_index, int64_t count) : count_(count) {
  gens_.reserve(count);
  for (int64_t i = 0; i < count; ++i)
    gens_.push_back(at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, first_index + i)));
}

NoiseStream NoiseStream::per_seed(const std::vector<uint64_t>& seeds) {
  NoiseStream s;
  s.count_ = int64_t(seeds.size());
  for (uint64_t seed : seeds) s.gens_.push_back(at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0)));
  return s;
}

NoiseStream NoiseStream::shared(torch::Generator generator, int64_t count) {
  NoiseStream s;
  s.gens_.push_back(std::move(generator));
  s.count_ = count;
  s.shared_ = true;
  return s;
}

torch::Tensor NoiseStream::randn(const std::vector<int64_t>& sample_shape,
                                 const torch::TensorOptions& options) {
  torch::Tensor out;
  if (shared_) {
    std::vector<int64_t> shape{count_};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    out = at::randn(shape, gens_[0], torch::kFloat32);
  } else {
    std::vector<torch::Tensor> rows;
    rows.reserve(gens_.size());
    for (auto& g : gens_) rows.push_back(at::randn(sample_shape, g, torch::kFloat32));
    out = torch::stack(rows);
  }
  return out.to(options.device(), options.has_dtype() ? options.dtype().toScalarType()
                                                      : torch::kFloat32);
}

}  // namespace diffuse
