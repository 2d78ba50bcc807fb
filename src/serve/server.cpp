// diffuse serve — the server: loading the runs, binding, authentication, the page's files,
// errors as JSON, and the job JSON both APIs answer with (routes: routes_*.cpp).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sys/socket.h>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"
#include "serve/assets.hpp"
#include "serve/server_impl.hpp"

namespace diffuse {

using json = nlohmann::json;
using serve::Job;
using serve::JobState;

namespace serve {

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& field,
                const std::string& hint) {
  json e{{"message", message}};
  if (!field.empty()) e["field"] = field;
  if (!hint.empty()) e["hint"] = hint;
  send_json(res, json{{"error", e}}, status);
}

bool parse_body(const httplib::Request& req, httplib::Response& res, json& out) {
  try {
    out = json::parse(req.body);
    return true;
  } catch (const json::exception& e) {
    send_error(res, 400, std::string("the body is not valid JSON: ") + e.what(), "", "send a JSON object");
    return false;
  }
}

}  // namespace serve

namespace {

// Every run folder: `runs` itself when it is a run, else its sub-folders holding a config.json.
std::vector<std::filesystem::path> find_runs(const std::string& runs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(runs, ec)) throw Error("--runs " + runs + " is not a folder", "give the folder your runs are in");
  if (fs::exists(fs::path(runs) / "config.json", ec)) return {fs::path(runs)};
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(runs, ec))
    if (e.is_directory(ec) && fs::exists(e.path() / "config.json", ec)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= (i < a.size() ? uint8_t(a[i]) : 0) ^ uint8_t(b[i]);
  return diff == 0;
}

}  // namespace

Server::Server(const ServeConfig& cfg) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.cfg = cfg;
  if (cfg.queue < 1) throw Error("--queue must be >= 1");
  if (cfg.max_body_mb < 1 || cfg.max_body_mb > 1024) throw Error("--max-body must be in 1 … 1024 (MB)");
  if (cfg.port < 0 || cfg.port > 65535) throw Error("--port must be in 0 … 65535");
  s.device = resolve_device(cfg.device);
  for (const auto& path : find_runs(cfg.runs)) {
    const std::string name = path.filename().string();
    LoadedRun run;
    try {
      run = load_run(path.string(), cfg.ema, cfg.device);
    } catch (const Error& e) {
      std::fprintf(stderr, "diffuse serve: skipping %s: %s\n", path.string().c_str(), e.what());
      continue;
    }
    if (!is_image_spec(run.config.data)) {
      std::fprintf(stderr, "diffuse serve: skipping %s: a vector run (the server serves image runs)\n", path.string().c_str());
      continue;
    }
    if (run.is_vae() || run.is_autoencoder() || run.is_latent()) {
      std::fprintf(stderr, "diffuse serve: skipping %s: a%s run (the server serves pixel-space diffusion runs)\n",
                   path.string().c_str(), run.is_vae() ? " VAE" : run.is_latent() ? " latent diffusion" : "n autoencoder");
      continue;
    }
    serve::ModelInfo info;
    info.name = name;
    info.channels = run.config.unet.in_channels;
    info.image_size = run.config.unet.image_size;
    info.num_classes = run.config.unet.num_classes;
    info.T = run.config.schedule.T;
    info.class_names = run.class_names;
    s.infos.push_back(info);
    s.paths.push_back(std::filesystem::absolute(path).string());
    s.runs.push_back(std::make_unique<LoadedRun>(std::move(run)));
  }
  s.queue = std::make_unique<serve::JobQueue>(s.runs.size(), cfg.queue);
  if (s.runs.empty())
    throw Error("no image runs in " + cfg.runs, "train one first: diffuse train --preset fmnist-tiny --out " + cfg.runs + "/fmnist");

  auto& http = s.http;
  const size_t threads = std::max<size_t>(cfg.http_threads, 8);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server on the
  // same port starts without an error and the kernel splits the connections between the two.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_payload_max_length(cfg.max_body_mb << 20);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  const std::string key = cfg.api_key;
  http.set_pre_routing_handler([key](const httplib::Request& req, httplib::Response& res) {
    if (key.empty()) return httplib::Server::HandlerResponse::Unhandled;
    for (const auto& a : serve::web_assets())  // the page's own files hold no data and do nothing
      if (req.method == "GET" && (req.path == a.path || (req.path == "/" && std::string(a.path) == "/index.html")))
        return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const bool ok = (auth.rfind("Bearer ", 0) == 0 && constant_time_equal(auth.substr(7), key)) ||
                    (req.has_param("api_key") && constant_time_equal(req.get_param_value("api_key"), key));
    if (ok) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    serve::send_error(res, 401, "missing or wrong API key", "Authorization",
                      "send the header 'Authorization: Bearer KEY' (or ?api_key=KEY) with the server's --api-key");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // our own JSON error
    if (res.status == 413)
      serve::send_error(res, 413, "the request body is too large", "", "the server's --max-body sets the limit");
    else if (res.status == 404)
      serve::send_error(res, 404, "no route " + req.method + " " + req.path, "", "see docs/serve.md for the API");
    else
      serve::send_error(res, res.status, "HTTP " + std::to_string(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    serve::send_error(res, 500, what);
  });
  for (const auto& a : serve::web_assets()) {
    auto handler = [a](const httplib::Request&, httplib::Response& res) {
      res.set_content(reinterpret_cast<const char*>(a.data), a.size, a.mime);
      res.set_header("Cache-Control", "no-cache");
    };
    http.Get(a.path, handler);
    if (std::string(a.path) == "/index.html") http.Get("/", handler);
  }
  s.add_native_routes();
  s.add_sdapi_routes();

  if (cfg.port == 0) {
    s.port = http.bind_to_any_port(cfg.host);
    if (s.port < 0) throw Error("cannot bind " + cfg.host, "check --host");
  } else {
    if (!http.bind_to_port(cfg.host, cfg.port))
      throw Error("cannot listen on " + cfg.host + ":" + std::to_string(cfg.port),
                  "the port may be in use (--port 0 picks a free one) or the address not this machine's");
    s.port = cfg.port;
  }
}

Server::~Server() {
  stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

int Server::port() const { return impl_->port; }
size_t Server::models() const { return impl_->runs.size(); }

void Server::run() {
  Impl& s = *impl_;
  if (s.stopping) return;  // stopped (by a signal) before it started
  s.listener = std::thread([&s] {
    if (!s.http.listen_after_bind() && !s.stopping) {
      std::fprintf(stderr, "diffuse serve: the server stopped listening unexpectedly\n");
      s.queue->stop();
    }
  });
  std::vector<const LoadedRun*> runs;
  for (const auto& r : s.runs) runs.push_back(r.get());
  s.queue->run(runs, s.device);  // until stop(): the jobs run on this thread, the one that loaded the models
  s.stopping = true;
  s.wake_all();
  s.http.stop();
  s.listener.join();
}

void Server::stop() {
  impl_->stopping = true;
  impl_->queue->stop();
  impl_->wake_all();
  impl_->http.stop();
}

void Server::Impl::wake_all() {
  for (auto& j : store.recent(1u << 20)) {
    std::lock_guard<std::mutex> lock(j->m);
    j->changed();
  }
}

std::shared_ptr<Job> Server::Impl::submit(serve::JobRequest req, bool sdapi) {
  auto job = store.create();
  if (req.seed < 0) {
    static std::mutex m;
    static std::mt19937_64 rng(std::random_device{}());
    std::lock_guard<std::mutex> lock(m);
    job->seed = rng() & uint64_t(serve::kMaxRandomSeed);  // exact as a JSON number
  } else {
    job->seed = uint64_t(req.seed);
  }
  job->sdapi = sdapi;
  job->steps = serve::planned_steps(req);
  job->req = std::move(req);
  if (!queue->submit(job)) {
    std::lock_guard<std::mutex> lock(job->m);
    job->state = JobState::Cancelled;
    job->error = "queue full";
    job->changed();
    return nullptr;
  }
  return job;
}

json Server::Impl::job_json(const Job& job, bool inline_images) const {
  const auto& r = job.req;
  const auto& info = infos[r.model];
  const int64_t position = queue->position(job);
  json params{{"sampler", to_string(r.sampler.kind)}, {"sigmas", to_string(r.sampler.sigmas)},
              {"steps", r.sampler.steps},           {"guidance", r.guidance},
              {"clip", r.sampler.clip_x0},          {"seed", job.seed},
              {"batch", r.batch},                   {"preview_every", r.preview_every}};
  if (r.sampler.eta) params["eta"] = *r.sampler.eta;
  params["class"] = r.cls < 0 ? json(nullptr)
                    : size_t(r.cls) < info.class_names.size() ? json(info.class_names[size_t(r.cls)])
                                                               : json(r.cls);
  if (r.mode != serve::Mode::Generate) params["method"] = to_string(r.method);
  if (r.mode == serve::Mode::Upscale) params["factor"] = r.factor;
  if (r.mode == serve::Mode::Edit) params["strength"] = r.strength;
  std::lock_guard<std::mutex> lock(job.m);
  json images = json::array();
  for (size_t k = 0; k < job.images.size(); ++k) {
    const int64_t c = job.images[k].cls;
    json im{{"seed", job.images[k].seed},
            {"class", c < 0 ? json(nullptr) : size_t(c) < info.class_names.size() ? json(info.class_names[size_t(c)]) : json(c)},
            {"url", "/diffuse/v1/jobs/" + job.id + "/images/" + std::to_string(k) + ".png"}};
    if (inline_images) im["png"] = "data:image/png;base64," + serve::base64_encode(job.images[k].png);
    images.push_back(im);
  }
  const double end = serve::is_final(job.state) ? job.finished_at : serve::now_seconds();
  json out{{"id", job.id},
           {"model", info.name},
           {"mode", to_string(r.mode)},
           {"state", to_string(job.state)},
           {"position", std::max<int64_t>(position, 0)},
           {"progress", {{"step", job.step}, {"steps", job.steps}, {"eta_seconds", job.eta_seconds()}}},
           {"params", params},
           {"images", images},
           {"error", job.state == JobState::Failed ? json{{"message", job.error}, {"hint", job.error_hint}} : json(nullptr)},
           {"seconds", job.started_at > 0 ? end - job.started_at : 0.0},
           {"queued_seconds", (job.started_at > 0 ? job.started_at : end) - job.queued_at}};
  return out;
}

}  // namespace diffuse
