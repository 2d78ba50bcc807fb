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
#include <thread>
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

// One model's queue and the thread that works through it, one job at a time.
class ModelWorker {
 public:
  ModelWorker(std::string name, LoadedRun run, torch::Device device, size_t queue_limit);
  ~ModelWorker();  // cancels what is queued or running and joins the thread
  ModelWorker(const ModelWorker&) = delete;
  ModelWorker& operator=(const ModelWorker&) = delete;

  const std::string& name() const { return name_; }
  const LoadedRun& run() const { return run_; }
  // false when the queue already holds queue_limit jobs (the caller answers 429).
  bool submit(const std::shared_ptr<Job>& job);
  // Jobs ahead of this one (0: next), or −1 when it is not waiting.
  int64_t position(const Job& job) const;
  size_t queued() const;
  bool busy() const;
  // A queued job is removed and cancelled at once; a running one gets its flag set.
  void cancel(const std::shared_ptr<Job>& job);

 private:
  void loop();
  std::string name_;
  LoadedRun run_;
  torch::Device device_;
  size_t limit_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::shared_ptr<Job> running_;
  bool stop_ = false;
  std::thread thread_;
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
