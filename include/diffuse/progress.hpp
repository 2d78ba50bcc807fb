// diffuse — a progress line for long work: "step 1200/5000 … 41.3 it/s ETA 1m32s".
// On a terminal it redraws one line (at most 4 times a second); otherwise it
// prints a line every `every` steps.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace diffuse {

class Progress {
 public:
  Progress(std::string what, int64_t total, int64_t first = 0, int64_t every = 100, bool quiet = false);
  // After finishing step `done` (1-based count of steps done); extra goes after the counter.
  void update(int64_t done, const std::string& extra = {});
  void finish(const std::string& extra = {});
  double rate() const;        // steps per second since start
  double elapsed() const;     // seconds since start

 private:
  void print(int64_t done, const std::string& extra, bool final);
  std::string what_;
  int64_t total_, first_, every_;
  bool quiet_, tty_;
  int64_t last_done_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace diffuse
