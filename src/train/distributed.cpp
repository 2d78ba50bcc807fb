// Data-parallel training context on c10d: TCPStore rendezvous, a Gloo (or NCCL) process
// group, bucketed gradient all-reduce launched from gradient hooks, and fault diagnosis that
// names the rank at fault (posted errors and store heartbeats).
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef DIFFUSE_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "diffuse/distributed.hpp"
#include "diffuse/error.hpp"

namespace diffuse {

namespace dist_detail {

using Clock = std::chrono::steady_clock;
constexpr auto kHeartbeat = std::chrono::milliseconds(500);  // heartbeat period
constexpr auto kPoll = std::chrono::milliseconds(50);        // store polling period
constexpr char kHintSep = '\x1f';                            // message / hint in an error key

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }
std::string key_join(int r) { return "diffuse/join/" + std::to_string(r); }
std::string key_error(int r) { return "diffuse/error/" + std::to_string(r); }
std::string key_heartbeat(int r) { return "diffuse/hb/" + std::to_string(r); }

std::string secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", s);
  return b;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

std::string describe(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace dist_detail

using namespace dist_detail;

std::pair<std::string, uint16_t> parse_master(const std::string& master) {
  const auto colon = master.rfind(':');
  auto bad = [&] {
    return Error("--master '" + master + "' is not ADDR:PORT", "for example --master 10.0.0.1:29500 (rank 0's address)");
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == master.size()) throw bad();
  std::string host = master.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  long port = 0;
  try {
    size_t used = 0;
    port = std::stol(master.substr(colon + 1), &used);
    if (used != master.size() - colon - 1) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (port < 1 || port > 65535) throw bad();
  return {host, uint16_t(port)};
}

void validate(const DistConfig& c) {
  if (c.world_size < 1) throw Error("--world-size must be ≥ 1 (got " + std::to_string(c.world_size) + ")");
  if (c.rank < 0 || c.rank >= c.world_size)
    throw Error("--rank must be in 0 … " + std::to_string(c.world_size - 1) + " (got " + std::to_string(c.rank) + ")",
                "ranks are numbered from 0; rank 0 hosts the rendezvous");
  if (!(c.timeout_s > 0)) throw Error("--dist-timeout must be > 0 seconds");
  if (!(c.bucket_mb > 0)) throw Error("--bucket-mb must be > 0");
  parse_master(c.master);
}

struct Distributed::Impl {
  DistConfig cfg;
  std::string host;
  uint16_t port = 0;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::string backend = "gloo";
  bool failed = false;  // a peer failure was diagnosed: do not post it as our own

  // Heartbeat: a thread with its own store connection bumps diffuse/hb/<rank>.
  std::thread hb_thread;
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_stop = false;

  // Gradient buckets, in reverse parameter order (the order backward produces them).
  struct Bucket {
    torch::Tensor flat;          // (n) all the bucket's gradients, flattened
    std::vector<size_t> params;  // indices into `params`
    size_t pending = 0;          // gradients still to arrive this step
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<torch::Tensor> params;
  std::vector<std::pair<size_t, int64_t>> where;  // param → (bucket, offset)
  std::vector<Bucket> buckets;
  std::vector<char> arrived;
  size_t next_launch = 0;
  bool in_step = false;
  std::exception_ptr hook_error;
  double reduce_s = 0;
  int64_t steps = 0;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(int64_t(cfg.timeout_s * 1000.0));
  }

  void start_heartbeat() {
    c10d::TCPStoreOptions o;
    o.port = port;
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = timeout();
    auto hb_store = c10::make_intrusive<c10d::TCPStore>(host, o);
    hb_thread = std::thread([this, hb_store] {
      std::unique_lock<std::mutex> lock(hb_mu);
      while (!hb_stop) {
        try {
          hb_store->add(key_heartbeat(cfg.rank), 1);
        } catch (...) {
          return;  // the store is gone (rank 0 ended): nothing left to signal to
        }
        hb_cv.wait_for(lock, kHeartbeat, [this] { return hb_stop; });
      }
    });
  }

  void stop_heartbeat() {
    if (!hb_thread.joinable()) return;
    {
      std::lock_guard<std::mutex> g(hb_mu);
      hb_stop = true;
    }
    hb_cv.notify_all();
    hb_thread.join();
  }

  // The error another rank posted, as "rank R failed: message" (+ hint), if any.
  bool posted_error(std::string& what, std::string& hint) {
    for (int r = 0; r < cfg.world_size; ++r) {
      if (r == cfg.rank || !store->check({key_error(r)})) continue;
      const std::string v = text(store->get(key_error(r)));
      const auto sep = v.find(kHintSep);
      what = "rank " + std::to_string(r) + " failed: " + v.substr(0, sep);
      hint = sep == std::string::npos ? "" : v.substr(sep + 1);
      return true;
    }
    return false;
  }

  std::vector<int64_t> heartbeats() {
    std::vector<int64_t> v(cfg.world_size, -1);
    for (int r = 0; r < cfg.world_size; ++r)
      if (r != cfg.rank && store->check({key_heartbeat(r)})) v[r] = store->add(key_heartbeat(r), 0);
    return v;
  }

  // Which rank is at fault: one that posted an error, else those whose heartbeat stopped.
  std::pair<std::string, std::string> diagnose() {
    std::string what, hint;
    const std::string resume_hint =
        "rank 0 writes checkpoints atomically, so the last one is intact: restart every rank with "
        "--resume (the same or another --world-size)";
    try {
      if (posted_error(what, hint)) return {what, hint};
      auto before = heartbeats();
      std::this_thread::sleep_for(3 * kHeartbeat);
      if (posted_error(what, hint)) return {what, hint};
      auto after = heartbeats();
      std::vector<std::string> gone;
      for (int r = 0; r < cfg.world_size; ++r)
        if (r != cfg.rank && after[r] == before[r]) gone.push_back(std::to_string(r));
      if (!gone.empty())
        return {(gone.size() == 1 ? "rank " : "ranks ") + diffuse::join(gone) +
                    " stopped responding (its process ended or its machine or network failed)",
                resume_hint};
    } catch (const std::exception&) {
      if (cfg.rank != 0)
        return {"rank 0 is gone (it hosted the rendezvous at " + host + ":" + std::to_string(port) + ")",
                resume_hint};
    }
    return {"", resume_hint};
  }

  // ---- gradient buckets ----
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      std::vector<torch::Tensor> v{buckets[next_launch].flat};
      buckets[next_launch].work = pg->allreduce(v);
      ++next_launch;
    }
  }

  void on_grad(size_t i, const torch::Tensor& g) {
    if (!in_step || arrived[i] || hook_error) return;
    try {
      auto [b, off] = where[i];
      auto& B = buckets[b];
      B.flat.narrow(0, off, g.numel()).copy_(g.reshape({-1}));
      arrived[i] = 1;
      --B.pending;
      launch_ready();
    } catch (...) {
      hook_error = std::current_exception();
    }
  }
};

Distributed::Distributed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Distributed::~Distributed() {
  impl_->stop_heartbeat();
  impl_->pg.reset();
}

int Distributed::rank() const { return impl_->cfg.rank; }
int Distributed::world_size() const { return impl_->cfg.world_size; }
const DistConfig& Distributed::config() const { return impl_->cfg; }
std::string Distributed::backend() const { return impl_->backend; }
double Distributed::allreduce_seconds() const { return impl_->reduce_s; }
int64_t Distributed::reduced_steps() const { return impl_->steps; }

std::unique_ptr<Distributed> Distributed::join(const DistConfig& c) {
  validate(c);
  auto m = std::make_unique<Impl>();
  m->cfg = c;
  std::tie(m->host, m->port) = parse_master(c.master);
  const std::string where = m->host + ":" + std::to_string(m->port);
  const std::string me = "rank " + std::to_string(c.rank);
  c10d::TCPStoreOptions o;
  o.port = m->port;
  o.isServer = c.rank == 0;
  o.waitWorkers = false;
  o.timeout = m->timeout();
  try {
    m->store = c10::make_intrusive<c10d::TCPStore>(m->host, o);
  } catch (const std::exception& e) {
    if (c.rank == 0)
      throw Error("rank 0 cannot host the rendezvous on port " + std::to_string(m->port) + ": " + describe(e),
                  "is another run using the port? Choose another --master ADDR:PORT");
    throw Error(me + " cannot reach the rendezvous at " + where + " (rank 0) within " + secs(c.timeout_s) +
                    ": " + describe(e),
                "start rank 0 with the same --master; check the address, the port and the firewall");
  }
  try {
    if (m->store->add(key_join(c.rank), 1) > 1)
      throw Error("two processes joined the run at " + where + " as rank " + std::to_string(c.rank),
                  "give every process its own --rank");
    if (c.rank == 0) m->store->set("diffuse/world_size", bytes(std::to_string(c.world_size)));
    std::vector<std::string> all;
    for (int r = 0; r < c.world_size; ++r) all.push_back(key_join(r));
    all.push_back("diffuse/world_size");
    const auto deadline = Clock::now() + m->timeout();
    while (!m->store->check(all)) {
      if (Clock::now() > deadline) {
        std::vector<std::string> missing;
        for (int r = 0; r < c.world_size; ++r)
          if (!m->store->check({key_join(r)})) missing.push_back(std::to_string(r));
        throw Error((missing.size() == 1 ? "rank " : "ranks ") + diffuse::join(missing) + " did not join the run at " +
                        where + " within " + secs(c.timeout_s),
                    "start every rank with the same --world-size and --master (or raise --dist-timeout)");
      }
      std::this_thread::sleep_for(kPoll);
    }
    const int w0 = std::stoi(text(m->store->get("diffuse/world_size")));
    if (w0 != c.world_size)
      throw Error(me + " was started with --world-size " + std::to_string(c.world_size) + " but rank 0 with " +
                  std::to_string(w0), "give every rank the same --world-size");
    m->start_heartbeat();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(me + ": the rendezvous at " + where + " failed: " + describe(e),
                "rank 0 may have ended; restart every rank");
  }
  return std::unique_ptr<Distributed>(new Distributed(std::move(m)));
}

void Distributed::init_process_group(const torch::Device& device) {
  auto& m = *impl_;
  if (m.pg) return;
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("pg", m.store);
  try {
#ifdef DIFFUSE_HAVE_NCCL
    if (device.is_cuda()) {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = m.timeout();
      m.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, m.cfg.rank, m.cfg.world_size, o);
      m.backend = "nccl";
      return;
    }
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(m.timeout());
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(m.host))
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    m.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, m.cfg.rank, m.cfg.world_size, o);
    m.backend = "gloo";
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("creating the " + m.backend + " process group: " + describe(e));
  }
}

void Distributed::publish(const std::string& key, const std::string& value) {
  try {
    impl_->store->set("diffuse/pub/" + key, bytes(value));
  } catch (const std::exception& e) {
    fail("publishing '" + key + "': " + describe(e));
  }
}

std::string Distributed::fetch(const std::string& key) {
  auto& m = *impl_;
  const std::string k = "diffuse/pub/" + key;
  try {
    const auto deadline = Clock::now() + m.timeout();
    while (!m.store->check({k})) {
      std::string what, hint;
      if (m.posted_error(what, hint)) {
        m.failed = true;
        throw Error(what, hint);
      }
      if (Clock::now() > deadline)
        fail("waited " + secs(m.cfg.timeout_s) + " for rank 0's '" + key + "'");
      std::this_thread::sleep_for(kPoll);
    }
    return text(m.store->get(k));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("reading '" + key + "': " + describe(e));
  }
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  auto& m = *impl_;
  torch::NoGradGuard ng;
  try {
    // One flat tensor per dtype: a few collectives instead of one per tensor.
    std::map<c10::ScalarType, std::vector<torch::Tensor>> groups;
    for (const auto& t : tensors)
      if (t.defined() && t.numel() > 0) groups[t.scalar_type()].push_back(t);
    for (auto& [dtype, ts] : groups) {
      std::vector<torch::Tensor> flat_parts;
      for (const auto& t : ts) flat_parts.push_back(t.reshape({-1}));
      std::vector<torch::Tensor> v{torch::cat(flat_parts)};
      c10d::BroadcastOptions bo;
      bo.rootRank = 0;
      m.pg->broadcast(v, bo)->wait();
      int64_t off = 0;
      for (auto& t : ts) {
        t.copy_(v[0].narrow(0, off, t.numel()).view(t.sizes()));
        off += t.numel();
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("broadcast: " + describe(e));
  }
}

void Distributed::allreduce_sum(torch::Tensor& t) {
  try {
    std::vector<torch::Tensor> v{t};
    impl_->pg->allreduce(v)->wait();
  } catch (const std::exception& e) {
    fail("all-reduce: " + describe(e));
  }
}

void Distributed::barrier() {
  try {
    impl_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    fail("barrier: " + describe(e));
  }
}

void Distributed::attach(const std::vector<torch::Tensor>& params) {
  auto& m = *impl_;
  m.params.clear();
  for (const auto& p : params)
    if (p.requires_grad()) m.params.push_back(p);
  const int64_t cap = std::max<int64_t>(1, int64_t(m.cfg.bucket_mb * 1e6 / 4));
  m.where.assign(m.params.size(), {0, 0});
  m.buckets.clear();
  int64_t fill = 0;
  for (size_t k = m.params.size(); k-- > 0;) {
    const auto& p = m.params[k];
    const bool new_bucket = m.buckets.empty() || fill + p.numel() > cap ||
                            m.buckets.back().flat.scalar_type() != p.scalar_type();
    if (new_bucket) {
      if (!m.buckets.empty()) m.buckets.back().flat = torch::zeros({fill}, m.buckets.back().flat.options());
      m.buckets.push_back({torch::empty({0}, p.options()), {}, 0, {}});
      fill = 0;
    }
    m.where[k] = {m.buckets.size() - 1, fill};
    m.buckets.back().params.push_back(k);
    fill += p.numel();
  }
  if (!m.buckets.empty()) m.buckets.back().flat = torch::zeros({fill}, m.buckets.back().flat.options());
  m.arrived.assign(m.params.size(), 0);
  if (m.cfg.overlap)
    for (size_t k = 0; k < m.params.size(); ++k) {
      Impl* mp = impl_.get();
      m.params[k].register_hook([mp, k](const torch::Tensor& g) { mp->on_grad(k, g); });
    }
}

void Distributed::begin_step() {
  auto& m = *impl_;
  for (auto& b : m.buckets) {
    b.pending = b.params.size();
    b.work.reset();
  }
  std::fill(m.arrived.begin(), m.arrived.end(), 0);
  m.next_launch = 0;
  m.hook_error = nullptr;
  m.in_step = m.cfg.overlap;
}

void Distributed::finish_gradients() {
  auto& m = *impl_;
  const auto t0 = Clock::now();
  torch::NoGradGuard ng;
  m.in_step = false;
  try {
    if (m.hook_error) std::rethrow_exception(m.hook_error);
    // Gradients the hooks did not see (all of them without overlap; unused parameters with it).
    for (size_t k = 0; k < m.params.size(); ++k) {
      if (m.arrived[k]) continue;
      auto [b, off] = m.where[k];
      auto slice = m.buckets[b].flat.narrow(0, off, m.params[k].numel());
      const auto& g = m.params[k].grad();
      if (g.defined()) slice.copy_(g.reshape({-1}));
      else slice.zero_();
      m.arrived[k] = 1;
      --m.buckets[b].pending;
    }
    m.launch_ready();
    const double inv = 1.0 / double(m.cfg.world_size);
    for (auto& b : m.buckets) {
      b.work->wait();
      b.flat.mul_(inv);
    }
    for (size_t k = 0; k < m.params.size(); ++k) {
      auto& p = m.params[k];
      auto [b, off] = m.where[k];
      auto mean = m.buckets[b].flat.narrow(0, off, p.numel()).view(p.sizes());
      if (!p.grad().defined()) p.mutable_grad() = torch::empty_like(p);
      p.mutable_grad().copy_(mean);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("gradient all-reduce: " + describe(e));
  }
  m.reduce_s += std::chrono::duration<double>(Clock::now() - t0).count();
  ++m.steps;
}

void Distributed::post_error(const std::string& message, const std::string& hint) noexcept {
  auto& m = *impl_;
  if (m.failed) return;  // a peer's failure, already named: not ours to post
  try {
    m.store->set(key_error(m.cfg.rank), bytes(message + kHintSep + hint));
  } catch (...) {
  }
}

void Distributed::fail(const std::string& what) {
  auto& m = *impl_;
  m.failed = true;
  auto [who, hint] = m.diagnose();
  if (who.empty())
    throw Error("rank " + std::to_string(m.cfg.rank) + ": a collective operation failed or timed out after " +
                    secs(m.cfg.timeout_s) + " (" + what + ")",
                hint);
  throw Error(who + " [seen by rank " + std::to_string(m.cfg.rank) + ": " + what + "]", hint);
}

}  // namespace diffuse
