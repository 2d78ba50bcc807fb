// diffuse — data-parallel training over PyTorch's c10d (Gloo on the CPU, NCCL on CUDA
// when LibTorch and the build have it). No communication code of our own: rendezvous is
// a c10d::TCPStore hosted by rank 0, collectives go through a c10d::ProcessGroup.
//
//   DistConfig dc;  dc.world_size = 2;  dc.rank = 0;  dc.master = "10.0.0.1:29500";
//   auto dist = Distributed::join(dc);   // blocks until every rank joined (or throws)
//   TrainHooks h;  h.dist = dist.get();  train(cfg, "runs/x", false, h);
//
// What is synchronised (see docs/distributed.md): rank 0 resolves the config and every
// rank takes it; rank 0's initial weights, EMA, optimizer state and normaliser are
// broadcast; gradients are averaged in buckets (all-reduce launched from gradient hooks
// while the backward pass runs); the logged loss is the mean over ranks; a stop request
// (Ctrl-C) on any rank stops all of them at the same step. Rank 0 alone writes files.
//
// Faults: every collective and store wait has the timeout of DistConfig::timeout_s. A
// failure is turned into a diffuse::Error naming the rank at fault: one that posted an
// error names it, one whose heartbeat stopped is reported as gone.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace diffuse {

struct DistConfig {
  int world_size = 1;                 // number of processes (ranks) in the run
  int rank = 0;                       // this process: 0 … world_size−1; rank 0 hosts the store
  std::string master = "127.0.0.1:29500";  // ADDR:PORT of rank 0's rendezvous (TCPStore)
  double timeout_s = 60;              // joining, each collective, each store wait
  double bucket_mb = 4;               // gradient all-reduce bucket size, MB of fp32
  bool overlap = true;                // launch each bucket from gradient hooks during backward
};
void validate(const DistConfig& c);   // throws diffuse::Error naming the flag

class Distributed {
 public:
  // Rendezvous: rank 0 hosts a TCPStore at master's port, every rank connects, registers
  // and waits for all the others; then the process group is created. Throws diffuse::Error
  // naming the ranks that did not join within the timeout.
  static std::unique_ptr<Distributed> join(const DistConfig& c);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  bool is_root() const { return rank() == 0; }
  const DistConfig& config() const;
  std::string backend() const;  // "gloo" or "nccl"

  // Uses NCCL for CUDA devices when built with it, else Gloo. Called once, by the trainer.
  void init_process_group(const torch::Device& device);

  // Key/value exchange through the store: rank 0 publishes, the others wait for it
  // (failing early if another rank posted an error).
  void publish(const std::string& key, const std::string& value);
  std::string fetch(const std::string& key);

  // In place, from rank 0: every tensor (any dtypes, same shapes on every rank).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // In place: sum over ranks of a small tensor.
  void allreduce_sum(torch::Tensor& t);
  void barrier();

  // Gradient averaging. attach() once with the parameters; then every step
  //   begin_step(); loss.backward(); finish_gradients();
  // leaves every parameter's .grad equal to the mean over ranks.
  void attach(const std::vector<torch::Tensor>& params);
  void begin_step();
  void finish_gradients();
  double allreduce_seconds() const;  // total time finish_gradients() spent (waiting + copies)
  int64_t reduced_steps() const;

  // Posts this rank's failure so that the others can name it; best effort, never throws.
  void post_error(const std::string& message, const std::string& hint = {}) noexcept;
  // A diffuse::Error for a failed collective: names the rank at fault if it can tell.
  [[noreturn]] void fail(const std::string& what);

  struct Impl;

 private:
  explicit Distributed(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "ADDR:PORT" → {ADDR, PORT}; throws diffuse::Error for a bad address.
std::pair<std::string, uint16_t> parse_master(const std::string& master);

}  // namespace diffuse
