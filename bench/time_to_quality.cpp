// Time to quality: how good a model is after a given number of minutes of training on this
// machine. Trains one configuration, snapshots the EMA weights at fixed wall-clock times of
// training and measures each snapshot with `diffuse eval fd` (the project's feature network,
// N samples against the test split, and the train-vs-test floor at the same N).
//
//   bench_time_to_quality --preset NAME [--set JSON] --out DIR [--minutes 2.5,5,10,20]
//       [--steps auto|N] [--n 1000] [--eval-args "--sampler dpm++2m --steps 20 --clip 1"]
//       [--diffuse build/diffuse] [--threads 0] [--label TEXT] [--offset-minutes M]
//   bench_time_to_quality --compare DIR1,DIR2,… --out DIR   (one table and plot of several runs)
//
// The clock counts training steps only: it stops while a snapshot is taken and measured
// (the run is stopped with a checkpoint and resumed, which the trainer does bit for bit), so
// the minutes are those of an uninterrupted run. --offset-minutes M adds M minutes spent before
// the run to every snapshot's time (a latent run: the training of its autoencoder, so that a
// pixel and a latent run compare at equal CPU time); the snapshots still fall at --minutes of
// this run's own training. --steps auto fits the run's length (and
// with it the cosine learning-rate decay) to the last snapshot time: it trains the first
// steps of the warm-up, measures the step rate and sets steps = rate · budget.
// Writes OUT/results.json, OUT/table.md, OUT/fd_minutes.png and OUT/snap_MMmin/ (each snapshot
// a run folder that `diffuse sample` loads, with its eval/fd.json).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/plot.hpp"
#include "diffuse/train.hpp"

namespace {
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace diffuse;

using diffuse::bench::split;

std::string minutes_name(double m) {
  char b[32];
  std::snprintf(b, sizeof b, "snap_%06.1fmin", m);
  return b;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path + "'");
  return json::parse(in);
}

// The training clock: time between consecutive steps of one segment (a segment is one call of
// train(); its first step, which includes start-up, is counted at the mean step time so far).
struct StepClock {
  double seconds = 0;
  int64_t counted_steps = 0;
  bool have_last = false;
  Clock::time_point last;
  double mean_step() const { return counted_steps > 0 ? seconds / double(counted_steps) : 0.0; }
  void segment_start() { have_last = false; }
  void tick() {
    const auto now = Clock::now();
    if (have_last) {
      seconds += std::chrono::duration<double>(now - last).count();
      ++counted_steps;
    } else {
      seconds += mean_step();  // the first step of a segment: start-up excluded
    }
    last = now;
    have_last = true;
  }
};

void write_outputs(const std::vector<json>& runs, const std::string& out_dir) {
  std::ostringstream md;
  md << "| configuration | minutes | steps | images/s | FD | floor | FD / floor | precision | recall |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  plot::Panel p;
  p.title = "feature FD against training time";
  p.xlabel = "log10 minutes of training";
  p.ylabel = "FD (featnet), log scale";
  p.logy = true;
  double floor_sum = 0;
  int floor_n = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& r = runs[i];
    plot::Series s;
    s.label = r.at("label").get<std::string>();
    s.style = plot::SeriesStyle::Line;
    s.color = int(i % 9 < 7 ? i % 9 : i % 9 + 1);  // palette index 7 (gray) is the floor's
    for (const auto& snap : r.at("snapshots")) {
      const double fd = snap.at("fd"), fl = snap.at("floor");
      char row[320];
      std::snprintf(row, sizeof row, "| %s | %.1f | %lld | %.1f | %.2f | %.2f | %.2f | %.3f | %.3f |\n",
                    s.label.c_str(), snap.at("minutes").get<double>(), (long long)snap.at("step").get<int64_t>(),
                    snap.at("images_per_s").get<double>(), fd, fl, fd / fl, snap.at("precision").get<double>(),
                    snap.at("recall").get<double>());
      md << row;
      s.x.push_back(std::log10(snap.at("minutes").get<double>()));
      s.y.push_back(fd);
      floor_sum += fl;
      ++floor_n;
    }
    plot::Series dots = s;  // a marker at every snapshot: a one-snapshot run has no line
    dots.label.clear();
    dots.style = plot::SeriesStyle::Points;
    p.series.push_back(s);
    p.series.push_back(dots);
  }
  if (floor_n > 0 && !p.series.empty()) {
    double lo = 1e9, hi = -1e9;
    for (const auto& s : p.series)
      for (double x : s.x) lo = std::min(lo, x), hi = std::max(hi, x);
    plot::Series f;
    f.label = "floor (train vs test, same N)";
    f.x = {lo, hi};
    f.y = {floor_sum / floor_n, floor_sum / floor_n};
    f.color = 7;
    p.series.push_back(f);
  }
  ensure_dir(out_dir);
  write_file_atomic(out_dir + "/table.md", [&](std::ostream& o) { o << md.str(); });
  plot::save_png({"time to quality", {p}, 0, 640, 420}, out_dir + "/fd_minutes.png");
  std::printf("%s", md.str().c_str());
  std::printf("wrote %s/table.md and %s/fd_minutes.png\n", out_dir.c_str(), out_dir.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  std::string preset, set_json, out_dir, minutes_s = "2.5,5,10,20", steps_s = "auto", diffuse_bin = "build/diffuse",
                                         eval_args = "--sampler dpm++2m --steps 20 --clip 1", label, compare;
  int64_t n = 1000, threads = 0, probe = 40;
  double offset_minutes = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--preset") preset = next();
    else if (a == "--set") set_json = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--minutes") minutes_s = next();
    else if (a == "--steps") steps_s = next();
    else if (a == "--n") n = std::stoll(next());
    else if (a == "--eval-args") eval_args = next();
    else if (a == "--diffuse") diffuse_bin = next();
    else if (a == "--threads") threads = std::stoll(next());
    else if (a == "--label") label = next();
    else if (a == "--probe") probe = std::stoll(next());
    else if (a == "--compare") compare = next();
    else if (a == "--offset-minutes") offset_minutes = std::stod(next());
    else throw Error("unknown argument '" + a + "'",
                     "valid: --preset --set --out --minutes --steps --n --eval-args --diffuse --threads --label "
                     "--probe --compare --offset-minutes");
  }
  if (out_dir.empty()) throw Error("give --out DIR");
  if (!compare.empty()) {
    std::vector<json> runs;
    for (const auto& d : split(compare)) runs.push_back(read_json(d + "/results.json"));
    write_outputs(runs, out_dir);
    return 0;
  }
  if (preset.empty()) throw Error("give --preset NAME", "valid presets: " + join(preset_names()));
  std::vector<double> minutes;
  for (const auto& m : split(minutes_s)) minutes.push_back(std::stod(m));
  if (minutes.empty() || !std::is_sorted(minutes.begin(), minutes.end()) || minutes.front() <= 0)
    throw Error("--minutes must be increasing positive numbers, e.g. 2.5,5,10,20");

  TrainConfig cfg = preset_config(preset);
  if (!set_json.empty()) cfg = train_config_from_json(set_json, cfg, "--set");
  cfg.threads = threads;
  cfg.sample_every = 0;               // no grids inside the clock
  cfg.checkpoint_every = 1000000000;  // snapshots are the checkpoints
  if (label.empty()) label = preset + (set_json.empty() ? "" : " " + set_json);
  const std::string run_dir = out_dir + "/run";
  if (fs::exists(run_dir)) throw Error("'" + run_dir + "' exists", "use a new --out folder");
  ensure_dir(out_dir);

  StepClock clock;
  size_t next_snap = 0;
  bool probing = false;
  int64_t probe_until = 0;
  TrainHooks hooks;
  hooks.quiet = false;
  hooks.stop_after = [&](int64_t step) {
    clock.tick();
    if (probing) return step >= probe_until;
    return next_snap < minutes.size() && clock.seconds >= 60.0 * minutes[next_snap];
  };

  bool resume = false;
  if (steps_s == "auto") {
    // Probe: the first steps (inside the warm-up, whose learning rate does not depend on steps).
    probe = std::min(probe, std::max<int64_t>(cfg.warmup, 10));
    probing = true;
    probe_until = probe;
    TrainConfig c = cfg;
    c.steps = 1000000000;
    clock.segment_start();
    train(c, run_dir, false, hooks);
    probing = false;
    resume = true;
    // The rate from steps 6…probe (the first ones warm up oneDNN and the caches).
    cfg.steps = std::max<int64_t>(probe + 1, int64_t(60.0 * minutes.back() / clock.mean_step()));
    std::printf("probe: %.3f s/step over the first %lld steps → steps = %lld for %.1f min\n", clock.mean_step(),
                (long long)probe, (long long)cfg.steps, minutes.back());
  } else {
    cfg.steps = std::stoll(steps_s);
  }

  json result = {{"label", label}, {"preset", preset}, {"set", set_json}, {"n", n}, {"eval_args", eval_args},
                 {"steps", cfg.steps}, {"batch", cfg.batch}, {"config", json::parse(train_config_to_json(cfg))},
                 {"offset_minutes", offset_minutes}};
  result["snapshots"] = json::array();
  while (true) {
    clock.segment_start();
    const auto r = train(cfg, run_dir, resume, hooks);
    resume = true;
    const bool finished = r.status == TrainStatus::Finished;
    const double m = clock.seconds / 60.0;  // the scheduled time, or a little more (or the run's end)
    const std::string snap = out_dir + "/" + minutes_name(finished ? m : minutes[next_snap]);
    ensure_dir(snap);
    fs::copy_file(checkpoint_path(run_dir), checkpoint_path(snap), fs::copy_options::overwrite_existing);
    fs::copy_file(run_dir + "/config.json", snap + "/config.json", fs::copy_options::overwrite_existing);
    const std::string cmd = shell_quote(diffuse_bin) + " eval fd --run " + shell_quote(snap) + " --n " +
                            std::to_string(n) + " --threads " + std::to_string(threads) + " " + eval_args +
                            " --out " + shell_quote(snap + "/eval") + " > " + shell_quote(snap + "/eval.log") + " 2>&1";
    std::printf("\nsnapshot at %.2f min of training (step %lld): %s\n", m, (long long)r.step,
                cmd.c_str());
    if (std::system(cmd.c_str()) != 0) throw Error("eval fd failed", "see " + snap + "/eval.log");
    const json fd = read_json(snap + "/eval/fd.json");
    json s = {{"minutes", m + offset_minutes},
              {"train_minutes", m},
              {"clock_minutes", clock.seconds / 60.0},
              {"step", r.step},
              {"images_per_s", double(r.step * cfg.batch) / clock.seconds},
              {"fd", fd.at("fd")},
              {"floor", fd.at("floor").at("fd")},
              {"precision", fd.at("precision")},
              {"recall", fd.at("recall")},
              {"fd_pixels", fd.at("fd_pixels")},
              {"seconds_per_image", fd.at("sampler").at("seconds_per_image")},
              {"snapshot", snap}};
    if (fd.contains("class_agreement")) s["class_agreement"] = fd.at("class_agreement");
    std::printf("FD %.3f (floor %.3f) after %.2f min, step %lld\n", s["fd"].get<double>(),
                s["floor"].get<double>(), m, (long long)r.step);
    result["snapshots"].push_back(s);
    write_file_atomic(out_dir + "/results.json", [&](std::ostream& o) { o << result.dump(2) << "\n"; });
    if (finished) break;
    if (++next_snap >= minutes.size()) break;
  }
  write_outputs({result}, out_dir);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
