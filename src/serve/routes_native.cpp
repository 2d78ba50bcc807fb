// diffuse serve — the native API, /diffuse/v1 (docs/serve.md#native-api-diffusev1).
#include <torch/torch.h>

#include <chrono>

#include "serve/server_impl.hpp"

namespace diffuse {

using json = nlohmann::json;
using serve::Job;
using serve::JobState;

namespace {

std::string sse(const std::string& event, const json& data) { return "event: " + event + "\ndata: " + data.dump() + "\n\n"; }

}  // namespace

void Server::Impl::add_native_routes() {
  http.Get("/diffuse/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json models = json::array();
    for (size_t i = 0; i < infos.size(); ++i) {
      const auto& m = infos[i];
      const auto& run = *runs[i];
      models.push_back({{"name", m.name},
                        {"kind", "image"},
                        {"channels", m.channels},
                        {"image_size", m.image_size},
                        {"class_conditional", m.num_classes > 0},
                        {"classes", m.class_names},
                        {"num_classes", m.num_classes},
                        {"T", m.T},
                        {"prediction", to_string(run.config.prediction)},
                        {"data", run.config.data},
                        {"step", run.step},
                        {"queued", queue->queued(i)},
                        {"running", queue->busy(i)}});
    }
    serve::send_json(res, {{"models", models}});
  });

  http.Get("/diffuse/v1/samplers", [](const httplib::Request&, httplib::Response& res) {
    json samplers = json::array();
    for (const auto& n : sampler_kind_names())
      samplers.push_back({{"name", n}, {"stochastic", is_stochastic(parse_sampler_kind(n))}});
    json modes = json::object();
    const auto names = serve::mode_names();
    for (size_t i = 0; i < names.size(); ++i) {
      json methods = json::array();
      for (auto k : serve::mode_methods(serve::Mode(i))) methods.push_back(to_string(k));
      modes[names[i]] = methods;
    }
    serve::send_json(res, {{"samplers", samplers}, {"sigmas", sigma_schedule_names()}, {"modes", modes}});
  });

  http.Post("/diffuse/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!serve::parse_body(req, res, body)) return;
    serve::guarded(res, [&] {
      auto r = serve::parse_job_request(body, infos);
      const size_t model = r.model;
      auto job = submit(std::move(r), false);
      if (!job) {
        res.set_header("Retry-After", "5");
        serve::send_error(res, 429, "the queue of model '" + infos[model].name + "' is full",
                          "", "wait for a job to finish (the server's --queue sets the length)");
        return;
      }
      res.set_header("Location", "/diffuse/v1/jobs/" + job->id);
      serve::send_json(res, {{"id", job->id}, {"state", "queued"}, {"position", queue->position(*job)}}, 202);
    });
  });

  http.Get("/diffuse/v1/jobs", [this](const httplib::Request&, httplib::Response& res) {
    json jobs = json::array();
    for (const auto& j : store.recent(100)) jobs.push_back(job_json(*j, false));
    serve::send_json(res, {{"jobs", jobs}});
  });

  http.Get(R"(/diffuse/v1/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store.find(req.matches[1]);
    if (!job) return serve::send_error(res, 404, "no job '" + std::string(req.matches[1]) + "'", "id", "jobs are kept until 256 newer ones finished");
    serve::send_json(res, job_json(*job, true));
  });

  http.Get(R"(/diffuse/v1/jobs/([^/]+)/images/(\d{1,3})\.png)", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store.find(req.matches[1]);
    if (!job) return serve::send_error(res, 404, "no job '" + std::string(req.matches[1]) + "'", "id");
    const size_t k = std::stoul(req.matches[2]);
    std::lock_guard<std::mutex> lock(job->m);
    if (k >= job->images.size())
      return serve::send_error(res, 404, "job " + job->id + " has no image " + std::to_string(k),
                               "", job->state == JobState::Done ? "" : "the job is " + to_string(job->state));
    res.set_content(job->images[k].png, "image/png");
    res.set_header("Content-Disposition", "inline; filename=\"diffuse-" + job->id + "-" + std::to_string(job->images[k].seed) + ".png\"");
  });

  http.Post(R"(/diffuse/v1/jobs/([^/]+)/cancel)", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store.find(req.matches[1]);
    if (!job) return serve::send_error(res, 404, "no job '" + std::string(req.matches[1]) + "'", "id");
    queue->cancel(job);
    serve::send_json(res, job_json(*job, false));
  });

  // Server-Sent Events: progress (with a preview every preview_every steps), then done or error.
  http.Get(R"(/diffuse/v1/jobs/([^/]+)/events)", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store.find(req.matches[1]);
    if (!job) return serve::send_error(res, 404, "no job '" + std::string(req.matches[1]) + "'", "id");
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    struct Stream {
      uint64_t seen = ~uint64_t(0);
      int64_t preview_sent = -1;
      bool ended = false;
    };
    auto st = std::make_shared<Stream>();
    res.set_chunked_content_provider("text/event-stream", [this, job, st](size_t, httplib::DataSink& sink) {
      if (st->ended || stopping) {
        sink.done();
        return true;
      }
      json progress;
      JobState state;
      bool heartbeat = false;
      {
        std::unique_lock<std::mutex> lock(job->m);
        job->cv.wait_for(lock, std::chrono::seconds(10), [&] { return job->version != st->seen || stopping; });
        if (job->version == st->seen) {
          heartbeat = true;
        } else {
          st->seen = job->version;
          state = job->state;
          progress = {{"state", to_string(state)}, {"step", job->step}, {"steps", job->steps}, {"eta_seconds", job->eta_seconds()}};
          if (job->preview_step >= 0 && job->preview_step != st->preview_sent) {
            progress["preview"] = "data:image/png;base64," + serve::base64_encode(job->preview);
            progress["preview_step"] = job->preview_step;
            st->preview_sent = job->preview_step;
          }
        }
      }
      std::string out;
      if (heartbeat || stopping) {
        out = ": keep-alive\n\n";
      } else if (serve::is_final(state)) {
        out = sse(state == JobState::Done ? "done" : "error", job_json(*job, true));
        st->ended = true;
      } else {
        progress["position"] = std::max<int64_t>(queue->position(*job), 0);
        out = sse("progress", progress);
      }
      return sink.write(out.data(), out.size());
    });
  });
}

}  // namespace diffuse
