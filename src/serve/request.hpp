// diffuse serve — a job request: the JSON bodies of POST /diffuse/v1/jobs and of A1111's
// /sdapi/v1/txt2img and img2img, checked against the model they name and turned into one
// typed JobRequest. Nothing here touches HTTP or a model's weights, so the fuzzer can
// drive it (fuzz/targets/serve_request.cpp). Field semantics: docs/serve.md.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/sampler.hpp"

namespace diffuse::serve {

enum class Mode { Generate, Inpaint, Upscale, Colorize, Edit };
std::string to_string(Mode m);
std::vector<std::string> mode_names();
// The restoration methods a mode takes (generate: none), the default first.
std::vector<RestoreMethod> mode_methods(Mode m);

// What a request is checked against: one loaded image run.
struct ModelInfo {
  std::string name;  // the run folder's name
  int64_t channels = 1, image_size = 28, num_classes = 0, T = 1000;
  std::vector<std::string> class_names;  // may be empty for a conditional run (then numbers only)
};

// A bad request: HTTP 400 with the offending field named.
class RequestError : public Error {
 public:
  RequestError(std::string field, const std::string& what, std::string hint = {})
      : Error(what, std::move(hint)), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

inline constexpr int64_t kMaxBatch = 16;        // images per job
inline constexpr int64_t kMaxRandomSeed = (int64_t(1) << 53) - 1;  // seeds stay exact in JSON numbers

struct JobRequest {
  size_t model = 0;  // index into the server's models
  Mode mode = Mode::Generate;
  int64_t cls = -1;  // class, or −1: classes in turn (generate) / unconditional (restorations)
  SamplerConfig sampler;
  double guidance = 1.0;
  int64_t seed = -1;  // first image's seed; −1: the server picks one
  int64_t batch = 1;
  // Restorations: the input image (1, C', H', W') in [−1, 1], already checked against the mode:
  // the model's size (inpaint, edit), size / factor (upscale), gray or RGB (colorize).
  torch::Tensor image;
  torch::Tensor known;  // inpaint: (H, W) 1 = keep, 0 = fill
  RestoreMethod method = RestoreMethod::Ddnm;
  int64_t factor = 2;         // upscale
  double strength = 0.5;      // edit
  // As the CLI's restoration flags (RestoreConfig, Degradation::sigma_y).
  int64_t jump_length = RestoreConfig{}.jump_length, resample = RestoreConfig{}.resample;  // repaint
  double dps_scale = RestoreConfig{}.dps_scale;  // dps
  double sigma_y = 0;                             // ddnm, dps: measurement noise (DDNM+)
  int64_t preview_every = 0;  // steps between previews (0: none)
  // A1111: the request's fields as given (echoed back as "parameters") and its prompt.
  std::string prompt;
};

// The steps a job will report before its first step tells (custom timesteps: their count;
// RePaint's jumps and SDEdit's partial start correct it then).
inline int64_t planned_steps(const JobRequest& r) {
  return r.sampler.timesteps.empty() ? r.sampler.steps : int64_t(r.sampler.timesteps.size());
}

// The restoration's config and degradation of a request (mode ≠ generate); `known` is the
// inpainting mask (its shape only matters for validation).
RestoreConfig restore_config(const JobRequest& r);
Degradation degradation(const JobRequest& r, const torch::Tensor& known);

// POST /diffuse/v1/jobs. Throws RequestError naming the field.
JobRequest parse_job_request(const nlohmann::json& body, const std::vector<ModelInfo>& models);
// POST /sdapi/v1/txt2img and /sdapi/v1/img2img (img2img = true).
JobRequest parse_sdapi_request(const nlohmann::json& body, const std::vector<ModelInfo>& models, bool img2img);

// A1111's sampler names ("Euler a", "DPM++ 2M", …) and ours, with the σ schedule a name
// implies ("DPM++ 2M Karras"); {name as A1111 lists it, our sampler}.
struct SdapiSampler {
  std::string name;
  std::vector<std::string> aliases;
  SamplerKind kind;
};
const std::vector<SdapiSampler>& sdapi_samplers();

// An image sent as a PNG data URI ("data:image/png;base64,…") or bare base64 → (C, H, W)
// uint8; at most max_side pixels per side (checked from the PNG header). field names errors.
torch::Tensor decode_image_field(const std::string& value, const std::string& field, int64_t max_side);

std::string base64_encode(const std::string& bytes);
// Throws RequestError(field) on characters outside the alphabet or bad padding.
std::string base64_decode(const std::string& text, const std::string& field);
// "data:image/png;base64," + base64 of the PNG of a (C, H, W) uint8 image.
std::string png_data_uri(const torch::Tensor& image_u8);

}  // namespace diffuse::serve
