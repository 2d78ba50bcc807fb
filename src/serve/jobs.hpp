// diffuse serve — jobs and the per-model queues that run them.
//
// A Job is shared between the HTTP threads (which read it to answer) and the model's
// worker thread (which runs it); every change happens under Job::m and bumps
// Job::version, and Job::cv wakes the event streams waiting for one. A running job is
// cancelled by its flag, checked after every sampler step (the step callback throws
// JobCancelled), so a cancel lands within one step.
#pragma once
#include <torch/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "diffuse/train.hpp"
#include "serve/request.hpp"

namespace diffuse::serve {

enum class JobState { Queued, Running, Done, Failed, Cancelled };
std::string to_string(JobState s);
inline bool is_final(JobState s) { return s == JobState::Done || s == JobState::Failed || s == JobState::Cancelled; }

struct JobImage {
  uint64_t seed;
  int64_t cls;      // the class it was drawn for, or −1 (unconditional)
  std::string png;  // the PNG file's bytes
};

struct Job {
  std::string id;
  JobRequest req;
  uint64_t seed = 0;   // the first image's seed (req.seed, or the one picked)
  bool sdapi = false;  // came through /sdapi/v1 (interrupt cancels these)

  mutable std::mutex m;
  std::condition_variable cv;
  // Guarded by m:
  JobState state = JobState::Queued;
  int64_t step = 0, steps = 0;  // steps done, of
  double queued_at = 0, started_at = 0, finished_at = 0;  // seconds on the server's steady clock
  std::string preview;        // PNG of the current x₀ estimate (first image), if any
  int64_t preview_step = -1;  // the step it was taken after
  std::vector<JobImage> images;
  std::string error, error_hint;
  uint64_t version = 0;  // bumped by every change (under m), then cv.notify_all()

  std::atomic<bool> cancel{false};

  void changed() {  // call with m held
    ++version;
    cv.notify_all();
  }
  double eta_seconds() const;  // with m held: (elapsed / step) · (steps − step)
};

double now_seconds();  // steady clock

// Thrown by the step callback when the job's cancel flag is set.
struct JobCancelled {};

// Runs one job's sampling or restoration on `run`: fills job.images, reports progress and
// previews into the job. Throws JobCancelled, diffuse::Error, or what LibTorch throws.
void execute_job(const LoadedRun& run, const torch::Device& device, Job& job);

// The queue of every model's jobs, run one at a time in the order they came, on the thread
// that calls run() (measured, docs/serve.md#threads: LibTorch's OpenMP pool is fast on the
// thread that first used it and ~2.5× slower on a second thread of a 2-core machine, so the
// server's thread that loaded the models also runs them). Each model's waiting jobs are limited.
class JobQueue {
 public:
  JobQueue(size_t models, size_t limit_per_model) : waiting_(models, 0), limit_(limit_per_model) {}
  // false when the job's model already has limit_per_model jobs waiting (the caller answers 429).
  bool submit(const std::shared_ptr<Job>& job);
  // Jobs ahead of this one (0: next), or −1 when it is not waiting.
  int64_t position(const Job& job) const;
  size_t queued(size_t model) const;
  bool busy(size_t model) const;
  // A queued job is removed and cancelled at once; a running one gets its flag set.
  void cancel(const std::shared_ptr<Job>& job);
  // Runs the jobs, job.req.model indexing `runs`, until stop(); then cancels what waits.
  void run(const std::vector<const LoadedRun*>& runs, const torch::Device& device);
  void stop();

 private:
  void wake_waiting();  // their positions changed: wake their event streams
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // all models, in arrival order
  std::vector<size_t> waiting_;             // per model
  size_t limit_;
  std::shared_ptr<Job> running_;
  bool stop_ = false;
};

// Every job by id, the newest `keep` finished ones kept (older are forgotten: 404).
class JobStore {
 public:
  explicit JobStore(size_t keep = 256) : keep_(keep) {}
  std::shared_ptr<Job> create();  // a new job with the next id
  std::shared_ptr<Job> find(const std::string& id) const;
  std::vector<std::shared_ptr<Job>> recent(size_t n) const;  // newest first

 private:
  void prune();  // with m_ held
  size_t keep_;
  mutable std::mutex m_;
  uint64_t next_ = 1;
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;
};

}  // namespace diffuse::serve
