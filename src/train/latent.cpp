// Latent diffusion: encoding a data set once, the latent scale factor, the latents as a data
// source, and the diffusers-style export of an autoencoder (see train/latent.hpp).
#include "train/latent.hpp"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "train/trainer_state.hpp"

namespace diffuse {

namespace {

torch::Tensor encode_range(AutoencoderKL& ae, const DataSource& images, int64_t n, const torch::Device& device,
                           int64_t batch) {
  if (images.size() < 1)
    throw Error("latent diffusion needs a finite image set ('" + images.spec() + "' draws fresh data)",
                "use fashion-mnist, emoji or folder:PATH");
  torch::NoGradGuard no_grad;
  const bool was_training = ae->is_training();
  ae->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t b = std::min(batch, n - first);
    auto x = images.items(torch::arange(first, first + b, torch::kLong)).x.to(device);
    parts.push_back(ae->encode(x).mean.cpu());
  }
  if (was_training) ae->train();
  return torch::cat(parts);
}

class LatentSource : public DataSource {
 public:
  LatentSource(const DataSource& images, torch::Tensor latents)
      : spec_(images.spec()), latents_(std::move(latents)), labels_(images.labels()),
        names_(images.class_names()), classes_(images.num_classes()) {
    if (latents_.dim() != 4 || latents_.size(0) != images.size())
      throw Error("latents must be (N, L, h, w) with one row per image");
  }
  std::vector<int64_t> shape() const override { return {latents_.size(1), latents_.size(2), latents_.size(3)}; }
  DataBatch sample(int64_t n, torch::Generator& gen) const override {
    return items(torch::randint(0, latents_.size(0), {n}, gen, torch::dtype(torch::kLong)));
  }
  int64_t size() const override { return latents_.size(0); }
  DataBatch items(const torch::Tensor& idx) const override {
    return {latents_.index_select(0, idx), labels_.defined() ? labels_.index_select(0, idx) : torch::Tensor()};
  }
  torch::Tensor labels() const override { return labels_; }
  int64_t num_classes() const override { return classes_; }
  std::vector<std::string> class_names() const override { return names_; }
  std::string spec() const override { return spec_; }

 private:
  std::string spec_;
  torch::Tensor latents_, labels_;
  std::vector<std::string> names_;
  int64_t classes_;
};

}  // namespace

torch::Tensor encode_images(AutoencoderKL& ae, const DataSource& images, double scale, const torch::Device& device,
                            int64_t batch) {
  return encode_range(ae, images, images.size(), device, batch) * scale;
}

double measure_latent_scale(AutoencoderKL& ae, const DataSource& images, const torch::Device& device,
                            int64_t max_images) {
  auto z = encode_range(ae, images, std::min(images.size(), max_images), device, 256);
  const double sd = z.to(torch::kFloat64).std().item<double>();
  if (!(sd > 0) || !std::isfinite(sd))
    throw Error("the autoencoder's latents have standard deviation " + std::to_string(sd) +
                "; no scale factor can be measured", "train the autoencoder longer, or check its loss for NaN");
  return 1.0 / sd;
}

torch::Tensor decode_latents(AutoencoderKL& ae, const torch::Tensor& z, double scale) {
  torch::NoGradGuard no_grad;
  return ae->decode(z / scale).clamp(-1, 1);
}

torch::Tensor encode_latents(AutoencoderKL& ae, const torch::Tensor& x, double scale) {
  torch::NoGradGuard no_grad;
  return ae->encode(x).mean * scale;
}

std::unique_ptr<DataSource> make_latent_source(const DataSource& images, torch::Tensor latents) {
  return std::make_unique<LatentSource>(images, std::move(latents));
}

void export_diffusers_autoencoder(const std::string& dir, AutoencoderKL& ae, const AutoencoderKLOptions& options) {
  ensure_dir(dir);
  std::map<std::string, torch::Tensor> t;
  put_module(t, "", *ae);
  for (auto& [name, v] : t) v = v.contiguous().cpu();
  write_file_atomic(dir + "/config.json", [&](std::ostream& o) { o << autoencoder_kl_config_json(options); });
  save_safetensors(dir + "/diffusion_pytorch_model.safetensors", t, {{"format", "pt"}});
}

}  // namespace diffuse
