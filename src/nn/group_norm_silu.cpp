// diffuse — SiLU(GroupNorm(x + channel_bias)) in one pass: the math and the dispatch rules are in
// diffuse/nn/group_norm_silu.hpp. This file holds
//   - the unfused path (ATen ops, any device and dtype),
//   - the fused CPU float32 kernels, forward and backward, on at::vec::Vectorized<float>,
//   - the torch::autograd::Function that ties the two kernels together.
//
// Shapes: x (N, C, *) contiguous, viewed as N·G groups of D = C/G channels of L = H·W elements;
// group i = n·G + g is the D·L floats at x + i·D·L, its channel d the L floats at x + (i·D + d)·L.
//
// Built on its own (SKIP_UNITY_BUILD_INCLUSION) and with -fopenmp under GCC (CMakeLists.txt):
// at::parallel_for is header code that only runs in parallel when its caller is compiled with
// OpenMP; without it the kernels are correct but use one thread.
#include "diffuse/nn/group_norm_silu.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/error.hpp"

namespace diffuse {
namespace {

// (Names carry a gns_ prefix, as the other files of src/nn do for the unity build.)

std::atomic<bool> g_gns_fused{false};  // off by default: slower than ATen's ops here (header)

using GnsVec = at::vec::Vectorized<float>;
constexpr int64_t kGnsLanes = GnsVec::size();
// Partial sums run in float lanes over at most kGnsChunk elements, then go into a double: a
// float lane then adds at most kGnsChunk / kGnsLanes terms (64 for 8 lanes), so its rounding
// error stays ~1e-6 relative even for 64×64 images; the double total loses nothing.
constexpr int64_t kGnsChunk = 512;
static_assert(kGnsChunk % kGnsLanes == 0, "a chunk holds whole vectors");

// ---------------------------------------------------------------- checks and dispatch
std::string gns_shape_text(const at::Tensor& t) {
  return t.defined() ? c10::str(t.sizes()) : std::string("(undefined)");
}

void gns_check(const at::Tensor& x, int64_t groups, const at::Tensor& weight, const at::Tensor& bias,
               const at::Tensor& channel_bias) {
  if (!x.defined() || x.dim() < 2)
    throw Error("group_norm_silu: x has shape " + gns_shape_text(x) + ", expected (N, C, *)",
                "pass a batch of feature maps, e.g. (B, C, H, W)");
  const int64_t N = x.size(0), C = x.size(1);
  if (groups < 1 || C % groups != 0)
    throw Error("group_norm_silu: " + std::to_string(groups) + " groups do not divide the " +
                    std::to_string(C) + " channels of x " + gns_shape_text(x),
                "use a divisor of C (the networks take gcd(groups, C))");
  auto per_channel = [&](const at::Tensor& t, const std::string& name) {
    if (t.defined() && (t.dim() != 1 || t.size(0) != C))
      throw Error("group_norm_silu: " + name + " has shape " + gns_shape_text(t) + ", expected (" +
                      std::to_string(C) + ")",
                  "one affine parameter per channel of x " + gns_shape_text(x));
  };
  per_channel(weight, "weight");
  per_channel(bias, "bias");
  if (channel_bias.defined() &&
      (channel_bias.dim() != 2 || channel_bias.size(0) != N || channel_bias.size(1) != C))
    throw Error("group_norm_silu: channel_bias has shape " + gns_shape_text(channel_bias) +
                    ", expected (" + std::to_string(N) + ", " + std::to_string(C) + ")",
                "one shift per image and channel of x " + gns_shape_text(x) + ", or none");
}

bool gns_cpu_float(const at::Tensor& t) {
  return t.defined() && t.layout() == at::kStrided && t.is_cpu() && t.scalar_type() == at::kFloat &&
         t.is_contiguous();
}

// The fused kernel's domain; everything else takes gns_unfused.
bool gns_fusable(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                 const at::Tensor& channel_bias) {
  if (!g_gns_fused.load(std::memory_order_relaxed)) return false;
  if (at::autocast::is_cpu_enabled() || at::autocast::is_enabled()) return false;
  return gns_cpu_float(x) && x.numel() > 0 && gns_cpu_float(weight) && gns_cpu_float(bias) &&
         (!channel_bias.defined() || gns_cpu_float(channel_bias));
}

// The ops the networks ran before this operator, unchanged (the U-Net's h.add_ of the
// embedding, then group_norm_any_layout and silu): the shift added in x's dtype.
at::Tensor gns_unfused(const at::Tensor& x, int64_t groups, const at::Tensor& weight,
                       const at::Tensor& bias, double eps, const at::Tensor& channel_bias) {
  at::Tensor h = x;
  if (channel_bias.defined()) {
    auto shift = channel_bias.to(x.scalar_type());  // (N, C) → (N, C, 1, …, 1)
    for (int64_t k = 2; k < x.dim(); ++k) shift = shift.unsqueeze(-1);
    h = x + shift;
  }
  return at::silu(group_norm_any_layout(h, groups, weight, bias, eps));
}

// ---------------------------------------------------------------- vector helpers
double gns_hsum(const GnsVec& v) {
  float lanes[kGnsLanes];
  v.store(lanes);
  double s = 0.0;
  for (int64_t i = 0; i < kGnsLanes; ++i) s += lanes[i];
  return s;
}

// The first m lanes from p (m ≤ kGnsLanes), zeros in the others.
GnsVec gns_load(const float* p, int64_t m) {
  return m == kGnsLanes ? GnsVec::loadu(p) : GnsVec::loadu(p, m);
}

// v with lanes m … kGnsLanes − 1 zeroed: the tail of a sum whose term is not 0 at 0.
GnsVec gns_head(const GnsVec& v, int64_t m) {
  return m == kGnsLanes ? v : GnsVec::set(GnsVec(0.0f), v, m);
}

// e^v per lane: Cephes' expf, whose constants ATen also carries (ATen/native/cpu/avx_mathfun.h).
// v = n·ln 2 + r with n = round(v·log₂e) and |r| ≤ ln 2 / 2; e^r = 1 + r + r²·P(r) with P of
// degree 5; 2^n written into the exponent bits. A few ulp on the clamped range [−87, 87], where
// 2^n stays a normal float (n ∈ [−126, 126]); outside it e^v saturates at e^±87 (6e37, 2e−38),
// ample for the logistic below. A NaN stays NaN. (Vectorized<float>::exp() in the generic,
// non-AVX build calls std::exp lane by lane; this one is arithmetic only.)
GnsVec gns_exp(GnsVec v) {
  v = at::vec::clamp(v, GnsVec(-87.0f), GnsVec(87.0f));
  const GnsVec round_magic(12582912.0f);  // 1.5·2^23: (t + M) − M rounds t to an integer, |t| < 2^22
  const GnsVec n = (v * GnsVec(1.44269504088896341f) + round_magic) - round_magic;
  // r = v − n·ln 2, with ln 2 = C1 + C2 split so that n·C1 is exact (C1 has 9 significant bits)
  const GnsVec r = (v - n * GnsVec(0.693359375f)) - n * GnsVec(-2.12194440e-4f);
  GnsVec p(1.9875691500e-4f);
  p = at::vec::fmadd(p, r, GnsVec(1.3981999507e-3f));
  p = at::vec::fmadd(p, r, GnsVec(8.3334519073e-3f));
  p = at::vec::fmadd(p, r, GnsVec(4.1665795894e-2f));
  p = at::vec::fmadd(p, r, GnsVec(1.6666665459e-1f));
  p = at::vec::fmadd(p, r, GnsVec(5.0000001201e-1f));
  p = at::vec::fmadd(p, r * r, r + GnsVec(1.0f));
  // 2^n: the biased exponent n + 127 ∈ [1, 253] shifted into place (n of a NaN lane taken as 0).
  float nf[kGnsLanes];
  n.store(nf);
  int32_t bits[kGnsLanes];
  for (int64_t i = 0; i < kGnsLanes; ++i)
    bits[i] = ((std::isnan(nf[i]) ? 0 : int32_t(nf[i])) + 127) << 23;
  return p * GnsVec::loadu(bits);  // loadu copies bytes: the int32 bit patterns read as floats
}

// σ(z) = 1/(1 + e^(−z)) per lane.
GnsVec gns_sigmoid(const GnsVec& z) {
  const GnsVec one(1.0f);
  return one / (one + gns_exp(GnsVec(0.0f) - z));
}

// Σ_j (p[j] + shift), or Σ_j (p[j] + shift)² when kSquared, over n elements.
template <bool kSquared>
double gns_sum(const float* p, int64_t n, float shift) {
  const GnsVec vs(shift);
  double total = 0.0;
  for (int64_t c = 0; c < n; c += kGnsChunk) {
    const int64_t end = std::min(n, c + kGnsChunk);
    GnsVec acc(0.0f);
    for (int64_t j = c; j < end; j += kGnsLanes) {
      const int64_t m = std::min(kGnsLanes, end - j);
      const GnsVec v = gns_head(gns_load(p + j, m) + vs, m);
      if constexpr (kSquared)
        acc = at::vec::fmadd(v, v, acc);
      else
        acc = acc + v;
    }
    total += gns_hsum(acc);
  }
  return total;
}

// ---------------------------------------------------------------- the fused kernels
struct GnsShape {
  int64_t N = 0, C = 0, G = 0, D = 0, L = 0;  // images, channels, groups, channels per group, H·W
};

GnsShape gns_shape(const at::Tensor& x, int64_t groups) {
  GnsShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.G = groups;
  s.D = s.C / groups;
  s.L = x.numel() / (s.N * s.C);
  return s;
}

// Channel c of image n as z = x·a + b and x̂ = x·xr + xo, from its group's μ, r and its own γ, β
// and shift s = channel_bias[n, c]: x̂ = (x + s − μ)·r, z = γ·x̂ + β. One function for forward and
// backward, so that backward recomputes exactly the z of forward.
struct GnsAffine {
  float a, b, xr, xo;
};

GnsAffine gns_affine(double mu, double r, double gamma, double beta, double shift) {
  const double a = r * gamma, centre = shift - mu;
  return {float(a), float(beta + centre * a), float(r), float(centre * r)};
}

struct GnsTensors {
  const float* x;      // (N, C, L)
  const float* gamma;  // (C)
  const float* beta;   // (C)
  const float* shift;  // (N, C) channel_bias, or nullptr
  double* mean;        // (N, G)
  double* rstd;        // (N, G)
};

double gns_shift(const GnsTensors& t, const GnsShape& s, int64_t n, int64_t c) {
  return t.shift ? double(t.shift[n * s.C + c]) : 0.0;
}

// Forward: per group, three sweeps over its D·L elements (the first from memory, the others from
// cache). Statistics by the two-pass formula in double: μ first, then σ² = mean (h − μ)². The
// one-pass E[h²] − μ² cancels catastrophically when |μ| ≫ σ — the time-embedding shift and a
// ReLU-free conv output can make the mean of a group large against its spread — and the second
// sweep costs arithmetic, not memory traffic. Then y = z·σ(z) with z = x·a + b per channel.
void gns_forward_kernel(const GnsTensors& t, const GnsShape& s, double eps, float* y) {
  const double M = double(s.D * s.L);
  at::parallel_for(0, s.N * s.G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / s.G, c0 = (i % s.G) * s.D;
      const float* xg = t.x + i * s.D * s.L;
      double sum = 0.0;
      for (int64_t d = 0; d < s.D; ++d)
        sum += gns_sum<false>(xg + d * s.L, s.L, float(gns_shift(t, s, n, c0 + d)));
      const double mu = sum / M;
      double sq = 0.0;
      for (int64_t d = 0; d < s.D; ++d)
        sq += gns_sum<true>(xg + d * s.L, s.L, float(gns_shift(t, s, n, c0 + d) - mu));
      const double r = 1.0 / std::sqrt(sq / M + eps);
      t.mean[i] = mu;
      t.rstd[i] = r;
      for (int64_t d = 0; d < s.D; ++d) {
        const int64_t c = c0 + d;
        const GnsAffine k = gns_affine(mu, r, t.gamma[c], t.beta[c], gns_shift(t, s, n, c));
        const GnsVec a(k.a), b(k.b);
        const float* xc = xg + d * s.L;
        float* yc = y + (i * s.D + d) * s.L;
        for (int64_t j = 0; j < s.L; j += kGnsLanes) {
          const int64_t m = std::min(kGnsLanes, s.L - j);
          const GnsVec z = at::vec::fmadd(gns_load(xc + j, m), a, b);
          (z * gns_sigmoid(z)).store(yc + j, int(m));
        }
      }
    }
  });
}

// Backward. With g = ∂L/∂x̂ = dz·γ and every mean over the group's M elements, GroupNorm's
// backward is (x̂ = (h − μ) r, ∂μ/∂h_j = 1/M, ∂r/∂h_j = −r³ (h_j − μ)/M = −r² x̂_j / M):
//   dh_j = Σ_i g_i ∂x̂_i/∂h_j = Σ_i g_i [r (δ_ij − 1/M) + (h_i − μ) ∂r/∂h_j]
//        = r g_j − r mean(g) − r x̂_j mean(g·x̂)
//        = r (g_j − mean(g) − x̂_j mean(g·x̂)),
// and SiLU's derivative is y'(z) = σ(z) + z σ(z)(1 − σ(z)) = σ(z)(1 + z (1 − σ(z))), so
//   dz = dy·σ(z)(1 + z(1 − σ(z))),  dγ_c = Σ_{n, hw} dz·x̂,  dβ_c = Σ_{n, hw} dz,
//   dx = dh (h = x + shift),  d(channel_bias)_{n,c} = Σ_hw dh.
// Per group: sweep 1 recomputes z, x̂ (one e^x per element), writes dz into dx and sums, per
// channel, S_c = Σ_hw dz and P_c = Σ_hw dz·x̂ (so mean(g) = Σ_c γ_c S_c / M and
// mean(g·x̂) = Σ_c γ_c P_c / M); sweep 2 turns dz into
//   dx = r γ_c dz + k x + o_c,  k = −r² mean(g·x̂),  o_c = −r mean(g) + k (shift_c − μ)
// in place, summing it for d(channel_bias). S and P are kept per (n, c) and summed over n
// afterwards, serially: results do not depend on the number of threads.
void gns_backward_kernel(const GnsTensors& t, const GnsShape& s, const float* dy, float* dx,
                         float* dgamma, float* dbeta, float* dshift) {
  const double M = double(s.D * s.L);
  std::vector<double> S(size_t(s.N * s.C)), P(size_t(s.N * s.C));
  at::parallel_for(0, s.N * s.G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / s.G, c0 = (i % s.G) * s.D;
      const double mu = t.mean[i], r = t.rstd[i];
      double mean_g = 0.0, mean_gx = 0.0;
      for (int64_t d = 0; d < s.D; ++d) {  // sweep 1: dz, S_c, P_c
        const int64_t c = c0 + d, off = (i * s.D + d) * s.L;
        const GnsAffine k = gns_affine(mu, r, t.gamma[c], t.beta[c], gns_shift(t, s, n, c));
        const GnsVec a(k.a), b(k.b), xr(k.xr), xo(k.xo), one(1.0f);
        double sum_dz = 0.0, sum_dzx = 0.0;
        for (int64_t ch = 0; ch < s.L; ch += kGnsChunk) {
          const int64_t ch_end = std::min(s.L, ch + kGnsChunk);
          GnsVec acc_dz(0.0f), acc_dzx(0.0f);
          for (int64_t j = ch; j < ch_end; j += kGnsLanes) {
            const int64_t m = std::min(kGnsLanes, ch_end - j);
            const GnsVec xv = gns_load(t.x + off + j, m);
            const GnsVec z = at::vec::fmadd(xv, a, b);
            const GnsVec sg = gns_sigmoid(z);
            const GnsVec dz = gns_head(gns_load(dy + off + j, m) * sg * (one + z * (one - sg)), m);
            dz.store(dx + off + j, int(m));
            acc_dz = acc_dz + dz;
            acc_dzx = at::vec::fmadd(dz, at::vec::fmadd(xv, xr, xo), acc_dzx);
          }
          sum_dz += gns_hsum(acc_dz);
          sum_dzx += gns_hsum(acc_dzx);
        }
        S[size_t(n * s.C + c)] = sum_dz;
        P[size_t(n * s.C + c)] = sum_dzx;
        mean_g += double(t.gamma[c]) * sum_dz;
        mean_gx += double(t.gamma[c]) * sum_dzx;
      }
      mean_g /= M;
      mean_gx /= M;
      const double k = -r * r * mean_gx;
      for (int64_t d = 0; d < s.D; ++d) {  // sweep 2: dx = r γ_c dz + k x + o_c, Σ dx
        const int64_t c = c0 + d, off = (i * s.D + d) * s.L;
        const GnsVec a(float(r * t.gamma[c])), kv{float(k)};
        const GnsVec o(float(-r * mean_g + k * (gns_shift(t, s, n, c) - mu)));
        double sum_dx = 0.0;
        for (int64_t ch = 0; ch < s.L; ch += kGnsChunk) {
          const int64_t ch_end = std::min(s.L, ch + kGnsChunk);
          GnsVec acc(0.0f);
          for (int64_t j = ch; j < ch_end; j += kGnsLanes) {
            const int64_t m = std::min(kGnsLanes, ch_end - j);
            const GnsVec v = at::vec::fmadd(a, gns_load(dx + off + j, m),
                                            at::vec::fmadd(kv, gns_load(t.x + off + j, m), o));
            v.store(dx + off + j, int(m));
            acc = acc + gns_head(v, m);
          }
          sum_dx += gns_hsum(acc);
        }
        if (dshift) dshift[n * s.C + c] = float(sum_dx);
      }
    }
  });
  for (int64_t c = 0; c < s.C; ++c) {
    double sum_s = 0.0, sum_p = 0.0;
    for (int64_t n = 0; n < s.N; ++n) {
      sum_s += S[size_t(n * s.C + c)];
      sum_p += P[size_t(n * s.C + c)];
    }
    dbeta[c] = float(sum_s);
    dgamma[c] = float(sum_p);
  }
}

// ---------------------------------------------------------------- autograd
// Saved for backward: x, γ, β, the (N, G) float64 μ and r, and channel_bias when given — not x̂,
// z nor y (recomputed), which is the memory the fusion saves. First derivatives only.
struct GroupNormSiLU : public torch::autograd::Function<GroupNormSiLU> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t groups,
                            const at::Tensor& weight, const at::Tensor& bias, double eps,
                            const c10::optional<at::Tensor>& channel_bias) {
    // A named range for the profiler (bench_train_throughput --profile); backward shows as the
    // autograd node CppNode<GroupNormSiLU>.
    RECORD_FUNCTION("diffuse::group_norm_silu", std::vector<c10::IValue>());
    const GnsShape s = gns_shape(x, groups);
    const bool has_shift = channel_bias.has_value() && channel_bias->defined();
    auto mean = at::empty({s.N, s.G}, x.options().dtype(at::kDouble));
    auto rstd = at::empty({s.N, s.G}, x.options().dtype(at::kDouble));
    auto y = at::empty(x.sizes(), x.options());
    const GnsTensors t{x.data_ptr<float>(), weight.data_ptr<float>(), bias.data_ptr<float>(),
                       has_shift ? channel_bias->data_ptr<float>() : nullptr,
                       mean.data_ptr<double>(), rstd.data_ptr<double>()};
    gns_forward_kernel(t, s, eps, y.data_ptr<float>());
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["has_channel_bias"] = has_shift;
    // (channel_bias only when given: the list holds no undefined tensors)
    if (has_shift)
      ctx->save_for_backward({x, weight, bias, mean, rstd, *channel_bias});
    else
      ctx->save_for_backward({x, weight, bias, mean, rstd});
    return y;
  }

  // grad_out: {dL/dy}. Returns one entry per forward argument after ctx: dx, (groups), dγ, dβ,
  // (eps), d(channel_bias) — undefined for the non-tensors and for an absent channel_bias.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    // The engine enables grad mode in backward only for create_graph = true; the kernel below
    // records no graph, so a second derivative would silently come out as zero.
    if (c10::GradMode::is_enabled())
      throw Error("group_norm_silu: the fused kernel has no double backward (create_graph = true)",
                  "call set_fused_group_norm_silu(false) to differentiate through the unfused ops");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &bias = saved[2], &mean = saved[3],
                     &rstd = saved[4];
    const bool has_shift = ctx->saved_data["has_channel_bias"].toBool();
    const at::Tensor shift = has_shift ? saved[5] : at::Tensor();
    const GnsShape s = gns_shape(x, ctx->saved_data["groups"].toInt());
    const auto dy = grad_out[0].to(at::kFloat).contiguous();
    auto dx = at::empty(x.sizes(), x.options());
    auto dweight = at::empty({s.C}, weight.options());
    auto dbias = at::empty({s.C}, bias.options());
    auto dshift = has_shift ? at::empty({s.N, s.C}, shift.options()) : at::Tensor();
    const GnsTensors t{x.data_ptr<float>(), weight.data_ptr<float>(), bias.data_ptr<float>(),
                       has_shift ? shift.data_ptr<float>() : nullptr,
                       mean.data_ptr<double>(), rstd.data_ptr<double>()};
    gns_backward_kernel(t, s, dy.data_ptr<float>(), dx.data_ptr<float>(), dweight.data_ptr<float>(),
                        dbias.data_ptr<float>(), has_shift ? dshift.data_ptr<float>() : nullptr);
    return {dx, at::Tensor(), dweight, dbias, at::Tensor(), dshift};
  }
};

}  // namespace

torch::Tensor group_norm_silu(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias, double eps, const torch::Tensor& channel_bias) {
  gns_check(x, groups, weight, bias, channel_bias);
  if (!gns_fusable(x, weight, bias, channel_bias))
    return gns_unfused(x, groups, weight, bias, eps, channel_bias);
  c10::optional<at::Tensor> shift;  // an optional, so that an absent one is no autograd input
  if (channel_bias.defined()) shift = channel_bias;
  return GroupNormSiLU::apply(x, groups, weight, bias, eps, shift);
}

torch::Tensor group_norm_any_layout(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                    const torch::Tensor& bias, double eps) {
  const auto dt = x.scalar_type();
  auto in_dtype = [dt](const at::Tensor& p) { return !p.defined() || p.scalar_type() == dt ? p : p.to(dt); };
  const bool cl = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  auto y = at::group_norm(cl ? x.contiguous() : x, groups, in_dtype(weight), in_dtype(bias), eps);
  return cl ? y.contiguous(at::MemoryFormat::ChannelsLast) : y;
}

void set_fused_group_norm_silu(bool enabled) { g_gns_fused.store(enabled); }

bool fused_group_norm_silu() { return g_gns_fused.load(); }

}  // namespace diffuse
