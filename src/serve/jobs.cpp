// diffuse serve — jobs, the per-model worker, and running a job (see jobs.hpp).
#include "serve/jobs.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "diffuse/data.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/guidance.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/restore.hpp"

namespace diffuse::serve {

std::string to_string(JobState s) {
  switch (s) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "?";
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Job::eta_seconds() const {
  if (state != JobState::Running || step < 1 || steps < 1) return 0;
  return (now_seconds() - started_at) / double(step) * double(steps - step);
}

// --- running a job -------------------------------------------------------------

namespace {

// After each step: progress, every preview_every steps a preview, and the cancel check.
StepCallback progress_callback(Job& job) {
  return [&job](const StepInfo& s) {
    if (job.cancel.load()) throw JobCancelled{};
    const int64_t every = job.req.preview_every;
    std::string png;
    if (every > 0 && s.x0.defined() && ((s.step + 1) % every == 0 || s.step == 0))
      png = encode_png(to_uint8(s.x0[0].detach().cpu().clamp(-1, 1)));
    std::lock_guard<std::mutex> lock(job.m);
    job.step = s.step + 1;
    job.steps = s.total;
    if (!png.empty()) job.preview = std::move(png), job.preview_step = s.step + 1;
    job.changed();
  };
}

torch::Tensor generate(const LoadedRun& run, const torch::Device& device, Job& job, const std::vector<uint64_t>& seeds) {
  const JobRequest& r = job.req;
  DrawConfig dc;
  dc.n = r.batch;
  dc.batch = r.batch;
  dc.seeds = seeds;
  dc.sampler = r.sampler;
  dc.guidance = r.guidance;
  dc.fixed_class = r.cls;
  DrawHooks hooks;
  auto cb = progress_callback(job);
  hooks.on_step = [&](int64_t, const StepInfo& s) { cb(s); };
  return draw_samples(run, dc, device, hooks).samples;
}

torch::Tensor restoration(const LoadedRun& run, const torch::Device& device, Job& job, const std::vector<uint64_t>& seeds) {
  const JobRequest& r = job.req;
  const int64_t C = run.config.unet.in_channels, R = run.config.unet.image_size, K = run.config.unet.num_classes;
  const int64_t n = int64_t(seeds.size());
  const Degradation A = degradation(r, r.known);
  const RestoreConfig rc = restore_config(r);
  // y: the measurement. Inpaint: the image's known pixels; upscale and colorize: the image
  // sent (low resolution / gray); edit: the image itself (A = identity).
  torch::Tensor y = r.mode == Mode::Inpaint ? A.apply(r.image) : r.image;
  auto ys = y.to(device).expand({n, -1, -1, -1}).contiguous();
  Conditioning cond;
  std::unique_ptr<GuidedDenoiser> guided;
  const Denoiser* den = run.denoiser.get();
  if (r.cls >= 0) {
    cond.labels = torch::full({n}, r.cls, torch::kLong).to(device);
    guided = std::make_unique<GuidedDenoiser>(*run.denoiser, r.guidance, K);
    den = guided.get();
  } else if (K > 0) {
    cond.labels = torch::full({n}, K, torch::kLong).to(device);  // the null class: unconditional
  }
  std::vector<uint64_t> step_seeds;
  for (auto s : seeds) step_seeds.push_back(mix_seed(s, 1));
  auto init = NoiseStream::per_seed(seeds), noise = NoiseStream::per_seed(step_seeds);
  auto x_T = init.randn({C, R, R}, torch::TensorOptions().device(device));
  auto x = restore(*den, A, ys, x_T, rc, noise, cond, progress_callback(job)).cpu();
  // As `diffuse colorize`: into the pixel range by lowering saturation, keeping the gray input.
  return r.mode == Mode::Colorize ? keep_luma(x, ys.cpu()) : x.clamp(-1, 1);
}

}  // namespace

void execute_job(const LoadedRun& run, const torch::Device& device, Job& job) {
  std::vector<uint64_t> seeds;
  for (int64_t k = 0; k < job.req.batch; ++k) seeds.push_back(job.seed + uint64_t(k));
  auto x = job.req.mode == Mode::Generate ? generate(run, device, job, seeds) : restoration(run, device, job, seeds);
  auto u8 = to_uint8(x);
  // The class of image k: the one asked for, or for a generation without one, k mod K (draw.hpp).
  const int64_t K = run.config.unet.num_classes;
  std::vector<JobImage> images;
  for (int64_t k = 0; k < u8.size(0); ++k) {
    const int64_t cls = job.req.cls >= 0 ? job.req.cls : job.req.mode == Mode::Generate && K > 0 ? k % K : -1;
    images.push_back({seeds[size_t(k)], cls, encode_png(u8[k])});
  }
  std::lock_guard<std::mutex> lock(job.m);
  job.images = std::move(images);
}

// --- the queue -----------------------------------------------------------------

bool JobQueue::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (stop_ || waiting_.at(job->req.model) >= limit_) return false;
    queue_.push_back(job);
    ++waiting_[job->req.model];
  }
  cv_.notify_all();
  return true;
}

int64_t JobQueue::position(const Job& job) const {
  std::lock_guard<std::mutex> lock(m_);
  for (size_t i = 0; i < queue_.size(); ++i)
    if (queue_[i].get() == &job) return int64_t(i);
  return -1;
}

size_t JobQueue::queued(size_t model) const {
  std::lock_guard<std::mutex> lock(m_);
  return waiting_.at(model);
}

bool JobQueue::busy(size_t model) const {
  std::lock_guard<std::mutex> lock(m_);
  return running_ && running_->req.model == model;
}

void JobQueue::wake_waiting() {
  std::vector<std::shared_ptr<Job>> waiting;
  {
    std::lock_guard<std::mutex> lock(m_);
    waiting.assign(queue_.begin(), queue_.end());
  }
  for (auto& j : waiting) {
    std::lock_guard<std::mutex> lock(j->m);
    j->changed();
  }
}

void JobQueue::cancel(const std::shared_ptr<Job>& job) {
  bool removed = false;
  {
    std::lock_guard<std::mutex> lock(m_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (*it == job) {
        queue_.erase(it);
        --waiting_[job->req.model];
        removed = true;
        break;
      }
    job->cancel = true;  // a running job stops after its current step
  }
  if (removed) {
    {
      std::lock_guard<std::mutex> lock(job->m);
      job->state = JobState::Cancelled;
      job->finished_at = now_seconds();
      job->changed();
    }
    wake_waiting();
  }
}

void JobQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
    if (running_) running_->cancel = true;
  }
  cv_.notify_all();
}

void JobQueue::run(const std::vector<const LoadedRun*>& runs, const torch::Device& device) {
  torch::NoGradGuard no_grad;  // grad mode is per thread; DPS turns it on where it needs it
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      job = queue_.front();
      queue_.pop_front();
      --waiting_[job->req.model];
      running_ = job;
    }
    wake_waiting();
    {
      std::lock_guard<std::mutex> lock(job->m);
      job->state = JobState::Running;
      job->started_at = now_seconds();
      job->steps = planned_steps(job->req);
      job->changed();
    }
    JobState end = JobState::Done;
    std::string error, hint;
    try {
      if (job->cancel.load()) throw JobCancelled{};
      execute_job(*runs.at(job->req.model), device, *job);
    } catch (const JobCancelled&) {
      end = JobState::Cancelled;
    } catch (const Error& e) {
      end = JobState::Failed, error = e.what(), hint = e.hint();
    } catch (const c10::Error& e) {
      end = JobState::Failed, error = std::string("LibTorch: ") + e.what_without_backtrace();
    } catch (const std::exception& e) {
      end = JobState::Failed, error = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(job->m);
      job->state = end;
      job->error = error;
      job->error_hint = hint;
      job->finished_at = now_seconds();
      if (end == JobState::Done) job->step = job->steps;
      job->changed();
    }
    if (end == JobState::Failed) std::fprintf(stderr, "diffuse serve: job %s failed: %s\n", job->id.c_str(), error.c_str());
    std::lock_guard<std::mutex> lock(m_);
    running_.reset();
  }
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> lock(m_);
    left.swap(queue_);
  }
  for (auto& j : left) {
    std::lock_guard<std::mutex> lock(j->m);
    j->state = JobState::Cancelled;
    j->error = "the server stopped";
    j->finished_at = now_seconds();
    j->changed();
  }
}

// --- the store -----------------------------------------------------------------

std::shared_ptr<Job> JobStore::create() {
  auto job = std::make_shared<Job>();
  std::lock_guard<std::mutex> lock(m_);
  const uint64_t id = next_++;
  job->id = std::to_string(id);
  job->queued_at = now_seconds();
  jobs_[id] = job;
  prune();
  return job;
}

std::shared_ptr<Job> JobStore::find(const std::string& id) const {
  if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) return nullptr;
  std::lock_guard<std::mutex> lock(m_);
  auto it = jobs_.find(std::stoull(id));
  return it == jobs_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Job>> JobStore::recent(size_t n) const {
  std::lock_guard<std::mutex> lock(m_);
  std::vector<std::shared_ptr<Job>> out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend() && out.size() < n; ++it) out.push_back(it->second);
  return out;
}

void JobStore::prune() {
  size_t finished = 0;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    std::lock_guard<std::mutex> lock(it->second->m);
    if (is_final(it->second->state)) ++finished;
  }
  for (auto it = jobs_.begin(); it != jobs_.end() && finished > keep_;) {
    bool final_state;
    {
      std::lock_guard<std::mutex> lock(it->second->m);
      final_state = is_final(it->second->state);
    }
    if (final_state) {
      it = jobs_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

}  // namespace diffuse::serve
