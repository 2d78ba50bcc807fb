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

NoiseStream::NoiseStream(uint64_t seed, int64_t first_index, int64_t count) {
  gens_.reserve(count);
  for (int64_t i = 0; i < count; ++i)
    gens_.push_back(at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, first_index + i)));
}

torch::Tensor NoiseStream::randn(const std::vector<int64_t>& sample_shape,
                                 const torch::TensorOptions& options) {
  std::vector<torch::Tensor> rows;
  rows.reserve(gens_.size());
  for (auto& g : gens_) rows.push_back(at::randn(sample_shape, g, torch::kFloat32));
  auto out = torch::stack(rows);
  return out.to(options.device(), options.has_dtype() ? options.dtype().toScalarType()
                                                      : torch::kFloat32);
}

}  // namespace diffuse
