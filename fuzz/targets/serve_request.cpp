// diffuse serve's request bodies: POST /diffuse/v1/jobs, /sdapi/v1/txt2img and img2img.
// The first byte picks the route; the rest is the body. A body that is not JSON is the
// server's 400 before any parser runs, so it ends the input here.
#include <nlohmann/json.hpp>

#include "../fuzz_target.hpp"
#include "serve/request.hpp"

DIFFUSE_FUZZ_TARGET(serve_request) {
  if (size < 1) return;
  static const std::vector<diffuse::serve::ModelInfo> models = {
      {"fmnist", 1, 28, 10, 1000, {"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}},
      {"emoji", 3, 32, 0, 250, {}}};
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded()) return;
  switch (data[0] % 3) {
    case 0: diffuse::serve::parse_job_request(body, models); break;
    case 1: diffuse::serve::parse_sdapi_request(body, models, false); break;
    default: diffuse::serve::parse_sdapi_request(body, models, true); break;
  }
}
