// bench_serve_throughput: latency per image for one client and throughput for N concurrent
// clients of `diffuse serve`, against the same drawing done in-process (no HTTP), so the
// server's overhead is measured, not assumed. The server runs in this process on a free
// loopback port; each client posts generate jobs (POST /diffuse/v1/jobs) and follows each
// job's event stream to its `done` event (the way the page waits), one job after another.
//
//   bench_serve_throughput --runs DIR [--model NAME] [--clients 1,8] [--jobs 6] [--batch 1]
//                          [--sampler dpm++2m] [--steps 20] [--out results.json]
//
// Run it on a quiet machine (nothing else busy): 2 cores shared by anything else make every
// number off by several times.
#include <httplib.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench_util.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/serve.hpp"
#include "diffuse/train.hpp"

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One generate job through the API: POST, then the event stream until done. Returns seconds.
double one_job(int port, const json& body) {
  const auto t0 = Clock::now();
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(600);
  auto r = c.Post("/diffuse/v1/jobs", body.dump(), "application/json");
  if (!r || r->status != 202) throw std::runtime_error("POST /diffuse/v1/jobs failed: " + (r ? r->body : std::string("no answer")));
  const std::string id = json::parse(r->body)["id"];
  std::string stream;
  bool done = false;
  auto ev = c.Get(("/diffuse/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    stream.append(data, n);
    if (stream.find("event: done") != std::string::npos) done = true;
    if (stream.find("event: error") != std::string::npos) throw std::runtime_error("job " + id + " failed");
    return !done;  // stop reading after done
  });
  if (!done) throw std::runtime_error("job " + id + ": the event stream ended without done");
  return seconds_since(t0);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"diffuse serve: latency per image and throughput under concurrent clients"};
  std::string runs, model, sampler = "dpm++2m", out, clients_list = "1,8";
  int64_t jobs = 6, batch = 1, steps = 20, threads = 0;
  app.add_option("--runs", runs, "folder of runs (as diffuse serve --runs)")->required();
  app.add_option("--model", model, "model name (default: the first)");
  app.add_option("--clients", clients_list, "client counts to measure")->capture_default_str();
  app.add_option("--jobs", jobs, "jobs per client, one after another")->capture_default_str();
  app.add_option("--batch", batch, "images per job")->capture_default_str();
  app.add_option("--sampler", sampler, "sampler")->capture_default_str();
  app.add_option("--steps", steps, "sampler steps")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();
  app.add_option("--out", out, "results JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    diffuse::set_intra_op_threads(threads, true);
    // In-process reference: the same images drawn by draw_samples on this thread, no HTTP, no
    // queue. This thread then runs the server's jobs (Server::run), as `diffuse serve` does.
    std::string run_dir = runs;
    if (!std::ifstream(runs + "/config.json")) {
      if (model.empty()) throw std::runtime_error("--model is needed when --runs holds several runs");
      run_dir = runs + "/" + model;
    }
    auto run = diffuse::load_run(run_dir, true, "cpu");
    const bool conditional = run.config.unet.num_classes > 0;
    diffuse::DrawConfig dc;
    dc.n = batch;
    dc.batch = batch;
    dc.sampler.kind = diffuse::parse_sampler_kind(sampler);
    dc.sampler.steps = steps;
    dc.sampler.clip_x0 = 1.0;
    dc.guidance = conditional ? 2.0 : 1.0;
    dc.fixed_class = conditional ? 0 : -1;
    draw_samples(run, dc, torch::kCPU);  // warm-up
    std::vector<double> lib;
    for (int64_t i = 0; i < jobs; ++i) {
      const auto t0 = Clock::now();
      dc.seed = uint64_t(i);
      draw_samples(run, dc, torch::kCPU);
      lib.push_back(seconds_since(t0));
    }

    diffuse::ServeConfig cfg;
    cfg.runs = runs;
    cfg.port = 0;
    cfg.queue = 64;
    diffuse::Server server(cfg);
    json body{{"sampler", sampler}, {"steps", steps}, {"batch", batch}, {"seed", 1}, {"preview_every", 0}};
    if (!model.empty()) body["model"] = model;
    if (conditional) body["guidance"] = 2.0, body["class"] = 0;
    json results{{"model", model.empty() ? run_dir : model}, {"sampler", sampler}, {"steps", steps}, {"batch", batch},
                 {"jobs_per_client", jobs}, {"threads", torch::get_num_threads()},
                 {"in_process", {{"seconds_per_job_median", percentile(lib, 0.5)}, {"images_per_second", double(batch) / percentile(lib, 0.5)}}}};
    std::printf("model %s, %s %lld steps, batch %lld, %d threads\n", results["model"].get<std::string>().c_str(), sampler.c_str(),
                (long long)steps, (long long)batch, torch::get_num_threads());
    std::printf("%-22s %10s %10s %10s %12s\n", "", "p50 s/job", "p95 s/job", "wall s", "images/s");
    std::printf("%-22s %10.3f %10.3f %10s %12.2f\n", "in-process draw", percentile(lib, 0.5), percentile(lib, 0.95), "",
                double(batch) / percentile(lib, 0.5));
    std::string failure;
    std::thread clients_driver([&] {
      try {
        one_job(server.port(), body);  // warm-up through the server
        for (const auto& cs : diffuse::bench::split(clients_list)) {
          const int n = std::stoi(cs);
          std::vector<std::vector<double>> lat(static_cast<size_t>(n));
          const auto t0 = Clock::now();
          std::vector<std::thread> ts;
          for (int k = 0; k < n; ++k)
            ts.emplace_back([&, k] {
              json b = body;
              for (int64_t j = 0; j < jobs; ++j) {
                b["seed"] = k * 1000 + j;
                lat[size_t(k)].push_back(one_job(server.port(), b));
              }
            });
          for (auto& t : ts) t.join();
          const double wall = seconds_since(t0);
          std::vector<double> all;
          for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
          const double ips = double(n * jobs * batch) / wall;
          std::printf("%-22s %10.3f %10.3f %10.2f %12.2f\n", (std::to_string(n) + " client" + (n == 1 ? "" : "s")).c_str(),
                      percentile(all, 0.5), percentile(all, 0.95), wall, ips);
          std::fflush(stdout);
          results["clients"][cs] = {{"p50_seconds_per_job", percentile(all, 0.5)},
                                    {"p95_seconds_per_job", percentile(all, 0.95)},
                                    {"wall_seconds", wall},
                                    {"images_per_second", ips}};
        }
      } catch (const std::exception& e) {
        failure = e.what();
      }
      server.stop();
    });
    server.run();
    clients_driver.join();
    if (!failure.empty()) throw std::runtime_error(failure);
    if (!out.empty()) std::ofstream(out) << results.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
