// diffuse — drawing samples from a trained run, the way `diffuse sample` does.
//
// Sample i depends only on (seed, i): its x_T comes from NoiseStream(seed, i) and its
// sampler noise from NoiseStream(mix_seed(seed, 1), i), so any batch size, and
// `diffuse sample`, `diffuse eval fd --run` and the benchmarks, give the same images.
// `diffuse sample` draws through here too: its chain GIF, strip and vector chain are
// ChainRecorders, its PNGs are written from DrawHooks::on_batch.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

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
  // With fixed_class −1: empty → classes in turn (i mod K); else K weights (e.g. the training
  // split's class counts): sample i gets the class furthest behind its share,
  // argmax_c (w_c (i + 1) − n_c(i)) with w normalised and ties to the lower class, so every
  // prefix of the samples holds the classes close to their shares and label i does not
  // depend on n or the batch (equal weights give i mod K).
  std::vector<double> class_weights;
  // If not empty: n = seeds.size() and sample i is drawn as sample 0 of seed seeds[i] (what
  // `diffuse sample --seed seeds[i] --n 1` draws, with the same class), instead of (seed, i).
  std::vector<uint64_t> seeds;
};

struct Drawn {
  torch::Tensor samples;  // (n, ...) in the model's space (images in [−1, 1]), on the CPU
  torch::Tensor labels;   // (n) int64 classes asked for, or undefined for unconditional runs
};

// Which states of the reverse process a ChainRecorder keeps: pick(step, total) is asked
// after each step (0 … total − 1).
using StepPick = std::function<bool(int64_t step, int64_t total)>;
// After every e-th step, e = max(1, ⌊total / count⌋) (steps e − 1, 2e − 1, …), only the
// first `limit` of these (0: all), and after the last step always. (40): GIF frames;
// (8, 8): the columns of a strip.
StepPick every_nth_step(int64_t count, int64_t limit = 0);
// After step max(0, round(f · total) − 1) for each fraction f in (0, 1] (ascending).
StepPick at_fractions(std::vector<double> fractions);

// One recorded state of the reverse process.
struct ChainSnapshot {
  int64_t step;      // −1 for x_T, else the step (0 … total − 1) after which x was taken
  int64_t total;     // the sampler's number of steps
  double t;          // the timestep just denoised (x_T: NaN)
  torch::Tensor x;   // (rows, ...) in the model's space, on the CPU
};

// Records x_T and the picked states of the first `rows` samples of a batch (a chain GIF,
// a strip, a vector chain figure). draw_samples feeds it the first batch.
class ChainRecorder {
 public:
  ChainRecorder(int64_t rows, StepPick pick);
  void start(const torch::Tensor& x_T);  // records x_T
  void step(const StepInfo& s);          // records s.x if pick(s.step, s.total)
  const std::vector<ChainSnapshot>& snapshots() const { return snapshots_; }
  std::vector<torch::Tensor> states() const;  // the x of every snapshot, in order

 private:
  int64_t rows_;
  StepPick pick_;
  std::vector<ChainSnapshot> snapshots_;
};

struct DrawHooks {
  // After each batch: its first sample's index, the batch's samples (b, ...) in the model's
  // space on the CPU, and their classes (b) (undefined for unconditional runs).
  std::function<void(int64_t first, const torch::Tensor& samples, const torch::Tensor& labels)> on_batch;
  // After every sampler step of every batch (`first`: the batch's first sample's index).
  std::function<void(int64_t first, const StepInfo& s)> on_step;
  // Recorders of the reverse process of the first samples (of the first batch).
  std::vector<ChainRecorder*> chains;
  // false: Drawn.samples and .labels stay undefined (on_batch takes each batch, e.g. to
  // write it), so that n samples need not fit in memory at once.
  bool keep_samples = true;
};

// The labels of n samples in proportion to `weights` (DrawConfig::class_weights).
torch::Tensor labels_in_proportion(const std::vector<double>& weights, int64_t num_classes, int64_t n);

// Draws cfg.n samples batch by batch. The hooks change nothing drawn.
Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const DrawHooks& hooks);
// on_batch(done): called after each batch with the number of samples drawn so far.
Drawn draw_samples(const LoadedRun& run, const DrawConfig& cfg, const torch::Device& device,
                   const std::function<void(int64_t done)>& on_batch = {});

}  // namespace diffuse
