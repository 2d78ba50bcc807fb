// Linear degradations with pseudo-inverses, and mask specs (see restore.hpp).
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/restore.hpp"

namespace diffuse {
namespace {

torch::Tensor luma(const torch::TensorOptions& o) { return torch::tensor({0.299, 0.587, 0.114}, o).view({1, 3, 1, 1}); }

std::vector<double> numbers(const std::string& s, const std::string& spec) {
  std::vector<double> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error("mask '" + spec + "': '" + item + "' is not a number");
    }
  }
  return out;
}

const char* kMaskHint = "masks: box:x,y,w,h | half:left|right|top|bottom | random:p | FILE.png (white = missing)";

}  // namespace

Degradation Degradation::mask(const torch::Tensor& known) {
  auto m = known.to(torch::kFloat32);
  if (m.dim() == 2) m = m.unsqueeze(0);
  if (m.dim() != 3) throw Error("a mask is (H, W) or (C, H, W)");
  if (!torch::logical_or(m.eq(0), m.eq(1)).all().item<bool>()) throw Error("a mask holds only 0 and 1");
  Degradation d;
  d.ops_.push_back({Op::Mask, m, 1});
  return d;
}

Degradation Degradation::downsample(int64_t factor) {
  if (factor < 2) throw Error("the downsampling factor must be >= 2", "use 2 or 4");
  Degradation d;
  d.ops_.push_back({Op::Downsample, {}, factor});
  return d;
}

Degradation Degradation::gray() {
  Degradation d;
  d.ops_.push_back({Op::Gray, {}, 1});
  return d;
}

Degradation Degradation::identity() { return {}; }

Degradation Degradation::then(const Degradation& next) const {
  Degradation d = *this;
  d.ops_.insert(d.ops_.end(), next.ops_.begin(), next.ops_.end());
  d.sigma_y = std::max(sigma_y, next.sigma_y);
  return d;
}

torch::Tensor Degradation::apply(const torch::Tensor& x) const {
  auto y = x;
  for (const auto& s : ops_) {
    switch (s.op) {
      case Op::Mask: y = y * s.mask.to(y.options()); break;  // m ⊙ x
      case Op::Downsample: y = torch::avg_pool2d(y, s.factor); break;
      case Op::Gray: y = (y * luma(y.options())).sum(1, true); break;  // wᵀx
    }
  }
  return y;
}

torch::Tensor Degradation::pinv(const torch::Tensor& y) const {
  auto x = y;
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    switch (it->op) {
      case Op::Mask: x = x * it->mask.to(x.options()); break;  // a projection is its own pseudo-inverse
      case Op::Downsample:  // A Aᵀ = I/f², so A⁺ = f² Aᵀ: copy each value to its f×f block
        x = x.repeat_interleave(it->factor, 2).repeat_interleave(it->factor, 3);
        break;
      case Op::Gray: {  // A⁺ = w (wᵀw)⁻¹
        auto w = luma(x.options());
        x = x * w / w.pow(2).sum();
        break;
      }
    }
  }
  return x;
}

std::vector<int64_t> Degradation::measurement_shape(const std::vector<int64_t>& shape) const {
  if (shape.size() != 3) throw Error("degradations apply to images (C, H, W)");
  auto s = shape;
  for (const auto& o : ops_) {
    switch (o.op) {
      case Op::Mask:
        if (o.mask.size(1) != s[1] || o.mask.size(2) != s[2] || (o.mask.size(0) != 1 && o.mask.size(0) != s[0]))
          throw Error("the mask is " + std::to_string(o.mask.size(2)) + "×" + std::to_string(o.mask.size(1)) +
                      " but the images are " + std::to_string(s[2]) + "×" + std::to_string(s[1]));
        break;
      case Op::Downsample:
        if (s[1] % o.factor || s[2] % o.factor)
          throw Error("downsampling by " + std::to_string(o.factor) + " needs a size divisible by it, got " +
                          std::to_string(s[2]) + "×" + std::to_string(s[1]),
                      "use a factor that divides the model's image size");
        s[1] /= o.factor, s[2] /= o.factor;
        break;
      case Op::Gray:
        if (s[0] != 3) throw Error("RGB → gray needs RGB images", "this model makes " + std::to_string(s[0]) + "-channel images");
        s[0] = 1;
        break;
    }
  }
  return s;
}

bool Degradation::is_mask() const { return ops_.size() == 1 && ops_[0].op == Op::Mask; }

torch::Tensor Degradation::known() const {
  if (!is_mask()) throw Error("this degradation is not a mask");
  return ops_[0].mask;
}

std::string Degradation::describe() const {
  if (ops_.empty()) return "identity";
  std::string out;
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    if (!out.empty()) out += " ∘ ";
    out += it->op == Op::Mask ? "mask" : it->op == Op::Gray ? "gray" : "downsample×" + std::to_string(it->factor);
  }
  return out;
}

torch::Tensor parse_mask(const std::string& spec, int64_t H, int64_t W, uint64_t seed) {
  auto known = torch::ones({H, W});
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon), arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "box" && colon != std::string::npos) {
    auto v = numbers(arg, spec);
    if (v.size() != 4) throw Error("mask '" + spec + "' needs four numbers", "box:x,y,w,h, e.g. box:7,7,14,14");
    for (double n : v)  // whole pixel counts (a cast of 1e20 to an integer is undefined)
      if (!(n >= 0 && n <= double(int64_t(1) << 30)) || n != std::floor(n))
        throw Error("mask '" + spec + "' needs whole non-negative pixel numbers", "box:x,y,w,h, e.g. box:7,7,14,14");
    const int64_t x = int64_t(v[0]), y = int64_t(v[1]), w = int64_t(v[2]), h = int64_t(v[3]);
    if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > W || y + h > H)
      throw Error("mask '" + spec + "' leaves the " + std::to_string(W) + "×" + std::to_string(H) + " image");
    known.slice(0, y, y + h).slice(1, x, x + w).zero_();
  } else if (kind == "half" && colon != std::string::npos) {
    if (arg == "left") known.slice(1, 0, W / 2).zero_();
    else if (arg == "right") known.slice(1, W / 2, W).zero_();
    else if (arg == "top") known.slice(0, 0, H / 2).zero_();
    else if (arg == "bottom") known.slice(0, H / 2, H).zero_();
    else throw Error("mask '" + spec + "': unknown half '" + arg + "'", "half:left|right|top|bottom");
  } else if (kind == "random" && colon != std::string::npos) {
    auto v = numbers(arg, spec);
    if (v.size() != 1 || !(v[0] >= 0 && v[0] <= 1)) throw Error("mask '" + spec + "' needs a fraction in [0, 1]", "e.g. random:0.5");
    auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
    known = torch::rand({H, W}, g).ge(v[0]).to(torch::kFloat32);
  } else if (std::error_code ec; std::filesystem::exists(spec, ec)) {
    auto img = read_image(spec);
    if (img.size(1) != H || img.size(2) != W)
      throw Error("mask " + spec + " is " + std::to_string(img.size(2)) + "×" + std::to_string(img.size(1)) +
                  ", the images are " + std::to_string(W) + "×" + std::to_string(H));
    known = img.to(torch::kFloat32).mean(0).lt(128).to(torch::kFloat32);  // white = missing
  } else {
    throw Error("unknown mask '" + spec + "' (and no such file)", kMaskHint);
  }
  return known;
}

}  // namespace diffuse
