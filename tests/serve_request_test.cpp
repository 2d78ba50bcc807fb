// diffuse serve: request parsing (src/serve/request.cpp) — defaults, every error naming its
// field, A1111 names, base64 and PNG data URIs, and that a mask is never read from a path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "diffuse/image_io.hpp"
#include "serve/request.hpp"

using nlohmann::json;
using namespace diffuse;
using namespace diffuse::serve;

namespace {

std::vector<ModelInfo> serve_models() {
  ModelInfo gray{"fmnist", 1, 28, 10, 1000, {"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}};
  ModelInfo rgb{"emoji", 3, 32, 0, 250, {}};
  return {gray, rgb};
}

std::string serve_png_uri(int64_t c, int64_t h, int64_t w, int value = 100) {
  return png_data_uri(torch::full({c, h, w}, value, torch::kUInt8));
}

// The field a request's error names ("" when it parses).
std::string serve_error_field(const json& body, bool sdapi = false, bool img2img = false) {
  try {
    if (sdapi) parse_sdapi_request(body, serve_models(), img2img);
    else parse_job_request(body, serve_models());
  } catch (const RequestError& e) {
    return e.field();
  }
  return "";
}

}  // namespace

TEST(ServeRequest, DefaultsOfAGenerateJob) {
  auto r = parse_job_request(json::object(), serve_models());
  EXPECT_EQ(r.model, 0u);
  EXPECT_EQ(r.mode, Mode::Generate);
  EXPECT_EQ(r.sampler.kind, SamplerKind::DpmPp2m);
  EXPECT_EQ(r.sampler.steps, 20);
  EXPECT_EQ(r.sampler.clip_x0, 1.0);
  EXPECT_EQ(r.cls, -1);
  EXPECT_EQ(r.seed, -1);
  EXPECT_EQ(r.batch, 1);
  EXPECT_EQ(r.preview_every, 2);  // steps / 10
}

TEST(ServeRequest, FieldsAreRead) {
  auto r = parse_job_request(json{{"model", "emoji"}, {"sampler", "ddim"}, {"steps", 50}, {"eta", 0.5}, {"seed", 9},
                                  {"batch", 4}, {"sigmas", "karras"}, {"clip", 0}, {"preview_every", 0}},
                             serve_models());
  EXPECT_EQ(r.model, 1u);
  EXPECT_EQ(r.sampler.kind, SamplerKind::Ddim);
  EXPECT_EQ(r.sampler.sigmas, SigmaSchedule::Karras);
  EXPECT_EQ(r.sampler.steps, 50);
  ASSERT_TRUE(r.sampler.eta.has_value());
  EXPECT_EQ(*r.sampler.eta, 0.5);
  EXPECT_EQ(r.seed, 9);
  EXPECT_EQ(r.batch, 4);
  EXPECT_EQ(r.sampler.clip_x0, 0.0);
  EXPECT_EQ(r.preview_every, 0);
  EXPECT_EQ(parse_job_request(json{{"class", "sneaker"}}, serve_models()).cls, 7);
  EXPECT_EQ(parse_job_request(json{{"class", 3}}, serve_models()).cls, 3);
  EXPECT_EQ(parse_job_request(json{{"class", "3"}}, serve_models()).cls, 3);
  EXPECT_EQ(parse_job_request(json{{"steps", 20.0}}, serve_models()).sampler.steps, 20);  // clients that write floats
}

TEST(ServeRequest, TheCliSamplerAndRestorationOptions) {
  auto r = parse_job_request(json{{"sampler", "ddim"}, {"spacing", "leading"}, {"steps_offset", 1}, {"eta", 0.3},
                                  {"final_alpha_one", false}},
                             serve_models());
  EXPECT_EQ(r.sampler.spacing, TimestepSpacing::Leading);
  EXPECT_EQ(r.sampler.steps_offset, 1);
  EXPECT_EQ(*r.sampler.final_alpha_one, false);
  r = parse_job_request(json{{"sampler", "heun"}, {"churn", 10}, {"s_noise", 1.003}, {"sigmas", "karras"}, {"rho", 5}}, serve_models());
  EXPECT_EQ(*r.sampler.churn, 10);
  EXPECT_EQ(r.sampler.rho, 5);
  r = parse_job_request(json{{"sampler", "ddpm"}, {"timesteps", {999, 500, 0}}, {"variance", "beta"}}, serve_models());
  EXPECT_EQ(r.sampler.timesteps, (std::vector<int64_t>{999, 500, 0}));
  EXPECT_EQ(*r.sampler.variance, DdpmVariance::Beta);
  const auto img = serve_png_uri(1, 28, 28);
  r = parse_job_request(json{{"mode", "inpaint"}, {"image", img}, {"mask", "half:left"}, {"jump_length", 5}, {"resample", 3}},
                        serve_models());
  EXPECT_EQ(r.jump_length, 5);
  EXPECT_EQ(r.resample, 3);
  r = parse_job_request(json{{"mode", "upscale"}, {"image", serve_png_uri(1, 14, 14)}, {"method", "dps"}, {"dps_scale", 0.5},
                             {"sigma_y", 0.05}},
                        serve_models());
  EXPECT_EQ(r.dps_scale, 0.5);
  EXPECT_EQ(r.sigma_y, 0.05);
  EXPECT_EQ(serve_error_field(json{{"sampler", "dpm++2m"}, {"churn", 1}}), "sampler");  // not an option of dpm++2m
  EXPECT_EQ(serve_error_field(json{{"spacing", "middle"}}), "spacing");
  EXPECT_EQ(serve_error_field(json{{"timesteps", {1000}}}), "timesteps");
  EXPECT_EQ(serve_error_field(json{{"timesteps", "999,0"}}), "timesteps");
  EXPECT_EQ(serve_error_field(json{{"final_alpha_one", 1}}), "final_alpha_one");
  EXPECT_EQ(serve_error_field(json{{"jump_length", 5}}), "jump_length");  // generate
  EXPECT_EQ(serve_error_field(json{{"mode", "inpaint"}, {"image", img}, {"mask", "half:left"}, {"method", "ddnm"}, {"resample", 2}}),
            "resample");
  EXPECT_EQ(serve_error_field(json{{"mode", "inpaint"}, {"image", img}, {"mask", "half:left"}, {"sigma_y", 0.1}}), "sigma_y");
  EXPECT_EQ(serve_error_field(json{{"mode", "edit"}, {"image", img}, {"dps_scale", 1}}), "dps_scale");
}

TEST(ServeRequest, EveryErrorNamesItsField) {
  EXPECT_EQ(serve_error_field(json{{"steps", "ten"}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"steps", 0}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"steps", 1001}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"steps", 2.5}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"steps", 1e300}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"steps", json::parse("18446744073709551615")}}), "steps");
  EXPECT_EQ(serve_error_field(json{{"sampler", "plms"}}), "sampler");
  EXPECT_EQ(serve_error_field(json{{"sampler", 3}}), "sampler");
  EXPECT_EQ(serve_error_field(json{{"model", "../../etc/passwd"}}), "model");
  EXPECT_EQ(serve_error_field(json{{"modle", "fmnist"}}), "modle");
  EXPECT_EQ(serve_error_field(json{{"class", "sneakers"}}), "class");
  EXPECT_EQ(serve_error_field(json{{"class", 10}}), "class");
  EXPECT_EQ(serve_error_field(json{{"class", -1}}), "class");
  EXPECT_EQ(serve_error_field(json{{"class", json::array()}}), "class");
  EXPECT_EQ(serve_error_field(json{{"model", "emoji"}, {"class", 0}}), "class");  // unconditional
  EXPECT_EQ(serve_error_field(json{{"batch", 17}}), "batch");
  EXPECT_EQ(serve_error_field(json{{"guidance", "high"}}), "guidance");
  EXPECT_EQ(serve_error_field(json{{"guidance", 1e9}}), "guidance");
  EXPECT_EQ(serve_error_field(json{{"mode", "outpaint"}}), "mode");
  EXPECT_EQ(serve_error_field(json{{"eta", 0.5}}), "sampler");  // dpm++2m takes no eta
  EXPECT_EQ(serve_error_field(json{{"method", "ddnm"}}), "method");  // generate takes none
  EXPECT_EQ(serve_error_field(json{{"image", serve_png_uri(1, 28, 28)}}), "image");
  EXPECT_EQ(serve_error_field(json{{"factor", 3}, {"mode", "upscale"}}), "factor");
  EXPECT_EQ(serve_error_field(json{{"factor", 2}}), "factor");      // an upscale option, given to generate
  EXPECT_EQ(serve_error_field(json{{"strength", 0.5}}), "strength");  // an edit option
  EXPECT_EQ(serve_error_field(json::array()), "");
  EXPECT_THROW(parse_job_request(json::array(), serve_models()), RequestError);
}

TEST(ServeRequest, RestorationInputsAreCheckedAgainstTheModel) {
  const auto img = serve_png_uri(1, 28, 28);
  auto r = parse_job_request(json{{"mode", "inpaint"}, {"image", img}, {"mask", "box:7,7,14,14"}}, serve_models());
  EXPECT_EQ(r.method, RestoreMethod::Repaint);
  EXPECT_EQ(r.sampler.kind, SamplerKind::Ddpm);  // repaint's default sampler
  EXPECT_EQ(r.sampler.steps, 100);
  EXPECT_EQ(r.image.sizes(), (std::vector<int64_t>{1, 1, 28, 28}));
  EXPECT_NEAR(r.image.max().item<float>(), 100 / 127.5 - 1, 1e-6);
  EXPECT_EQ(r.known.sum().item<float>(), 28 * 28 - 14 * 14);
  // A mask PNG: white = fill.
  auto mask = torch::zeros({1, 28, 28}, torch::kUInt8);
  mask.slice(1, 0, 10).fill_(255);
  r = parse_job_request(json{{"mode", "inpaint"}, {"image", img}, {"mask", png_data_uri(mask)}, {"method", "ddnm"}}, serve_models());
  EXPECT_EQ(r.known.sum().item<float>(), 18 * 28);
  EXPECT_EQ(r.sampler.kind, SamplerKind::DpmPp2m);
  // Upscale takes size / factor; colorize needs an RGB model and keeps a gray measurement.
  EXPECT_EQ(parse_job_request(json{{"mode", "upscale"}, {"image", serve_png_uri(1, 7, 7)}, {"factor", 4}}, serve_models()).image.size(2), 7);
  EXPECT_EQ(serve_error_field(json{{"mode", "upscale"}, {"image", img}}), "image");
  EXPECT_EQ(serve_error_field(json{{"mode", "colorize"}, {"image", img}}), "mode");
  r = parse_job_request(json{{"model", "emoji"}, {"mode", "colorize"}, {"image", serve_png_uri(3, 32, 32)}}, serve_models());
  EXPECT_EQ(r.image.size(1), 1);  // RGB input → its luma
  // An RGB image into a gray model's edit is made gray; a gray one into an RGB model repeated.
  EXPECT_EQ(parse_job_request(json{{"mode", "edit"}, {"image", serve_png_uri(3, 28, 28)}}, serve_models()).image.size(1), 1);
  EXPECT_EQ(parse_job_request(json{{"model", "emoji"}, {"mode", "edit"}, {"image", serve_png_uri(1, 32, 32)}}, serve_models()).image.size(1), 3);
}

TEST(ServeRequest, BadImagesAndMasks) {
  const auto img = serve_png_uri(1, 28, 28);
  auto edit = [](const std::string& image) { return json{{"mode", "edit"}, {"image", image}}; };
  EXPECT_EQ(serve_error_field(edit("")), "image");
  EXPECT_EQ(serve_error_field(edit("!!!!")), "image");
  EXPECT_EQ(serve_error_field(edit(base64_encode("GIF89a not a png"))), "image");
  EXPECT_EQ(serve_error_field(edit("data:image/jpeg;base64,/9j/4AAQ")), "image");
  EXPECT_EQ(serve_error_field(edit("data:image/png,rawdata")), "image");
  EXPECT_EQ(serve_error_field(edit(serve_png_uri(1, 27, 28))), "image");
  EXPECT_EQ(serve_error_field(edit(serve_png_uri(1, 128, 128))), "image");  // beyond max(size, 64) per side
  // Truncated PNG.
  const std::string png = encode_png(torch::zeros({1, 28, 28}, torch::kUInt8));
  EXPECT_EQ(serve_error_field(edit(base64_encode(png.substr(0, png.size() / 2)))), "image");
  auto inpaint = [&](const std::string& mask) { return json{{"mode", "inpaint"}, {"image", img}, {"mask", mask}}; };
  EXPECT_EQ(serve_error_field(inpaint("")), "mask");
  EXPECT_EQ(serve_error_field(inpaint("box:0,0,99,99")), "mask");
  EXPECT_EQ(serve_error_field(inpaint("half:middle")), "mask");
  // A path is never opened: it is taken as base64, and fails as such.
  EXPECT_EQ(serve_error_field(inpaint("/etc/passwd")), "mask");
  EXPECT_EQ(serve_error_field(inpaint(DIFFUSE_TEST_DATA)), "mask");
  EXPECT_EQ(serve_error_field(inpaint(serve_png_uri(1, 28, 28, 0))), "mask");  // nothing to fill
  EXPECT_EQ(serve_error_field(json{{"mode", "edit"}, {"image", img}, {"mask", "half:left"}}), "mask");
}

TEST(ServeRequest, Base64RoundTripsAndRejectsGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(base64_decode(base64_encode(s), "x"), s);
  EXPECT_EQ(base64_encode("diffuse"), "ZGlmZnVzZQ==");
  EXPECT_EQ(base64_decode("ZGlm\nZnVz ZQ==", "x"), "diffuse");
  EXPECT_THROW(base64_decode("ZG*m", "x"), RequestError);
  EXPECT_THROW(base64_decode("ZQ==ZQ", "x"), RequestError);
}

TEST(ServeRequest, Automatic1111Requests) {
  auto r = parse_sdapi_request(json{{"prompt", "sneaker"}, {"seed", 7}, {"batch_size", 2}, {"n_iter", 3},
                                    {"sampler_name", "DPM++ 2M Karras"}, {"steps", 30}, {"cfg_scale", 3},
                                    {"negative_prompt", "blurry"}, {"width", 28}, {"height", 0}},
                               serve_models(), false);
  EXPECT_EQ(r.cls, 7);
  EXPECT_EQ(r.batch, 6);
  EXPECT_EQ(r.sampler.kind, SamplerKind::DpmPp2m);
  EXPECT_EQ(r.sampler.sigmas, SigmaSchedule::Karras);
  EXPECT_EQ(r.guidance, 3.0);
  EXPECT_EQ(parse_sdapi_request(json{{"sampler_name", "Euler a"}}, serve_models(), false).sampler.kind, SamplerKind::EulerAncestral);
  EXPECT_EQ(parse_sdapi_request(json{{"sampler_name", "k_heun"}}, serve_models(), false).sampler.kind, SamplerKind::Heun);
  r = parse_sdapi_request(json{{"override_settings", {{"sd_model_checkpoint", "emoji [abc123]"}}}, {"cfg_scale", 7}},
                          serve_models(), false);
  EXPECT_EQ(r.model, 1u);
  EXPECT_EQ(r.guidance, 1.0);  // unconditional model: A1111's default 7 has nothing to guide
  EXPECT_EQ(serve_error_field(json{{"width", 512}}, true), "width");
  EXPECT_EQ(serve_error_field(json{{"sampler_name", "LMS"}}, true), "sampler_name");
  EXPECT_EQ(serve_error_field(json{{"scheduler", "Beta"}}, true), "scheduler");
  EXPECT_EQ(serve_error_field(json{{"prompt", "a photo of a cat"}}, true), "prompt");
  EXPECT_EQ(serve_error_field(json{{"batch_size", 8}, {"n_iter", 3}}, true), "n_iter");
  EXPECT_EQ(serve_error_field(json{{"override_settings", {{"sd_model_checkpoint", "sd15"}}}}, true),
            "override_settings.sd_model_checkpoint");
  EXPECT_EQ(serve_error_field(json{{"bogus", 1}}, true), "bogus");
  // img2img: a mask makes it an inpainting (RePaint on DDPM steps), none an SDEdit.
  const std::string b64 = base64_encode(encode_png(torch::zeros({1, 28, 28}, torch::kUInt8)));
  auto mask = torch::zeros({1, 28, 28}, torch::kUInt8);
  mask.slice(2, 0, 5).fill_(255);
  r = parse_sdapi_request(json{{"init_images", {b64}}, {"mask", base64_encode(encode_png(mask))}}, serve_models(), true);
  EXPECT_EQ(r.mode, Mode::Inpaint);
  EXPECT_EQ(r.method, RestoreMethod::Repaint);
  EXPECT_EQ(r.sampler.kind, SamplerKind::Ddpm);
  r = parse_sdapi_request(json{{"init_images", {b64}}, {"denoising_strength", 0.3}}, serve_models(), true);
  EXPECT_EQ(r.mode, Mode::Edit);
  EXPECT_EQ(r.strength, 0.3);
  EXPECT_EQ(serve_error_field(json{{"steps", 5}}, true, true), "init_images");
  EXPECT_EQ(serve_error_field(json{{"init_images", b64}}, true, true), "init_images");
}
