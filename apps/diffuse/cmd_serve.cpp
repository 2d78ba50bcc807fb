// diffuse serve: the web UI and HTTP API over a folder of trained runs (docs/serve.md).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "cli.hpp"
#include "diffuse/error.hpp"
#include "diffuse/serve.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

namespace {
int g_stop_pipe[2] = {-1, -1};
void on_stop_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  (void)!write(g_stop_pipe[1], &b, 1);  // async-signal-safe
}

struct ServeOpts {
  ServeConfig cfg;
  std::string weights = "ema";
  int64_t threads = 0;
};
}  // namespace

void add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOpts>();
  auto* cmd = app.add_subcommand("serve", "web UI and HTTP API (native + AUTOMATIC1111 /sdapi/v1) over trained runs");
  cmd->add_option("--runs", o->cfg.runs, "folder of run folders (each image run becomes a model named after its folder), or one run")
      ->required();
  cmd->add_option("--host", o->cfg.host, "address to bind (anything but loopback exposes the server: use --api-key)")
      ->capture_default_str();
  cmd->add_option("--port", o->cfg.port, "port (0: any free port, printed)")->capture_default_str();
  cmd->add_option("--api-key", o->cfg.api_key, "require 'Authorization: Bearer KEY' (or ?api_key=KEY) on every API route");
  cmd->add_option("--queue", o->cfg.queue, "jobs waiting per model; one more is answered 429")->capture_default_str();
  cmd->add_option("--max-body", o->cfg.max_body_mb, "largest request body in MB (larger: 413)")->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->cfg.device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)->capture_default_str();
  cmd->callback([o] {
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    if (o->threads < 0) throw Error("--threads must be >= 0", kThreadsHelp);
    o->cfg.ema = o->weights == "ema";
    set_intra_op_threads(o->threads, true);
    Server server(o->cfg);
    std::printf("diffuse serve: %zu model%s from %s\n", server.models(), server.models() == 1 ? "" : "s", o->cfg.runs.c_str());
    std::printf("diffuse serve: listening on http://%s:%d/\n", o->cfg.host.c_str(), server.port());
    std::fflush(stdout);
    // SIGINT and SIGTERM stop the server: the handler (whatever thread it lands on) writes the
    // signal's number into a pipe, and a thread waiting on the pipe calls stop(), which is not
    // async-signal-safe itself. A client that hangs up gives EPIPE, not a SIGPIPE that kills.
    std::signal(SIGPIPE, SIG_IGN);
    if (pipe(g_stop_pipe) != 0) throw Error("cannot create the stop pipe");
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    std::thread waiter([&] {
      unsigned char sig = 0;
      while (read(g_stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
      }
      if (sig != 0) {
        std::printf("diffuse serve: stopping (signal %d)\n", int(sig));
        std::fflush(stdout);
      }
      server.stop();
    });
    server.run();
    const unsigned char none = 0;  // a stop without a signal: release the waiter
    (void)!write(g_stop_pipe[1], &none, 1);
    waiter.join();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
  });
}

}  // namespace diffuse::cli
