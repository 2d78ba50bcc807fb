// diffuse serve — what the route files share: the server's state and JSON helpers.
#pragma once
#include <httplib.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/serve.hpp"
#include "serve/jobs.hpp"
#include "serve/request.hpp"

namespace diffuse {

struct Server::Impl {
  ServeConfig cfg;
  std::vector<std::unique_ptr<LoadedRun>> runs;  // one per model, in name order
  std::vector<serve::ModelInfo> infos;           // the same order
  std::unique_ptr<serve::JobQueue> queue;
  torch::Device device{torch::kCPU};
  std::thread listener;  // HTTP; the thread calling run() runs the jobs
  std::vector<std::string> paths;                            // run folders
  std::atomic<size_t> default_model{0};                      // /sdapi/v1/options can change it
  serve::JobStore store;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  int port = 0;

  // Routes (routes_native.cpp, routes_sdapi.cpp).
  void add_native_routes();
  void add_sdapi_routes();
  // Submits a parsed request as a new job; nullptr when the model's queue is full.
  std::shared_ptr<serve::Job> submit(serve::JobRequest req, bool sdapi);
  // The job as GET /diffuse/v1/jobs/{id} answers (images inline as data URIs or not).
  nlohmann::json job_json(const serve::Job& job, bool inline_images) const;
  // Wakes every event stream (server stopping).
  void wake_all();
};

namespace serve {

// {"error": {"message", "field"?, "hint"?}} with this status.
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& field = {},
                const std::string& hint = {});
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
// The body as JSON, or a 400 naming the parse error (returns false).
bool parse_body(const httplib::Request& req, httplib::Response& res, nlohmann::json& out);
// Runs fn, turning RequestError into 400 and other diffuse::Error into 400 without a field.
template <class F>
void guarded(httplib::Response& res, F&& fn) {
  try {
    fn();
  } catch (const RequestError& e) {
    send_error(res, 400, e.what(), e.field(), e.hint());
  } catch (const Error& e) {
    send_error(res, 400, e.what(), {}, e.hint());
  }
}

}  // namespace serve
}  // namespace diffuse
