// Internal: a run's log.csv and its loss curve loss.png — shared by the Trainer and the distiller.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace diffuse {

// One row of log.csv: step,loss,lr,grad_norm,it_per_s,elapsed_s.
struct LogRow {
  int64_t step;
  double loss, lr, grad_norm, it_per_s, elapsed;
};

// The rows of `path` up to step `up_to_step` (a resumed run drops the rows beyond its checkpoint);
// none when the file is missing.
std::vector<LogRow> read_log(const std::string& path, int64_t up_to_step);
// log.csv, written atomically.
void write_log(const std::string& path, const std::vector<LogRow>& rows);
// The loss column against the step, log scale, as a PNG (nothing for no rows).
void plot_loss(const std::string& path, const std::vector<LogRow>& rows);

}  // namespace diffuse
