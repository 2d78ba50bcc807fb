// The feature network (see featnet.hpp): model, spec, weights, and which network fits which data.
// Training: featnet_train.cpp.
#include "diffuse/featnet.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "featnet_impl.hpp"

namespace diffuse {

namespace nn = torch::nn;

int64_t featnet_stages(int64_t image_size) {
  int64_t stages = 0;
  for (int64_t s = image_size; s % 2 == 0 && s > 4; s /= 2) ++stages;
  return stages;
}

FeatNetImpl::FeatNetImpl(const FeatNetSpec& s) : spec(s) {
  if (spec.in_channels != 1 && spec.in_channels != 3)
    throw Error("a feature network takes 1 or 3 channels, not " + std::to_string(spec.in_channels));
  if (spec.image_size < 8) throw Error("a feature network takes images of side >= 8, not " + std::to_string(spec.image_size));
  if (spec.feature_dim < 2) throw Error("feature_dim must be >= 2");
  if (spec.class_names.empty()) spec.class_names = fashion_mnist_classes();
  if (spec.class_names.size() < 2) throw Error("a feature network needs at least 2 classes");
  // [conv3×3, BN, ReLU] ×2, maxpool per stage (one flat Sequential: they do not nest); the
  // module names convs.0 … of the first two stages are those of the Fashion-MNIST weights.
  convs = register_module("convs", nn::Sequential());
  int64_t in = spec.in_channels, side = spec.image_size;
  const int64_t stages = featnet_stages(spec.image_size);
  for (int64_t k = 0; k < stages; ++k) {
    const int64_t out = k == 0 ? 32 : k == 1 ? 64 : 128;
    for (int rep = 0; rep < 2; ++rep) {
      convs->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
      convs->push_back(nn::BatchNorm2d(out));
      convs->push_back(nn::ReLU());
      in = out;
    }
    convs->push_back(nn::MaxPool2d(2));
    side /= 2;
  }
  fc = register_module("fc", nn::Linear(nn::LinearOptions(in * side * side, spec.feature_dim).bias(false)));
  fc_norm = register_module("fc_norm", nn::BatchNorm1d(spec.feature_dim));
  drop = register_module("drop", nn::Dropout(0.3));
  head = register_module("head", nn::Linear(spec.feature_dim, int64_t(spec.class_names.size())));
}

// x: (B, C, S, S) in [−1, 1] → features (B, feature_dim)
torch::Tensor FeatNetImpl::features(const torch::Tensor& x) {
  return torch::relu(fc_norm(fc(convs->forward(x).flatten(1))));
}
torch::Tensor FeatNetImpl::forward(const torch::Tensor& x) { return head(drop(features(x))); }

namespace featnet_impl {

std::string shape_string(c10::IntArrayRef s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

std::string describe(const FeatNetSpec& s) {
  const auto S = std::to_string(s.image_size);
  return S + "×" + S + (s.in_channels == 1 ? " grayscale" : " RGB");
}

// (N, C, S, S) uint8 or float in [−1, 1] → float32 in [−1, 1].
torch::Tensor as_input(const torch::Tensor& images, const FeatNetSpec& s) {
  if (images.dim() != 4 || images.size(1) != s.in_channels || images.size(2) != s.image_size ||
      images.size(3) != s.image_size)
    throw Error("the feature network takes " + describe(s) + " images (N, " + std::to_string(s.in_channels) + ", " +
                    std::to_string(s.image_size) + ", " + std::to_string(s.image_size) + "), got shape " +
                    shape_string(images.sizes()),
                "it is trained on " + s.data + "; convert the images, or use a network made for them");
  if (images.scalar_type() == torch::kUInt8) return images.to(torch::kFloat32).div(127.5).sub(1.0);
  if (!images.is_floating_point()) throw Error("images must be uint8 or floating point");
  return images.to(torch::kFloat32);
}

namespace {

constexpr const char* kFormat = "diffuse-featnet-1";

template <class F>
torch::Tensor batched(const torch::Tensor& images, const FeatNetSpec& s, int64_t batch, F&& f) {
  torch::NoGradGuard no_grad;
  auto x = as_input(images, s);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) parts.push_back(f(x.slice(0, i, i + batch)).to(torch::kFloat64));
  if (parts.empty()) throw Error("no images to compute features of");
  return torch::cat(parts);
}

// The spec in a file's metadata; keys missing in files from before they existed take the
// Fashion-MNIST values (1×28×28, ten classes).
FeatNetSpec spec_from_metadata(const std::map<std::string, std::string>& m, const std::string& path) {
  auto fmt = m.find("format");
  if (fmt == m.end() || fmt->second != kFormat)
    throw Error(path + " is not a diffuse feature network", "make one with: diffuse eval train-featnet --out FILE");
  FeatNetSpec s;
  auto get = [&](const char* key) -> const std::string* {
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  };
  try {
    s.feature_dim = std::stoll(m.at("feature_dim"));
    if (auto v = get("in_channels")) s.in_channels = std::stoll(*v);
    if (auto v = get("image_size")) s.image_size = std::stoll(*v);
    if (auto v = get("class_names")) s.class_names = nlohmann::json::parse(*v).get<std::vector<std::string>>();
    if (auto v = get("data")) s.data = *v;
    if (auto v = get("background")) s.background = *v;
  } catch (const std::exception& e) {
    throw Error(path + ": unreadable feature network metadata (" + e.what() + ")");
  }
  if (s.feature_dim < 1 || s.feature_dim > 65536 || (s.in_channels != 1 && s.in_channels != 3) ||
      s.image_size < 8 || s.image_size > 1024 || s.class_names.size() > 100000)
    throw Error(path + ": feature network metadata out of range (feature_dim " + std::to_string(s.feature_dim) +
                ", in_channels " + std::to_string(s.in_channels) + ", image_size " + std::to_string(s.image_size) + ")",
                "feature_dim 1 … 65536, in_channels 1 or 3, image_size 8 … 1024");
  if (s.class_names.empty()) s.class_names = fashion_mnist_classes();
  if (auto v = get("num_classes"); v && std::to_string(s.class_names.size()) != *v)
    throw Error(path + ": num_classes " + *v + " but " + std::to_string(s.class_names.size()) + " class names");
  return s;
}

}  // namespace
}  // namespace featnet_impl

using featnet_impl::as_input;

FeatNet::FeatNet() : FeatNet(FeatNetSpec{}) {}
FeatNet::FeatNet(int64_t feature_dim) : FeatNet([&] {
  FeatNetSpec s;
  s.feature_dim = feature_dim;
  return s;
}()) {}
FeatNet::FeatNet(const FeatNetSpec& spec) : impl_(std::make_unique<FeatNetImpl>(spec)) { impl_->eval(); }
FeatNet::~FeatNet() = default;
FeatNet::FeatNet(FeatNet&&) noexcept = default;
FeatNet& FeatNet::operator=(FeatNet&&) noexcept = default;
FeatNetImpl& FeatNet::module() const { return *impl_; }
const FeatNetSpec& FeatNet::spec() const { return impl_->spec; }
int64_t FeatNet::feature_dim() const { return impl_->spec.feature_dim; }
int64_t FeatNet::in_channels() const { return impl_->spec.in_channels; }
int64_t FeatNet::image_size() const { return impl_->spec.image_size; }
int64_t FeatNet::num_classes() const { return int64_t(impl_->spec.class_names.size()); }

torch::Tensor FeatNet::features(const torch::Tensor& images, int64_t batch) const {
  return featnet_impl::batched(images, spec(), batch, [&](const torch::Tensor& x) { return impl_->features(x); });
}
torch::Tensor FeatNet::logits(const torch::Tensor& images, int64_t batch) const {
  return featnet_impl::batched(images, spec(), batch, [&](const torch::Tensor& x) { return impl_->forward(x); });
}

void FeatNet::save(const std::string& path) const {
  std::map<std::string, torch::Tensor> t;
  for (const auto& p : impl_->named_parameters()) t[p.key()] = p.value().detach().cpu().contiguous();
  for (const auto& b : impl_->named_buffers()) t[b.key()] = b.value().detach().cpu().contiguous();
  const auto& s = impl_->spec;
  std::map<std::string, std::string> meta = {{"format", featnet_impl::kFormat},
                                             {"feature_dim", std::to_string(s.feature_dim)},
                                             {"in_channels", std::to_string(s.in_channels)},
                                             {"image_size", std::to_string(s.image_size)},
                                             {"num_classes", std::to_string(s.class_names.size())},
                                             {"class_names", nlohmann::json(s.class_names).dump()},
                                             {"data", s.data}};
  if (!s.background.empty()) meta["background"] = s.background;
  save_safetensors(path, t, meta);
}

FeatNet FeatNet::load(const std::string& path) {
  auto file = load_safetensors(path);
  FeatNet net(featnet_impl::spec_from_metadata(file.metadata, path));
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw Error(path + " lacks tensor " + name);
    if (it->second.sizes() != dst.sizes())
      throw Error(path + ": tensor " + name + " has shape " + featnet_impl::shape_string(it->second.sizes()) +
                  ", the network of its metadata wants " + featnet_impl::shape_string(dst.sizes()));
    dst.copy_(it->second);
  };
  for (auto& p : net.impl_->named_parameters()) assign(p.key(), p.value());
  for (auto& b : net.impl_->named_buffers()) assign(b.key(), b.value());
  net.impl_->eval();
  return net;
}

// ---- which network: the shipped files and their specs ------------------------------------

namespace featnet_impl {
namespace {

namespace fs = std::filesystem;

// The folders holding shipped networks, in the order they are searched.
std::vector<std::string> asset_dirs() {
  std::vector<std::string> dirs;
#ifdef DIFFUSE_SOURCE_ASSETS
  dirs.push_back(DIFFUSE_SOURCE_ASSETS);
#endif
#ifdef DIFFUSE_INSTALL_ASSETS
  dirs.push_back(DIFFUSE_INSTALL_ASSETS);
#endif
  return dirs;
}

std::string family_text(const std::string& family, const std::string& background) {
  if (family.empty()) return "";
  return family + (family == "emoji" && !background.empty() ? " (background " + background + ")" : "") + " ";
}

}  // namespace
}  // namespace featnet_impl

std::string default_featnet_path() {
  if (const char* env = std::getenv("DIFFUSE_FEATNET"); env && *env) return env;
  for (const auto& dir : featnet_impl::asset_dirs())
    if (std::filesystem::exists(dir + "/featnet_fmnist.safetensors")) return dir + "/featnet_fmnist.safetensors";
  return {};
}

FeatNet load_default_featnet() {
  const std::string path = default_featnet_path();
  if (path.empty())
    throw Error("no feature network found (looked at $DIFFUSE_FEATNET and assets/featnet_fmnist.safetensors)",
                "make one with: diffuse eval train-featnet --out assets/featnet_fmnist.safetensors, "
                "or pass --featnet FILE");
  return FeatNet::load(path);
}

std::vector<FeatNetFile> available_featnets() {
  namespace fs = std::filesystem;
  std::vector<std::string> paths;
  if (const char* env = std::getenv("DIFFUSE_FEATNET"); env && *env) paths.push_back(env);
  std::set<std::string> names;
  for (const auto& dir : featnet_impl::asset_dirs()) {
    std::error_code ec;
    std::vector<std::string> here;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const auto name = it->path().filename().string();
      if (name.rfind("featnet_", 0) == 0 && it->path().extension() == ".safetensors" && !names.count(name))
        here.push_back(it->path().string());
    }
    std::sort(here.begin(), here.end());
    for (const auto& p : here) names.insert(fs::path(p).filename().string());
    paths.insert(paths.end(), here.begin(), here.end());
  }
  std::vector<FeatNetFile> out;
  for (const auto& p : paths) {
    auto file = load_safetensors(p);
    out.push_back({p, featnet_impl::spec_from_metadata(file.metadata, p)});
  }
  return out;
}

std::string featnet_data_family(const std::string& spec) {
  if (spec.rfind("fashion-mnist", 0) == 0) return "fashion-mnist";
  if (spec == "emoji" || spec.rfind("emoji:", 0) == 0) return "emoji";
  return "";
}

std::string data_split_spec(const std::string& spec, const std::string& split) {
  if (split != "train" && split != "test") throw Error("split must be train or test, not '" + split + "'");
  const auto family = featnet_data_family(spec);
  if (family == "fashion-mnist") return "fashion-mnist:" + split;
  if (family == "emoji") {
    const auto o = parse_emoji_spec(spec);
    return "emoji:" + split + (o.color_only ? ":color" : "") + (o.skin_tones ? "" : ":no-skin-tones");
  }
  throw Error("the data '" + spec + "' has no train and test splits",
              "feature networks and their reference sets come from fashion-mnist or emoji");
}

FeatNetFile find_featnet(const std::string& family, int64_t channels, int64_t image_size,
                         const std::string& background, bool exact) {
  const auto all = available_featnets();
  auto fits_family = [&](const FeatNetSpec& s) {
    if (family.empty()) return true;
    if (featnet_data_family(s.data) != family) return false;
    return family != "emoji" || background.empty() || s.background.empty() || s.background == background;
  };
  for (const auto& f : all)
    if (fits_family(f.spec) && f.spec.in_channels == channels && f.spec.image_size == image_size) return f;
  if (!exact && !family.empty())
    for (const auto& f : all)
      if (fits_family(f.spec)) return f;
  std::string list;
  for (const auto& f : all)
    list += (list.empty() ? "" : "; ") + f.path + " (" + f.spec.data +
            (f.spec.background.empty() ? "" : " on " + f.spec.background) + ", " +
            std::to_string(f.spec.in_channels) + "×" + std::to_string(f.spec.image_size) + "×" +
            std::to_string(f.spec.image_size) + ")";
  const auto C = std::to_string(channels), S = std::to_string(image_size);
  throw Error("no feature network for " + featnet_impl::family_text(family, background) + C + "×" + S + "×" + S +
                  " images; available: " + (list.empty() ? "none" : list),
              "pass --featnet FILE (or --data fashion-mnist|emoji: compare at that network's size), or train "
              "one: diffuse eval train-featnet --data " + (family.empty() ? std::string("SPEC") : family) +
                  (family == "emoji" ? " --image-size " + S : "") + " --out FILE");
}

double featnet_accuracy(const FeatNet& net, const torch::Tensor& images, const torch::Tensor& labels) {
  auto pred = net.logits(images).argmax(1);
  return pred.eq(labels.to(torch::kLong)).to(torch::kFloat64).mean().item<double>();
}

}  // namespace diffuse
