// diffuse serve — parsing and checking job requests (see request.hpp, docs/serve.md).
#include "serve/request.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "diffuse/image_io.hpp"

namespace diffuse::serve {

using json = nlohmann::json;

std::string to_string(Mode m) {
  switch (m) {
    case Mode::Generate: return "generate";
    case Mode::Inpaint: return "inpaint";
    case Mode::Upscale: return "upscale";
    case Mode::Colorize: return "colorize";
    case Mode::Edit: return "edit";
  }
  return "?";
}

std::vector<std::string> mode_names() { return {"generate", "inpaint", "upscale", "colorize", "edit"}; }

std::vector<RestoreMethod> mode_methods(Mode m) {
  switch (m) {
    case Mode::Generate: return {};
    case Mode::Inpaint: return {RestoreMethod::Repaint, RestoreMethod::Ddnm, RestoreMethod::Dps};
    case Mode::Upscale:
    case Mode::Colorize: return {RestoreMethod::Ddnm, RestoreMethod::Dps};
    case Mode::Edit: return {RestoreMethod::Sdedit};
  }
  return {};
}

namespace {

Mode parse_mode(const std::string& s) {
  const auto names = mode_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return Mode(i);
  throw RequestError("mode", "unknown mode '" + s + "'", "valid modes: " + join(names));
}

// Typed field access: a missing field gives the default; a wrong type is a RequestError.
struct Fields {
  const json& body;
  std::set<std::string> used;

  const json* get(const std::string& key) {
    used.insert(key);
    auto it = body.find(key);
    return it == body.end() || it->is_null() ? nullptr : &*it;
  }
  std::string str(const std::string& key, const std::string& dflt) {
    const json* v = get(key);
    if (!v) return dflt;
    if (!v->is_string()) throw RequestError(key, "'" + key + "' must be a string");
    return v->get<std::string>();
  }
  int64_t integer(const std::string& key, int64_t dflt, int64_t lo, int64_t hi) {
    const json* v = get(key);
    if (!v) return dflt;
    int64_t x = 0;
    if (v->is_number_integer()) {
      if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        throw RequestError(key, "'" + key + "' is out of range", range(lo, hi));
      x = v->get<int64_t>();
    } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
               std::fabs(v->get<double>()) < 9.0e15) {
      x = int64_t(v->get<double>());  // 20.0 from a client that writes every number as a float
    } else {
      throw RequestError(key, "'" + key + "' must be an integer", range(lo, hi));
    }
    if (x < lo || x > hi) throw RequestError(key, "'" + key + "' = " + std::to_string(x) + " is out of range", range(lo, hi));
    return x;
  }
  double number(const std::string& key, double dflt, double lo, double hi) {
    const json* v = get(key);
    if (!v) return dflt;
    if (!v->is_number()) throw RequestError(key, "'" + key + "' must be a number");
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
      throw RequestError(key, "'" + key + "' = " + v->dump() + " is out of range",
                         "valid: " + fmt(lo) + " … " + fmt(hi));
    return x;
  }
  // Every field of the body must have been read: a misspelt option is an error, not ignored.
  void no_unknown(const std::set<std::string>& ignored = {}) {
    for (auto it = body.begin(); it != body.end(); ++it)
      if (!used.count(it.key()) && !ignored.count(it.key())) {
        std::vector<std::string> known(used.begin(), used.end());
        throw RequestError(it.key(), "unknown field '" + it.key() + "'", "valid fields: " + join(known));
      }
  }
  static std::string range(int64_t lo, int64_t hi) { return "valid: " + std::to_string(lo) + " … " + std::to_string(hi); }
  static std::string fmt(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  }
};

size_t find_model(const std::string& name, const std::vector<ModelInfo>& models, const std::string& field) {
  if (models.empty()) throw RequestError(field, "the server has no models", "start it with --runs holding trained image runs");
  if (name.empty()) return 0;
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i].name == name) return i;
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  throw RequestError(field, "unknown model '" + name + "'", "models: " + join(names));
}

int64_t parse_class_value(const json& v, const ModelInfo& m, const std::string& field) {
  const std::string valid = "classes: 0 … " + std::to_string(m.num_classes - 1) +
                            (m.class_names.empty() ? "" : " or " + join(m.class_names));
  if (m.num_classes == 0) throw RequestError(field, "model '" + m.name + "' is not class-conditional", "leave '" + field + "' out");
  if (v.is_number_integer()) {
    const bool negative = !v.is_number_unsigned() && v.get<int64_t>() < 0;
    const uint64_t k = v.is_number_unsigned() ? v.get<uint64_t>() : uint64_t(v.get<int64_t>());
    if (!negative && k < uint64_t(m.num_classes)) return int64_t(k);
    throw RequestError(field, "class " + v.dump() + " does not exist", valid);
  }
  if (!v.is_string()) throw RequestError(field, "'" + field + "' must be a class name or number", valid);
  const std::string s = v.get<std::string>();
  for (size_t i = 0; i < m.class_names.size(); ++i)
    if (m.class_names[i] == s) return int64_t(i);
  if (!s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos) {
    const int64_t k = std::stoll(s);
    if (k < m.num_classes) return k;
  }
  throw RequestError(field, "unknown class '" + s + "'", valid);
}

// The restoration inputs: image (and mask) checked against the mode and the model.
void parse_restoration_inputs(JobRequest& r, const ModelInfo& m, const std::string& image_b64,
                              const std::string& mask_value, const std::string& image_field,
                              const std::string& mask_field) {
  const int64_t R = m.image_size, C = m.channels;
  if (image_b64.empty()) throw RequestError(image_field, "mode '" + to_string(r.mode) + "' needs an image");
  auto img = decode_image_field(image_b64, image_field, std::max<int64_t>(R, 64));
  const int64_t want = r.mode == Mode::Upscale ? R / r.factor : R;
  if (img.size(1) != want || img.size(2) != want)
    throw RequestError(image_field,
                       "the image is " + std::to_string(img.size(2)) + "×" + std::to_string(img.size(1)) + ", expected " +
                           std::to_string(want) + "×" + std::to_string(want),
                       r.mode == Mode::Upscale ? "upscale takes the low-resolution image: the model's size / factor"
                                               : "model '" + m.name + "' makes " + std::to_string(R) + "×" +
                                                     std::to_string(R) + " images");
  if (r.mode == Mode::Colorize) {
    if (C != 3) throw RequestError("mode", "colorize needs a model of RGB images; '" + m.name + "' makes gray images");
    img = img.size(0) == 3 ? img.to(torch::kFloat32).mul(torch::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1})).sum(0, true).round().to(torch::kUInt8)
                           : img;  // the gray measurement (ITU-R BT.601 luma, as Degradation::gray)
  } else if (img.size(0) != C) {
    if (C == 3 && img.size(0) == 1) img = img.expand({3, img.size(1), img.size(2)}).contiguous();
    else img = img.to(torch::kFloat32).mean(0, true).round().to(torch::kUInt8);  // RGB into a gray model
  }
  r.image = img.to(torch::kFloat32).div(127.5).sub(1.0).unsqueeze(0);
  if (r.mode != Mode::Inpaint) return;  // a mask for another mode was refused with the fields
  if (mask_value.empty()) throw RequestError(mask_field, "inpaint needs a mask", "a PNG (white = fill) or box:x,y,w,h, half:left, random:p");
  const bool spec = mask_value.rfind("box:", 0) == 0 || mask_value.rfind("half:", 0) == 0 || mask_value.rfind("random:", 0) == 0;
  if (spec) {  // never a file name: parse_mask would read a file of the server's
    try {
      r.known = parse_mask(mask_value, R, R, uint64_t(std::max<int64_t>(r.seed, 0)));
    } catch (const Error& e) {
      throw RequestError(mask_field, e.what(), e.hint());
    }
  } else {
    auto mk = decode_image_field(mask_value, mask_field, std::max<int64_t>(R, 64));
    if (mk.size(1) != R || mk.size(2) != R)
      throw RequestError(mask_field, "the mask is " + std::to_string(mk.size(2)) + "×" + std::to_string(mk.size(1)) +
                                         ", expected " + std::to_string(R) + "×" + std::to_string(R));
    r.known = mk.to(torch::kFloat32).mean(0).lt(128).to(torch::kFloat32);  // white = fill, as --mask FILE.png
  }
  if (r.known.min().item<float>() > 0.5f)
    throw RequestError(mask_field, "the mask marks no pixel to fill", "white pixels (or the box) are filled");
}

void check_sampler(JobRequest& r, const std::string& field) {
  try {
    validate(r.sampler);
    if (r.mode != Mode::Generate) validate(restore_config(r), degradation(r, torch::ones({2, 2})));
  } catch (const RequestError&) {
    throw;
  } catch (const Error& e) {
    throw RequestError(field, e.what(), e.hint());
  }
}

}  // namespace

RestoreConfig restore_config(const JobRequest& r) {
  RestoreConfig rc;
  rc.method = r.method;
  rc.sampler = r.sampler;
  rc.strength = r.strength;
  rc.jump_length = r.jump_length;
  rc.resample = r.resample;
  rc.dps_scale = r.dps_scale;
  return rc;
}

Degradation degradation(const JobRequest& r, const torch::Tensor& known) {
  Degradation A = r.mode == Mode::Inpaint    ? Degradation::mask(known)
                  : r.mode == Mode::Upscale  ? Degradation::downsample(r.factor)
                  : r.mode == Mode::Colorize ? Degradation::gray()
                                             : Degradation::identity();
  A.sigma_y = r.sigma_y;
  return A;
}

JobRequest parse_job_request(const json& body, const std::vector<ModelInfo>& models) {
  if (!body.is_object()) throw RequestError("", "the body must be a JSON object");
  Fields f{body, {}};
  JobRequest r;
  r.model = find_model(f.str("model", ""), models, "model");
  const ModelInfo& m = models[r.model];
  r.mode = parse_mode(f.str("mode", "generate"));
  if (const json* c = f.get("class")) r.cls = parse_class_value(*c, m, "class");
  const auto methods = mode_methods(r.mode);
  if (r.mode != Mode::Generate) {
    const std::string method = f.str("method", to_string(methods.front()));
    try {
      r.method = parse_restore_method(method);
    } catch (const Error& e) {
      throw RequestError("method", e.what(), e.hint());
    }
    bool ok = false;
    std::vector<std::string> names;
    for (auto k : methods) ok |= k == r.method, names.push_back(to_string(k));
    if (!ok) throw RequestError("method", "mode '" + to_string(r.mode) + "' does not take method '" + method + "'", "valid: " + join(names));
  } else if (f.get("method")) {
    throw RequestError("method", "generate takes no method", "method is for inpaint, upscale, colorize, edit");
  }
  const bool ddpm_only = r.mode != Mode::Generate && (r.method == RestoreMethod::Repaint || r.method == RestoreMethod::Dps);
  const std::string sampler = f.str("sampler", ddpm_only ? "ddpm" : "dpm++2m");
  try {
    r.sampler.kind = parse_sampler_kind(sampler);
  } catch (const Error& e) {
    throw RequestError("sampler", e.what(), e.hint());
  }
  try {
    r.sampler.sigmas = parse_sigma_schedule(f.str("sigmas", "timesteps"));
  } catch (const Error& e) {
    throw RequestError("sigmas", e.what(), e.hint());
  }
  r.sampler.steps = f.integer("steps", std::min<int64_t>(m.T, r.mode == Mode::Generate ? 20 : 100), 1, m.T);
  r.sampler.clip_x0 = f.number("clip", 1.0, 0.0, 1e6);
  // The sampler's own options, as the CLI's flags: given to a sampler that does not take one,
  // validate() says which samplers do (a 400 naming "sampler").
  if (f.get("spacing")) {
    try {
      r.sampler.spacing = parse_timestep_spacing(f.str("spacing", ""));
    } catch (const Error& e) {
      throw RequestError("spacing", e.what(), e.hint());
    }
  }
  r.sampler.steps_offset = f.integer("steps_offset", 0, 0, m.T);
  r.sampler.rho = f.number("rho", 7.0, 1e-3, 1e3);
  if (const json* ts = f.get("timesteps")) {
    if (!ts->is_array() || ts->empty() || ts->size() > size_t(m.T))
      throw RequestError("timesteps", "'timesteps' must be a list of 1 … T descending integers");
    for (const auto& t : *ts) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= m.T)
        throw RequestError("timesteps", "every timestep must be an integer in 0 … " + std::to_string(m.T - 1));
      r.sampler.timesteps.push_back(t.get<int64_t>());
    }
    if (body.contains("steps")) throw RequestError("steps", "custom timesteps replace steps", "leave 'steps' out");
    r.sampler.steps = 0;
  }
  if (f.get("variance")) {
    try {
      r.sampler.variance = parse_ddpm_variance(f.str("variance", ""));
    } catch (const Error& e) {
      throw RequestError("variance", e.what(), e.hint());
    }
  }
  if (f.get("eta")) r.sampler.eta = f.number("eta", 0, 0, 100);
  if (f.get("churn")) r.sampler.churn = f.number("churn", 0, 0, 1e3);
  if (f.get("s_tmin")) r.sampler.s_tmin = f.number("s_tmin", 0, 0, 1e6);
  if (f.get("s_tmax")) r.sampler.s_tmax = f.number("s_tmax", 0, 0, 1e9);
  if (f.get("s_noise")) r.sampler.s_noise = f.number("s_noise", 1, 0, 100);
  if (f.get("order")) r.sampler.order = int(f.integer("order", 2, 1, 3));
  if (const json* fa = f.get("final_alpha_one")) {
    if (!fa->is_boolean()) throw RequestError("final_alpha_one", "'final_alpha_one' must be true or false");
    r.sampler.final_alpha_one = fa->get<bool>();
  }
  r.guidance = f.number("guidance", 1.0, -100, 100);
  r.seed = f.integer("seed", -1, -1, kMaxRandomSeed);
  r.batch = f.integer("batch", 1, 1, kMaxBatch);
  // Options of one mode only: given for another, an error (not silently ignored).
  for (const auto& [key, mode] : {std::pair<const char*, Mode>{"factor", Mode::Upscale}, {"strength", Mode::Edit}})
    if (f.get(key) && r.mode != mode) throw RequestError(key, "'" + std::string(key) + "' is an option of mode " + to_string(mode));
  if (f.get("mask") && r.mode != Mode::Inpaint) throw RequestError("mask", "only inpaint takes a mask");
  r.factor = f.integer("factor", 2, 2, 4);
  if (r.factor == 3) throw RequestError("factor", "'factor' must be 2 or 4");
  if (r.mode == Mode::Upscale && m.image_size % r.factor != 0)
    throw RequestError("factor", "the model's " + std::to_string(m.image_size) + "-pixel images do not divide by " + std::to_string(r.factor));
  r.strength = f.number("strength", 0.5, 1e-6, 1.0);
  // Options of one restoration method only: an error for another (as the CLI's).
  for (const auto& [key, method] : {std::pair<const char*, RestoreMethod>{"jump_length", RestoreMethod::Repaint},
                                    {"resample", RestoreMethod::Repaint}, {"dps_scale", RestoreMethod::Dps}})
    if (f.get(key) && (r.mode == Mode::Generate || r.method != method))
      throw RequestError(key, "'" + std::string(key) + "' is an option of method " + to_string(method));
  r.jump_length = f.integer("jump_length", r.jump_length, 1, 1000);
  r.resample = f.integer("resample", r.resample, 1, 100);
  r.dps_scale = f.number("dps_scale", r.dps_scale, 0, 1e6);
  if (f.get("sigma_y") && (r.mode == Mode::Generate || r.mode == Mode::Edit || r.method == RestoreMethod::Repaint))
    throw RequestError("sigma_y", "'sigma_y' (measurement noise) is an option of ddnm and dps");
  r.sigma_y = f.number("sigma_y", 0, 0, 10);
  r.preview_every = f.integer("preview_every", -1, -1, 1000000);
  if (r.preview_every < 0) r.preview_every = std::max<int64_t>(1, planned_steps(r) / 10);  // default
  const std::string image = f.str("image", ""), mask = f.str("mask", "");  // a mask outside inpaint: refused above
  if (r.mode == Mode::Generate && !image.empty())
    throw RequestError("image", "generate takes no image", "use mode inpaint, upscale, colorize or edit");
  f.no_unknown();
  check_sampler(r, "sampler");
  if (r.mode != Mode::Generate) parse_restoration_inputs(r, m, image, mask, "image", "mask");
  return r;
}

const std::vector<SdapiSampler>& sdapi_samplers() {
  static const std::vector<SdapiSampler> s = {
      {"Euler a", {"k_euler_a", "k_euler_ancestral", "euler-ancestral"}, SamplerKind::EulerAncestral},
      {"Euler", {"k_euler", "euler"}, SamplerKind::Euler},
      {"Heun", {"k_heun", "heun"}, SamplerKind::Heun},
      {"DPM++ 2M", {"k_dpmpp_2m", "dpm++2m"}, SamplerKind::DpmPp2m},
      {"DPM++ 2M SDE", {"k_dpmpp_2m_sde", "dpm++2m-sde"}, SamplerKind::DpmPp2mSde},
      {"DDIM", {"ddim"}, SamplerKind::Ddim},
      {"UniPC", {"unipc"}, SamplerKind::UniPc},
      {"DDPM", {"ddpm"}, SamplerKind::Ddpm},
  };
  return s;
}

JobRequest parse_sdapi_request(const json& body, const std::vector<ModelInfo>& models, bool img2img) {
  if (!body.is_object()) throw RequestError("", "the body must be a JSON object");
  Fields f{body, {}};
  JobRequest r;
  std::string model;
  if (const json* o = f.get("override_settings")) {
    if (!o->is_object()) throw RequestError("override_settings", "'override_settings' must be an object");
    auto it = o->find("sd_model_checkpoint");
    if (it != o->end() && !it->is_null()) {
      if (!it->is_string()) throw RequestError("override_settings.sd_model_checkpoint", "must be a string");
      model = it->get<std::string>();
      // A1111 titles look like "name.safetensors [hash]": take the name.
      if (auto sp = model.find(" ["); sp != std::string::npos) model = model.substr(0, sp);
    }
  }
  r.model = find_model(model, models, "override_settings.sd_model_checkpoint");
  const ModelInfo& m = models[r.model];
  r.prompt = f.str("prompt", "");
  if (!r.prompt.empty()) r.cls = parse_class_value(json(r.prompt), m, "prompt");
  std::string name = f.str("sampler_name", f.str("sampler_index", "DPM++ 2M"));
  std::string sched = f.str("scheduler", "Automatic");
  for (const char* suffix : {" Karras", " Exponential"})  // "DPM++ 2M Karras": the older combined names
    if (name.size() > std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
      sched = std::string(suffix + 1);
      name = name.substr(0, name.size() - std::strlen(suffix));
    }
  bool found = false;
  std::vector<std::string> valid;
  for (const auto& s : sdapi_samplers()) {
    valid.push_back(s.name);
    bool hit = s.name == name;
    for (const auto& a : s.aliases) hit |= a == name;
    if (hit) r.sampler.kind = s.kind, found = true;
  }
  if (!found) throw RequestError("sampler_name", "unknown sampler '" + name + "'", "valid: " + join(valid));
  if (sched == "Automatic" || sched == "automatic" || sched.empty()) r.sampler.sigmas = SigmaSchedule::Timesteps;
  else if (sched == "Karras" || sched == "karras") r.sampler.sigmas = SigmaSchedule::Karras;
  else if (sched == "Exponential" || sched == "exponential") r.sampler.sigmas = SigmaSchedule::Exponential;
  else throw RequestError("scheduler", "unknown scheduler '" + sched + "'", "valid: Automatic, Karras, Exponential");
  r.sampler.steps = f.integer("steps", std::min<int64_t>(m.T, 20), 1, m.T);
  r.sampler.clip_x0 = 1.0;
  r.guidance = f.number("cfg_scale", m.num_classes > 0 ? 2.0 : 1.0, -100, 100);
  if (m.num_classes == 0) r.guidance = 1.0;  // A1111 clients always send one (7 by default); nothing to guide here
  r.seed = f.integer("seed", -1, -1, kMaxRandomSeed);
  const int64_t batch = f.integer("batch_size", 1, 1, kMaxBatch), iters = f.integer("n_iter", 1, 1, kMaxBatch);
  if (batch * iters > kMaxBatch) throw RequestError("n_iter", "batch_size × n_iter must be at most " + std::to_string(kMaxBatch));
  r.batch = batch * iters;
  for (const char* k : {"width", "height"}) {
    const int64_t v = f.integer(k, 0, 0, 1 << 20);
    if (v != 0 && v != m.image_size)
      throw RequestError(k, std::string(k) + " = " + std::to_string(v) + ": model '" + m.name + "' makes " +
                                std::to_string(m.image_size) + "×" + std::to_string(m.image_size) + " images",
                         "leave width and height out (or 0), or set them to " + std::to_string(m.image_size));
  }
  r.preview_every = std::max<int64_t>(1, r.sampler.steps / 10);
  r.mode = Mode::Generate;
  std::string image, mask;
  if (img2img) {
    if (const json* imgs = f.get("init_images")) {
      if (!imgs->is_array() || imgs->empty() || !(*imgs)[0].is_string())
        throw RequestError("init_images", "'init_images' must be a list holding one base64 PNG");
      if (imgs->size() > 1) throw RequestError("init_images", "one init image per request");
      image = (*imgs)[0].get<std::string>();
    }
    if (image.empty()) throw RequestError("init_images", "img2img needs init_images");
    mask = f.str("mask", "");
    r.mode = mask.empty() ? Mode::Edit : Mode::Inpaint;
    r.method = mask.empty() ? RestoreMethod::Sdedit : RestoreMethod::Repaint;
    r.strength = f.number("denoising_strength", 0.75, 1e-6, 1.0);
    if (r.method == RestoreMethod::Repaint) r.sampler.kind = SamplerKind::Ddpm;  // RePaint walks DDPM steps
    r.sampler.sigmas = SigmaSchedule::Timesteps;
  }
  // Fields A1111 clients send that have no meaning here (no text encoder, no upscaler, fixed size).
  static const std::set<std::string> ignored = {
      "negative_prompt", "styles", "subseed", "subseed_strength", "seed_resize_from_h", "seed_resize_from_w",
      "restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid", "eta", "s_min_uncond", "s_churn",
      "s_tmax", "s_tmin", "s_noise", "override_settings_restore_afterwards", "script_args", "script_name",
      "send_images", "save_images", "alwayson_scripts", "enable_hr", "denoising_strength", "firstphase_width",
      "firstphase_height", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y",
      "refiner_checkpoint", "refiner_switch_at", "infotext", "comments", "disable_extra_networks", "firstpass_image",
      "force_task_id", "sampler_index", "resize_mode", "image_cfg_scale", "mask_blur", "mask_blur_x", "mask_blur_y",
      "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding", "inpainting_mask_invert",
      "initial_noise_multiplier", "latent_mask", "include_init_images", "hr_checkpoint_name", "hr_sampler_name",
      "hr_prompt", "hr_negative_prompt", "hr_scheduler", "hr_additional_modules", "mask_round", "user"};
  f.no_unknown(ignored);
  check_sampler(r, "sampler_name");
  if (img2img) parse_restoration_inputs(r, m, image, mask, "init_images", "mask");
  return r;
}

// --- base64 and images --------------------------------------------------------

std::string base64_encode(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string base64_decode(const std::string& text, const std::string& field) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == ' ') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const int v = value(c);
    if (v < 0 || pad > 0) throw RequestError(field, "'" + field + "' is not valid base64", "send a PNG as base64 or a data URI");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  if (pad > 2) throw RequestError(field, "'" + field + "' is not valid base64 (padding)");
  return out;
}

torch::Tensor decode_image_field(const std::string& value, const std::string& field, int64_t max_side) {
  std::string b64 = value;
  if (b64.rfind("data:", 0) == 0) {
    const auto comma = b64.find(',');
    const std::string head = b64.substr(0, comma == std::string::npos ? 0 : comma);
    if (comma == std::string::npos || head.find(";base64") == std::string::npos)
      throw RequestError(field, "'" + field + "' is a data URI without base64 data");
    if (head.rfind("data:image/png", 0) != 0)
      throw RequestError(field, "'" + field + "' is " + head.substr(5, head.find(';') - 5) + ", not a PNG", "send image/png");
    b64 = b64.substr(comma + 1);
  }
  const std::string bytes = base64_decode(b64, field);
  try {
    return decode_png(bytes, field, max_side);
  } catch (const Error& e) {
    throw RequestError(field, e.what(), e.hint());
  }
}

std::string png_data_uri(const torch::Tensor& image_u8) {
  return "data:image/png;base64," + base64_encode(encode_png(image_u8));
}

}  // namespace diffuse::serve
