// diffuse — pictures of vector data: a scatter for 2-D, curves for longer vectors.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "diffuse/plot.hpp"

namespace diffuse {

// One panel of (N, D) data: D == 2 → scatter of up to max_points; D > 2 → the
// first max_curves rows as curves over the dimension index.
plot::Panel vector_panel(const torch::Tensor& x, const std::string& title, int max_curves = 8,
                         int max_points = 2000);

// Snapshots of a process (forward or reverse): one panel per snapshot on the top
// row and, below, the histogram of all values against the N(0, 1) density.
struct Snapshot {
  std::string title;  // e.g. "t = 50"
  torch::Tensor x;    // (N, D)
};
void save_process_figure(const std::string& path, const std::string& title,
                         const std::vector<Snapshot>& snapshots, bool histograms = true);

// Generated samples beside fresh data drawn from the same spec.
void save_samples_figure(const std::string& path, const torch::Tensor& samples,
                         const torch::Tensor& data);

}  // namespace diffuse
