// diffuse serve — AUTOMATIC1111's API subset, /sdapi/v1 (docs/serve.md#automatic1111-compatible-api-sdapiv1).
//
// txt2img and img2img are synchronous: the answer comes when the job is done. While it
// waits, the server writes a space (JSON ignores leading whitespace) every half second; a
// write that fails means the client has gone, and its job is cancelled.
#include <torch/torch.h>

#include <chrono>

#include "serve/server_impl.hpp"

namespace diffuse {

using json = nlohmann::json;
using serve::Job;
using serve::JobState;

namespace {

// What A1111 puts in "info" (a JSON string) for the job's images.
json sdapi_info(const Job& job, const serve::ModelInfo& m) {
  json seeds = json::array(), prompts = json::array();
  std::lock_guard<std::mutex> lock(job.m);
  for (const auto& im : job.images) seeds.push_back(im.seed), prompts.push_back(job.req.prompt);
  std::string sampler = to_string(job.req.sampler.kind);
  for (const auto& s : serve::sdapi_samplers())
    if (s.kind == job.req.sampler.kind) sampler = s.name;
  return {{"prompt", job.req.prompt},
          {"all_prompts", prompts},
          {"negative_prompt", ""},
          {"seed", job.seed},
          {"all_seeds", seeds},
          {"subseed", -1},
          {"all_subseeds", json::array()},
          {"sampler_name", sampler},
          {"scheduler", to_string(job.req.sampler.sigmas)},
          {"steps", job.req.sampler.steps},
          {"cfg_scale", job.req.guidance},
          {"width", m.image_size},
          {"height", m.image_size},
          {"batch_size", job.req.batch},
          {"sd_model_name", m.name},
          {"denoising_strength", job.req.mode == serve::Mode::Edit ? json(job.req.strength) : json(nullptr)},
          {"interrupted", job.state == JobState::Cancelled},
          {"infotexts", json::array()}};
}

}  // namespace

void Server::Impl::add_sdapi_routes() {
  auto generate = [this](bool img2img) {
    return [this, img2img](const httplib::Request& req, httplib::Response& res) {
      json body;
      if (!serve::parse_body(req, res, body)) return;
      if (body.is_object() && default_model.load() != 0) {  // the model chosen by POST /sdapi/v1/options
        auto& o = body["override_settings"];
        if (o.is_null()) o = json::object();
        if (o.is_object() && !o.contains("sd_model_checkpoint")) o["sd_model_checkpoint"] = infos[default_model.load()].name;
      }
      serve::guarded(res, [&] {
        auto r = serve::parse_sdapi_request(body, infos, img2img);
        const size_t model = r.model;
        auto job = submit(std::move(r), true);
        if (!job) {
          res.set_header("Retry-After", "5");
          return serve::send_error(res, 429, "the queue of model '" + infos[model].name + "' is full");
        }
        auto echo = std::make_shared<json>(body);
        if (img2img) echo->erase("init_images"), echo->erase("mask");  // A1111 echoes them; they are large
        res.set_chunked_content_provider(
            "application/json",
            [this, job, echo, model](size_t, httplib::DataSink& sink) {
              bool final_state;
              {
                std::unique_lock<std::mutex> lock(job->m);
                job->cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return serve::is_final(job->state) || stopping; });
                final_state = serve::is_final(job->state);
              }
              if (!final_state) {
                if (stopping || !sink.write(" ", 1)) {  // the client is gone: stop its job
                  queue->cancel(job);
                  return false;
                }
                return true;
              }
              json images = json::array();
              {
                std::lock_guard<std::mutex> lock(job->m);
                for (const auto& im : job->images) images.push_back(serve::base64_encode(im.png));
              }
              json out{{"images", images}, {"parameters", *echo}, {"info", sdapi_info(*job, infos[model]).dump()}};
              {
                std::lock_guard<std::mutex> lock(job->m);
                if (job->state == JobState::Failed) out["error"] = job->error, out["detail"] = job->error_hint;
              }
              const std::string text = out.dump();
              if (sink.write(text.data(), text.size())) sink.done();
              return true;
            },
            [this, job, model](bool success) {
              if (!success) queue->cancel(job);  // the response could not be sent
            });
      });
    };
  };
  http.Post("/sdapi/v1/txt2img", generate(false));
  http.Post("/sdapi/v1/img2img", generate(true));

  http.Get("/sdapi/v1/progress", [this](const httplib::Request& req, httplib::Response& res) {
    // The running job: an sdapi one if any, else any.
    std::shared_ptr<Job> current;
    size_t pending = 0;
    for (const auto& j : store.recent(1000)) {
      std::lock_guard<std::mutex> lock(j->m);
      if (!serve::is_final(j->state)) ++pending;
      if (j->state == JobState::Running && (!current || (j->sdapi && !current->sdapi))) current = j;
    }
    json state{{"skipped", false},      {"interrupted", false}, {"job", ""},         {"job_count", pending},
               {"job_timestamp", "0"}, {"job_no", 0},          {"sampling_step", 0}, {"sampling_steps", 0}};
    json out{{"progress", 0.0}, {"eta_relative", 0.0}, {"state", state}, {"current_image", nullptr}, {"textinfo", nullptr}};
    if (current) {
      std::lock_guard<std::mutex> lock(current->m);
      const double p = current->steps > 0 ? double(current->step) / double(current->steps) : 0.0;
      out["progress"] = p;
      out["eta_relative"] = current->eta_seconds();
      out["state"]["job"] = "job " + current->id;
      out["state"]["sampling_step"] = current->step;
      out["state"]["sampling_steps"] = current->steps;
      out["state"]["interrupted"] = current->cancel.load();
      out["textinfo"] = "step " + std::to_string(current->step) + " of " + std::to_string(current->steps);
      const bool skip = req.get_param_value("skip_current_image") == "true";
      if (!skip && current->preview_step >= 0) out["current_image"] = serve::base64_encode(current->preview);
    }
    serve::send_json(res, out);
  });

  http.Post("/sdapi/v1/interrupt", [this](const httplib::Request&, httplib::Response& res) {
    for (const auto& j : store.recent(1000)) {
      bool running;
      {
        std::lock_guard<std::mutex> lock(j->m);
        running = j->state == JobState::Running && j->sdapi;
      }
      if (running) queue->cancel(j);
    }
    serve::send_json(res, json::object());
  });

  http.Get("/sdapi/v1/samplers", [](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (const auto& s : serve::sdapi_samplers()) out.push_back({{"name", s.name}, {"aliases", s.aliases}, {"options", json::object()}});
    serve::send_json(res, out);
  });

  http.Get("/sdapi/v1/sd-models", [this](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (size_t i = 0; i < infos.size(); ++i)
      out.push_back({{"title", infos[i].name}, {"model_name", infos[i].name}, {"hash", nullptr}, {"sha256", nullptr},
                     {"filename", paths[i]}, {"config", nullptr}});
    serve::send_json(res, out);
  });

  http.Get("/sdapi/v1/options", [this](const httplib::Request&, httplib::Response& res) {
    serve::send_json(res, {{"sd_model_checkpoint", infos[default_model.load()].name}, {"samples_format", "png"}});
  });
  // Clients switch models by setting sd_model_checkpoint; other options are accepted and ignored.
  http.Post("/sdapi/v1/options", [this](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!serve::parse_body(req, res, body)) return;
    if (!body.is_object()) return serve::send_error(res, 400, "the body must be a JSON object");
    auto it = body.find("sd_model_checkpoint");
    if (it != body.end()) {
      if (!it->is_string()) return serve::send_error(res, 400, "must be a string", "sd_model_checkpoint");
      std::string name = it->get<std::string>();
      if (auto sp = name.find(" ["); sp != std::string::npos) name = name.substr(0, sp);
      size_t found = infos.size();
      std::vector<std::string> names;
      for (size_t i = 0; i < infos.size(); ++i) {
        names.push_back(infos[i].name);
        if (infos[i].name == name) found = i;
      }
      if (found == infos.size())
        return serve::send_error(res, 400, "unknown model '" + name + "'", "sd_model_checkpoint", "models: " + join(names));
      default_model = found;
    }
    serve::send_json(res, json::object());
  });
}

}  // namespace diffuse
