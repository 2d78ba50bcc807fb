// diffuse — `diffuse serve`: a local web UI and HTTP API over the trained image runs of a
// folder (docs/serve.md). The native API (/diffuse/v1: jobs, Server-Sent Events with
// previews) and AUTOMATIC1111's /sdapi/v1 subset run on the same per-model job queues.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace diffuse {

struct ServeConfig {
  std::string runs;                // folder of run folders (or one run folder)
  std::string host = "127.0.0.1";  // bind address; loopback unless asked otherwise
  int port = 7860;                 // 0: any free port (Server::port() tells which)
  std::string api_key;             // non-empty: every API route needs "Authorization: Bearer KEY"
  size_t queue = 16;               // jobs waiting per model; one more is answered 429
  size_t max_body_mb = 16;         // larger request bodies are answered 413
  std::string device = "auto";     // where the models run
  bool ema = true;                 // EMA weights (else raw)
  size_t http_threads = 64;        // connections served at once (event streams hold one each)
};

class Server {
 public:
  // Loads every image run under cfg.runs and binds the port; throws diffuse::Error naming
  // the problem (no runs, port taken, …).
  explicit Server(const ServeConfig& cfg);
  ~Server();
  int port() const;
  size_t models() const;
  void run();   // serves until stop() (from another thread)
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace diffuse
