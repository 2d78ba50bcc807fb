#include "diffuse/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace diffuse {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

Progress::Progress(std::string what, int64_t total, int64_t first, int64_t every, bool quiet)
    : what_(std::move(what)), total_(total), first_(first), every_(every < 1 ? 1 : every),
      quiet_(quiet), tty_(::isatty(2)), last_done_(first),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  const double e = elapsed();
  return e > 0 ? double(last_done_ - first_) / e : 0.0;
}

void Progress::update(int64_t done, const std::string& extra) {
  last_done_ = done;
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool due = tty_ ? std::chrono::duration<double>(now - last_print_).count() >= 0.25
                        : (done % every_ == 0);
  if (!due && done != total_) return;
  last_print_ = now;
  print(done, extra, false);
}

void Progress::finish(const std::string& extra) {
  if (quiet_) return;
  print(last_done_, extra, true);
}

void Progress::print(int64_t done, const std::string& extra, bool final) {
  const double r = rate();
  const double eta = r > 0 ? double(total_ - done) / r : NAN;
  char buf[96];
  std::snprintf(buf, sizeof buf, " %.1f it/s %s %s", r, final ? "took" : "ETA",
                format_duration(final ? elapsed() : eta).c_str());
  std::fprintf(stderr, "%s%s %lld/%lld%s%s%s", tty_ ? "\r\033[K" : "", what_.c_str(),
               (long long)done, (long long)total_, extra.empty() ? "" : (" " + extra).c_str(), buf,
               (tty_ && !final) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace diffuse
