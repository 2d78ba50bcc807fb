// TrainConfig ⇄ JSON, and validation. Unknown keys are errors listing the valid ones.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/train.hpp"
#include "core/enum_names.hpp"

namespace diffuse {

using nlohmann::json;

namespace {

// One JSON object ⇄ struct mapping: a list of (key, read, write).
template <class S>
struct Field {
  std::string key;
  std::function<void(const json&, S&)> read;
  std::function<void(const S&, json&)> write;
};

// A JSON value as V. Integers must be JSON integers: nlohmann converts a float such as 1e125
// to an integer type by a cast, which is undefined for values out of range.
template <class V>
V json_value(const json& j, const std::string& key) {
  if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
    const bool ok = std::is_signed_v<V> ? (j.is_number_integer() && (j.is_number_unsigned()
                                              ? j.get<uint64_t>() <= uint64_t(std::numeric_limits<V>::max())
                                              : true))
                                        : j.is_number_unsigned();
    if (!ok) throw Error("bad value for '" + key + "': " + j.dump(), "expected a whole number");
    return j.get<V>();
  } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
    if (!j.is_array()) throw Error("bad value for '" + key + "': " + j.dump(), "expected a list of whole numbers");
    V out;
    for (const auto& e : j) out.push_back(json_value<int64_t>(e, key));
    return out;
  } else {
    return j.get<V>();
  }
}

template <class S, class V>
Field<S> field(const std::string& key, V S::*member) {
  return {key, [key, member](const json& j, S& s) { s.*member = json_value<V>(j, key); },
          [key, member](const S& s, json& j) { j[key] = s.*member; }};
}

template <class S>
void read_object(const json& j, S& s, const std::vector<Field<S>>& fields, const std::string& where) {
  if (!j.is_object()) throw Error(where + " must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    const Field<S>* f = nullptr;
    for (const auto& cand : fields)
      if (cand.key == key) f = &cand;
    if (!f) {
      std::vector<std::string> keys;
      for (const auto& cand : fields) keys.push_back(cand.key);
      throw Error("unknown key '" + key + "' in " + where, "valid keys: " + join(keys));
    }
    try {
      f->read(value, s);
    } catch (const json::exception& e) {
      throw Error("bad value for '" + key + "' in " + where + ": " + value.dump(),
                  "expected a value of the field's type");
    }
  }
}

template <class S>
json write_object(const S& s, const std::vector<Field<S>>& fields) {
  json j = json::object();
  for (const auto& f : fields) f.write(s, j);
  return j;
}

const std::vector<Field<ScheduleConfig>>& schedule_fields() {
  static const std::vector<Field<ScheduleConfig>> f = {
      {"kind", [](const json& j, ScheduleConfig& s) { s.kind = parse_schedule_kind(j.get<std::string>()); },
       [](const ScheduleConfig& s, json& j) { j["kind"] = to_string(s.kind); }},
      field("T", &ScheduleConfig::T),
      field("beta_start", &ScheduleConfig::beta_start),
      field("beta_end", &ScheduleConfig::beta_end),
      field("cosine_s", &ScheduleConfig::cosine_s),
      field("max_beta", &ScheduleConfig::max_beta),
      field("beta_max", &ScheduleConfig::beta_max),
      field("sigmoid_start", &ScheduleConfig::sigmoid_start),
      field("sigmoid_end", &ScheduleConfig::sigmoid_end),
      field("betas_file", &ScheduleConfig::betas_file)};
  return f;
}

const std::vector<Field<MlpOptions>>& model_fields() {
  static const std::vector<Field<MlpOptions>> f = {
      field("dim", &MlpOptions::dim), field("hidden", &MlpOptions::hidden),
      field("blocks", &MlpOptions::blocks), field("time_dim", &MlpOptions::time_dim),
      field("num_classes", &MlpOptions::num_classes)};
  return f;
}

const std::vector<Field<UNetOptions>>& unet_fields() {
  static const std::vector<Field<UNetOptions>> f = {
      field("in_channels", &UNetOptions::in_channels),
      field("base_channels", &UNetOptions::base_channels),
      field("channel_mult", &UNetOptions::channel_mult),
      field("blocks_per_level", &UNetOptions::blocks_per_level),
      field("attention_resolutions", &UNetOptions::attention_resolutions),
      field("head_channels", &UNetOptions::head_channels),
      field("dropout", &UNetOptions::dropout),
      field("num_classes", &UNetOptions::num_classes),
      field("groups", &UNetOptions::groups),
      field("image_size", &UNetOptions::image_size)};
  return f;
}

const std::vector<Field<VaeOptions>>& vae_fields() {
  static const std::vector<Field<VaeOptions>> f = {
      field("in_channels", &VaeOptions::in_channels),
      field("image_size", &VaeOptions::image_size),
      field("latent_dim", &VaeOptions::latent_dim),
      field("base_channels", &VaeOptions::base_channels),
      {"likelihood", [](const json& j, VaeOptions& o) { o.likelihood = parse_vae_likelihood(j.get<std::string>()); },
       [](const VaeOptions& o, json& j) { j["likelihood"] = to_string(o.likelihood); }}};
  return f;
}

const std::vector<Field<AutoencoderKLOptions>>& autoencoder_fields() {
  static const std::vector<Field<AutoencoderKLOptions>> f = {
      field("in_channels", &AutoencoderKLOptions::in_channels),
      field("out_channels", &AutoencoderKLOptions::out_channels),
      field("latent_channels", &AutoencoderKLOptions::latent_channels),
      field("block_out_channels", &AutoencoderKLOptions::block_out_channels),
      field("layers_per_block", &AutoencoderKLOptions::layers_per_block),
      field("norm_num_groups", &AutoencoderKLOptions::norm_num_groups),
      field("mid_block_add_attention", &AutoencoderKLOptions::mid_block_attention),
      field("scaling_factor", &AutoencoderKLOptions::scaling_factor),
      field("sample_size", &AutoencoderKLOptions::sample_size)};
  return f;
}

const EnumNames<ModelKind>& model_kind_enum() {
  static const EnumNames<ModelKind> n("model", {{ModelKind::Diffusion, "diffusion"},
                                                {ModelKind::Vae, "vae"},
                                                {ModelKind::AutoencoderKL, "autoencoder-kl"}});
  return n;
}

const EnumNames<Precision>& precision_names() {
  static const EnumNames<Precision> n("precision", {{Precision::Fp32, "fp32"}, {Precision::Bf16, "bf16"}});
  return n;
}

const EnumNames<MemoryLayout>& memory_layout_names() {
  static const EnumNames<MemoryLayout> n("layout", {{MemoryLayout::Auto, "auto"},
                                                    {MemoryLayout::Nchw, "nchw"},
                                                    {MemoryLayout::ChannelsLast, "channels-last"}});
  return n;
}

const std::vector<Field<LossConfig>>& loss_fields() {
  static const std::vector<Field<LossConfig>> f = {
      {"weighting", [](const json& j, LossConfig& l) { l.weighting = parse_loss_weighting(j.get<std::string>()); },
       [](const LossConfig& l, json& j) { j["weighting"] = to_string(l.weighting); }},
      field("min_snr_gamma", &LossConfig::min_snr_gamma)};
  return f;
}

const std::vector<Field<DistillInfo>>& distill_fields() {
  static const std::vector<Field<DistillInfo>> f = {
      field("teacher", &DistillInfo::teacher),
      {"teacher_prediction",
       [](const json& j, DistillInfo& d) { d.teacher_prediction = parse_prediction_type(j.get<std::string>()); },
       [](const DistillInfo& d, json& j) { j["teacher_prediction"] = to_string(d.teacher_prediction); }},
      field("teacher_steps", &DistillInfo::teacher_steps),
      field("target_steps", &DistillInfo::target_steps),
      field("steps", &DistillInfo::steps),
      field("guidance", &DistillInfo::guidance),
      field("clip_x0", &DistillInfo::clip_x0),
      field("convert_steps", &DistillInfo::convert_steps),
      field("round_steps", &DistillInfo::round_steps),
      field("rounds_done", &DistillInfo::rounds_done)};
  return f;
}

template <class S>
Field<TrainConfig> section(const std::string& key, S TrainConfig::*member,
                           const std::vector<Field<S>>& (*fields)()) {
  return {key, [=](const json& j, TrainConfig& c) { read_object(j, c.*member, fields(), "'" + key + "'"); },
          [=](const TrainConfig& c, json& j) { j[key] = write_object(c.*member, fields()); }};
}

const std::vector<Field<TrainConfig>>& train_fields() {
  static const std::vector<Field<TrainConfig>> f = {
      {"model_kind", [](const json& j, TrainConfig& c) { c.model_kind = parse_model_kind(j.get<std::string>()); },
       [](const TrainConfig& c, json& j) { j["model_kind"] = to_string(c.model_kind); }},
      field("data", &TrainConfig::data),
      field("data_dir", &TrainConfig::data_dir),
      field("image_size", &TrainConfig::image_size),
      field("background", &TrainConfig::background),
      section("schedule", &TrainConfig::schedule, schedule_fields),
      {"prediction", [](const json& j, TrainConfig& c) { c.prediction = parse_prediction_type(j.get<std::string>()); },
       [](const TrainConfig& c, json& j) { j["prediction"] = to_string(c.prediction); }},
      section("loss", &TrainConfig::loss, loss_fields),
      section("model", &TrainConfig::model, model_fields),
      section("unet", &TrainConfig::unet, unet_fields),
      section("vae", &TrainConfig::vae, vae_fields),
      section("autoencoder", &TrainConfig::autoencoder, autoencoder_fields),
      field("kl_weight", &TrainConfig::kl_weight),
      field("latent", &TrainConfig::latent),
      field("class_conditional", &TrainConfig::class_conditional),
      field("label_dropout", &TrainConfig::label_dropout),
      {"precision", [](const json& j, TrainConfig& c) { c.precision = parse_precision(j.get<std::string>()); },
       [](const TrainConfig& c, json& j) { j["precision"] = to_string(c.precision); }},
      {"layout", [](const json& j, TrainConfig& c) { c.layout = parse_memory_layout(j.get<std::string>()); },
       [](const TrainConfig& c, json& j) { j["layout"] = to_string(c.layout); }},
      // configs written before "layout": true/false, read as channels-last/nchw, not written
      {"channels_last",
       [](const json& j, TrainConfig& c) {
         c.layout = json_value<bool>(j, "channels_last") ? MemoryLayout::ChannelsLast : MemoryLayout::Nchw;
       },
       [](const TrainConfig&, json&) {}},
      field("normalize", &TrainConfig::normalize),
      field("steps", &TrainConfig::steps),
      field("batch", &TrainConfig::batch),
      field("lr", &TrainConfig::lr),
      field("weight_decay", &TrainConfig::weight_decay),
      field("adam_beta1", &TrainConfig::adam_beta1),
      field("adam_beta2", &TrainConfig::adam_beta2),
      field("warmup", &TrainConfig::warmup),
      field("min_lr_ratio", &TrainConfig::min_lr_ratio),
      field("grad_clip", &TrainConfig::grad_clip),
      field("ema_decay", &TrainConfig::ema_decay),
      field("seed", &TrainConfig::seed),
      field("threads", &TrainConfig::threads),
      field("log_every", &TrainConfig::log_every),
      field("checkpoint_every", &TrainConfig::checkpoint_every),
      field("sample_every", &TrainConfig::sample_every),
      field("sample_n", &TrainConfig::sample_n),
      field("picture_scale", &TrainConfig::picture_scale),
      field("device", &TrainConfig::device),
      // Only distilled runs have the section; a config without it is not distilled.
      {"distill", [](const json& j, TrainConfig& c) { read_object(j, c.distill, distill_fields(), "'distill'"); },
       [](const TrainConfig& c, json& j) {
         if (c.distill.active()) j["distill"] = write_object(c.distill, distill_fields());
       }}};
  return f;
}

}  // namespace

std::string to_string(Precision p) { return precision_names().name(p); }
std::string to_string(MemoryLayout l) { return memory_layout_names().name(l); }
MemoryLayout parse_memory_layout(const std::string& name) { return memory_layout_names().parse(name); }
std::string to_string(ModelKind k) { return model_kind_enum().name(k); }
ModelKind parse_model_kind(const std::string& name) { return model_kind_enum().parse(name); }
std::vector<std::string> model_kind_names() { return model_kind_enum().names(); }
Precision parse_precision(const std::string& name) { return precision_names().parse(name); }

std::string train_config_to_json(const TrainConfig& c) {
  return write_object(c, train_fields()).dump(2) + "\n";
}

TrainConfig train_config_from_json(const std::string& text, const TrainConfig& base,
                                   const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e99999
    throw Error(source + " is not valid JSON: " + e.what());
  }
  TrainConfig c = base;
  read_object(j, c, train_fields(), source);
  return c;
}

TrainConfig load_train_config_file(const std::string& path, const TrainConfig& base) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return train_config_from_json(ss.str(), base, "'" + path + "'");
}

void validate(const TrainConfig& c) {
  auto need = [](bool ok, const std::string& what, const std::string& hint) {
    if (!ok) throw Error(what, hint);
  };
  need(c.steps >= 1, "steps = " + std::to_string(c.steps) + " is invalid", "steps must be >= 1");
  need(c.batch >= 1, "batch = " + std::to_string(c.batch) + " is invalid", "batch must be >= 1");
  need(c.lr > 0 && std::isfinite(c.lr), "lr must be a positive number", "e.g. --lr 1e-3");
  need(c.weight_decay >= 0, "weight_decay must be >= 0", "e.g. 0 or 0.01");
  need(c.adam_beta1 >= 0 && c.adam_beta1 < 1 && c.adam_beta2 >= 0 && c.adam_beta2 < 1,
       "adam_beta1 and adam_beta2 must lie in [0, 1)", "the usual values are 0.9 and 0.999");
  need(c.warmup >= 0, "warmup must be >= 0", "number of linear warm-up steps");
  need(c.min_lr_ratio >= 0 && c.min_lr_ratio <= 1, "min_lr_ratio must lie in [0, 1]", "e.g. 0.05");
  need(c.grad_clip >= 0, "grad_clip must be >= 0", "0 turns clipping off");
  need(c.ema_decay >= 0 && c.ema_decay < 1, "ema_decay must lie in [0, 1)", "e.g. 0.999");
  need(c.threads >= 0, "threads must be >= 0", "0: OMP_NUM_THREADS if set, else all cores for images, 1 for vectors");
  need(c.sample_every >= 0 && c.sample_n >= 1, "sample_every must be >= 0 and sample_n >= 1",
       "sample_every 0 turns the periodic sample grids off");
  need(c.picture_scale >= 0 && c.picture_scale <= kPictureMaxScale,
       "picture_scale must lie in 0 … " + std::to_string(kPictureMaxScale),
       "0: auto (the grid's longer side at least 512 px), 1: native size");
  need(c.log_every >= 1 && c.checkpoint_every >= 1, "log_every and checkpoint_every must be >= 1", "");
  need(c.model.hidden >= 1 && c.model.blocks >= 0 && c.model.time_dim >= 2 && c.model.num_classes >= 0,
       "invalid model options", "hidden >= 1, blocks >= 0, time_dim >= 2, num_classes >= 0");
  // Upper bounds, so that a damaged or hostile config is an error and not an allocation of
  // terabytes (far above any network this CPU-first toolkit trains).
  need(c.model.hidden <= 65536 && c.model.blocks <= 1024 && c.model.time_dim <= 65536 && c.model.dim <= (1 << 24) &&
           c.model.num_classes <= 1000000,
       "model options too large", "hidden, time_dim <= 65536, blocks <= 1024, num_classes <= 1000000");
  {
    int64_t widest = 0;
    for (auto m : c.unet.channel_mult) widest = std::max(widest, m);
    need(c.unet.base_channels <= 16384 && widest <= 64 && c.unet.base_channels * widest <= 16384 &&
             c.unet.channel_mult.size() <= 16 && c.unet.blocks_per_level <= 64 && c.unet.in_channels <= 64 &&
             c.unet.image_size <= 16384 && c.unet.num_classes <= 1000000 && c.unet.groups <= 16384 &&
             c.unet.head_channels <= 16384 && c.unet.attention_resolutions.size() <= 64,
         "U-Net options too large",
         "base_channels · max(channel_mult) <= 16384, at most 16 levels, blocks_per_level <= 64, in_channels <= 64");
  }
  need(c.batch <= (1 << 20), "batch = " + std::to_string(c.batch) + " is too large", "batch must be <= 1048576");
  need(c.label_dropout >= 0 && c.label_dropout < 1, "label_dropout must lie in [0, 1)", "e.g. 0.1");
  need(c.image_size == 0 || c.image_size >= 4, "image_size must be >= 4 (or 0: the data's default)",
       "e.g. 28 or 32");
  make_schedule(c.schedule);  // throws on bad schedule parameters
  if (c.model_kind != ModelKind::Diffusion) {
    const std::string m = "model " + to_string(c.model_kind);
    need(is_image_spec(c.data), m + " needs image data, and '" + c.data + "' is vector data",
         "use fashion-mnist, emoji or folder:PATH, or --model diffusion");
    need(!c.class_conditional, m + " is unconditional: class_conditional cannot be set",
         "drop --class-conditional (the labels condition the diffusion model, not the autoencoder)");
    need(c.precision == Precision::Fp32, m + " trains in fp32", "drop --precision bf16");
    need(c.latent.empty(), m + " trains on images: latent cannot be set",
         "--latent AE_RUN trains a diffusion model on the latents of an autoencoder-kl run");
  }
  need(c.kl_weight >= 0 && std::isfinite(c.kl_weight), "kl_weight must be a finite number >= 0", "e.g. 1e-6");
  if (c.model_kind == ModelKind::AutoencoderKL) validate(c.autoencoder);
  if (c.model_kind == ModelKind::Vae) {
    need(c.vae.latent_dim >= 1 && c.vae.latent_dim <= 4096, "vae.latent_dim must be in 1 … 4096", "e.g. 16 or 32");
    need(c.vae.base_channels >= 1 && c.vae.base_channels <= 1024, "vae.base_channels must be in 1 … 1024", "e.g. 32");
  }
  if (c.distill.active()) {
    const DistillInfo& d = c.distill;
    need(c.model_kind == ModelKind::Diffusion && c.prediction == PredictionType::V,
         "a distilled run ('distill' section) must be a diffusion model with prediction v",
         "the 'distill' section is written by diffuse distill; do not add it by hand");
    need(d.target_steps >= 1 && d.teacher_steps > d.target_steps && d.steps >= d.target_steps &&
             d.steps <= d.teacher_steps,
         "distill: the steps must satisfy 1 <= target_steps <= steps <= teacher_steps and target_steps < teacher_steps",
         "the 'distill' section is written by diffuse distill; do not edit it by hand");
    need(d.round_steps >= 1 && d.convert_steps >= 0 && d.rounds_done >= 0,
         "distill: round_steps must be >= 1, convert_steps and rounds_done >= 0", "");
    need(d.guidance >= 0 && std::isfinite(d.guidance) && d.clip_x0 >= 0 && std::isfinite(d.clip_x0),
         "distill: guidance and clip_x0 must be finite numbers >= 0", "");
  }
  resolve_device(c.device);
}

torch::Device resolve_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::kCPU;
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("device '" + name + "' requested but CUDA is not available",
                  "this LibTorch build or machine has no GPU; use --device cpu");
    try {
      return torch::Device(name);
    } catch (const c10::Error&) {
    }
  }
  throw Error("unknown device '" + name + "'", "valid devices: auto, cpu, cuda, cuda:N");
}

DataOptions data_options(const TrainConfig& c) {
  DataOptions o;
  o.data_dir = c.data_dir;
  o.image_size = c.image_size;
  o.background = c.background;
  return o;
}

}  // namespace diffuse
