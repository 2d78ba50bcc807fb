// The network of a run: an MLP for vectors, a U-Net for images, with the memory
// format and autocast precision of the config applied around its forward.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <thread>

#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/train.hpp"

namespace diffuse {

namespace {
// Runs f under bf16 autocast when asked; the cast-weight cache is cleared at the
// end of every region (LibTorch does not do it for C++ callers).
torch::Tensor with_precision(Precision p, const torch::Device& dev, const std::function<torch::Tensor()>& f) {
  if (p == Precision::Fp32) return f();
  const bool cuda = dev.is_cuda();
  if (cuda) {
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  torch::Tensor out;
  try {
    out = f();
  } catch (...) {
    cuda ? at::autocast::set_enabled(false) : at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    throw;
  }
  cuda ? at::autocast::set_enabled(false) : at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  return out.to(torch::kFloat32);
}
}  // namespace

void to_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
}

// Measured here: the U-Net trains ~1.8× faster on 2 threads than on 1, while the small MLPs run
// slower on 2 (OpenBLAS thread hand-offs dominate their small matrices).
int intra_op_threads(int64_t requested, bool image_network) {
  if (requested > 0) return int(requested);
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {  // "4" and "4,2" (nested levels) give 4
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && (*end == '\0' || *end == ',') && n > 0) return int(n);
  }
  return image_network ? int(std::max(1u, std::thread::hardware_concurrency())) : 1;
}

void set_intra_op_threads(int64_t requested, bool image_network) {
  at::set_num_threads(intra_op_threads(requested, image_network));
}

MemoryLayout faster_layout(double nchw_s, double channels_last_s) {
  return channels_last_s < nchw_s ? MemoryLayout::ChannelsLast : MemoryLayout::Nchw;
}

LayoutChoice choose_layout(const TrainConfig& c, const torch::Device& dev, int64_t batch, int reps) {
  LayoutChoice out;
  if (c.layout != MemoryLayout::Auto) {
    out.layout = c.layout;
    return out;
  }
  if (!dev.is_cpu() || c.model_kind != ModelKind::Diffusion || !is_image_spec(c.data)) return out;
  if (batch < 1 || reps < 1) throw Error("choose_layout: batch and reps must be >= 1");
  // Random input from a local generator; the networks' initialisation draws from the global one,
  // which the trainer seeds after this.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto& u = c.unet;
  auto x = torch::randn({batch, u.in_channels, u.image_size, u.image_size}, gen, torch::kFloat32).to(dev);
  auto t = torch::randint(0, std::max<int64_t>(1, c.schedule.T), {batch}, gen, torch::kLong).to(dev);
  Conditioning cond;
  if (u.num_classes > 0) cond.labels = torch::randint(0, u.num_classes + 1, {batch}, gen, torch::kLong).to(dev);
  // Both networks alive, their steps interleaved and the fastest of each kept: a neighbour's
  // burst of load (this is often a shared VM) hits both layouts alike and a min ignores it.
  std::vector<Network> nets;
  for (auto l : {MemoryLayout::Nchw, MemoryLayout::ChannelsLast}) {
    TrainConfig lc = c;
    lc.layout = l;
    nets.push_back(make_network(lc, dev));
    nets.back().module->train();
  }
  auto step_seconds = [&](Network& net) {
    const auto t0 = std::chrono::steady_clock::now();
    auto loss = net.forward(x, t, cond).square().mean();
    loss.backward();
    for (auto& p : net.module->parameters()) p.mutable_grad() = torch::Tensor();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (auto& net : nets) step_seconds(net);  // warm-up: oneDNN primitive creation, allocator
  out.nchw_s = out.channels_last_s = std::numeric_limits<double>::infinity();
  for (int i = 0; i < reps; ++i) {
    out.nchw_s = std::min(out.nchw_s, step_seconds(nets[0]));
    out.channels_last_s = std::min(out.channels_last_s, step_seconds(nets[1]));
  }
  out.layout = faster_layout(out.nchw_s, out.channels_last_s);
  return out;
}

Network make_network(const TrainConfig& c, const torch::Device& dev) {
  Network net;
  const Precision prec = c.precision;
  if (c.model_kind == ModelKind::AutoencoderKL) {
    net.autoencoder = AutoencoderKL(c.autoencoder);
    net.autoencoder->to(dev);
    net.module = net.autoencoder.ptr();
    return net;
  }
  if (c.model_kind == ModelKind::Vae) {
    net.vae = ConvVae(c.vae);
    net.vae->to(dev);
    net.module = net.vae.ptr();
    return net;
  }
  if (is_image_spec(c.data)) {
    auto unet = UNet(c.unet);
    unet->to(dev);
    const bool cl = c.layout == MemoryLayout::ChannelsLast;  // Auto: resolved by choose_layout, else NCHW
    if (cl) to_channels_last(*unet);
    net.module = unet.ptr();
    net.forward = [unet, cl, prec, dev](const torch::Tensor& x, const torch::Tensor& t,
                                        const Conditioning& cond) mutable {
      auto xin = cl ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
      return with_precision(prec, dev, [&] { return unet->forward(xin, t, cond.labels); });
    };
  } else {
    if (c.model.dim < 1) throw Error("model.dim is not set (it comes from the data)");
    auto mlp = MlpDenoiser(c.model);
    mlp->to(dev);
    net.module = mlp.ptr();
    net.forward = [mlp, prec, dev](const torch::Tensor& x, const torch::Tensor& t,
                                   const Conditioning& cond) mutable {
      return with_precision(prec, dev, [&] { return mlp->forward(x, t, cond.labels); });
    };
  }
  return net;
}

}  // namespace diffuse
