// diffuse — drawing samples from a trained run, the way `diffuse sample` does.
//
// Sample i depends only on (seed, i): its x_T comes from NoiseStream(seed, i) and its
// sampler noise from NoiseStream(mix_seed(seed, 1), i), so any batch size, and
// `diffuse sample`, `diffuse eval fd --run` and the benchmarks, give the same images.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"

namespace diffuse {

struct DrawConfig {
  int64_t n = 100;           // samples to draw
  int64_t batch = 250;       // drawn at once
  uint64_t seed = 0;
  SamplerConfig sampler;     // default: DDPM over all T steps
  double guidance = 1.0;     // classifier-free guidance scale (class-conditional runs)
  int64_t fixed_class = -1;  // class-conditional runs: this class, or −1 for classes in turn (i mod K)
};

struct Drawn {
  torch::Tensor samples;  // (n, ...) in the model's space (images in [−1, 1]), on the CPU
  torch::Tensor labels;   // (n) int64 classes asked for, or undefined for unconditional runs
};

// on_batch(done): called after each batch with the number of samples drawn so far.
Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const std::function<void(int64_t done)>& on_batch = {});

}  // namespace diffuse
