// Covariance spectra, the SVD reshaping of white noise (seed 002's appendix) and the
// spectrum figure; see spectrum.hpp for the formulas.
#include "diffuse/spectrum.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "diffuse/error.hpp"
#include "diffuse/plot.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse {

// ---------------------------------------------------------------- spectra ----
namespace spectrum_impl {

std::string shape_str(const torch::Tensor& t) { return c10::str(t.sizes()); }

// Σ = U diag(λ) Uᵀ from eigh, reordered so that λ₁ ≥ … ≥ λ_D, λ clamped at 0
// (rounding makes the smallest eigenvalues of a PSD matrix slightly negative).
void eigen_descending(Spectrum& s) {
  auto sym = 0.5 * (s.cov + s.cov.t());
  auto [lambda, U] = torch::linalg::eigh(sym, "L");  // ascending
  s.eigenvalues = lambda.flip(0).clamp_min(0).contiguous();
  s.eigenvectors = U.flip(1).contiguous();
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace spectrum_impl

Spectrum spectrum_of(const torch::Tensor& x) {
  if (!x.defined() || x.dim() != 2 || x.size(0) < 2 || x.size(1) < 1)
    throw Error("a spectrum needs (N, D) vectors with N >= 2, got " +
                (x.defined() ? spectrum_impl::shape_str(x) : std::string("nothing")));
  auto f = x.detach().to(torch::kCPU, torch::kFloat64);
  if (!torch::isfinite(f).all().item<bool>()) throw Error("the vectors hold NaN or infinite values");
  Spectrum s;
  s.n = f.size(0);
  s.mean = f.mean(0);
  auto c = f - s.mean;                                     // X − μ̂   (N, D)
  s.cov = torch::matmul(c.t(), c) / double(s.n - 1);        // Σ̂ = (X − μ̂)ᵀ(X − μ̂)/(N − 1)
  spectrum_impl::eigen_descending(s);
  return s;
}

Spectrum spectrum_of_gaussian(const torch::Tensor& mean, const torch::Tensor& cov) {
  if (mean.dim() != 1 || cov.dim() != 2 || cov.size(0) != mean.size(0) || cov.size(1) != mean.size(0))
    throw Error("a Gaussian needs mean (D) and cov (D, D), got " + spectrum_impl::shape_str(mean) + " and " +
                spectrum_impl::shape_str(cov));
  Spectrum s;
  s.mean = mean.to(torch::kCPU, torch::kFloat64);
  s.cov = cov.to(torch::kCPU, torch::kFloat64);
  spectrum_impl::eigen_descending(s);
  return s;
}

int64_t effective_rank(const torch::Tensor& eigenvalues, double fraction) {
  if (!(fraction > 0 && fraction <= 1)) throw Error("the rank fraction must be in (0, 1]");
  auto lam = std::get<0>(eigenvalues.to(torch::kFloat64).clamp_min(0).sort(0, true));
  const double total = lam.sum().item<double>();
  if (total <= 0) return 0;
  // smallest k with Σ_{i≤k} λᵢ ≥ fraction · Σᵢ λᵢ (a relative 1e-12 slack for rounding at fraction = 1)
  auto cum = spectrum_impl::to_doubles(lam.cumsum(0));
  for (size_t k = 0; k < cum.size(); ++k)
    if (cum[k] >= fraction * total * (1 - 1e-12)) return int64_t(k + 1);
  return int64_t(cum.size());
}

SpectrumSummary summarize(const Spectrum& s, double fraction) {
  SpectrumSummary r;
  r.rank_fraction = fraction;
  r.effective_rank = effective_rank(s.eigenvalues, fraction);
  r.total_variance = s.eigenvalues.sum().item<double>();           // tr Σ = Σᵢ λᵢ
  r.top_eigenvalue = s.eigenvalues.max().item<double>();           // λ₁
  const double sq = s.eigenvalues.pow(2).sum().item<double>();
  r.participation_ratio = sq > 0 ? r.total_variance * r.total_variance / sq : 0;  // (Σλ)²/Σλ²
  return r;
}

double relative_spectrum_error(const torch::Tensor& eig_a, const torch::Tensor& eig_b) {
  if (eig_a.numel() != eig_b.numel())
    throw Error("spectra of different sizes: " + std::to_string(eig_a.numel()) + " and " +
                std::to_string(eig_b.numel()));
  auto a = std::get<0>(eig_a.to(torch::kFloat64).flatten().sort(0, true));
  auto b = std::get<0>(eig_b.to(torch::kFloat64).flatten().sort(0, true));
  const double ref = b.abs().sum().item<double>();
  if (ref <= 0) throw Error("the reference spectrum is zero");
  return (a - b).abs().sum().item<double>() / ref;  // Σ|λᵢ(a) − λᵢ(b)| / Σλᵢ(b)
}

std::pair<double, double> marchenko_pastur_edges(int64_t n, int64_t dim) {
  if (n < 1 || dim < 1) throw Error("Marchenko–Pastur edges need n, dim >= 1");
  const double r = std::sqrt(double(dim) / double(n));  // √(D/N)
  return {std::pow(std::max(0.0, 1 - r), 2), std::pow(1 + r, 2)};
}

torch::Tensor reshape_noise(const Spectrum& target, const torch::Tensor& z) {
  if (z.dim() != 2 || z.size(1) != target.dim())
    throw Error("noise of shape " + spectrum_impl::shape_str(z) + " cannot be reshaped to a " +
                std::to_string(target.dim()) + "-dimensional covariance");
  auto zf = z.to(torch::kCPU, torch::kFloat64);
  // Row form of x = μ + U Λ^{1/2} z:  x_rowᵀ = zᵀ Λ^{1/2} Uᵀ + μᵀ, i.e. X = Z (U Λ^{1/2})ᵀ + μ.
  auto A = target.eigenvectors * target.eigenvalues.sqrt();  // U Λ^{1/2}  (D, D), column i scaled by √λᵢ
  return torch::matmul(zf, A.t()) + target.mean;
}

torch::Tensor match_covariance(const torch::Tensor& x, const Spectrum& target) {
  auto src = spectrum_of(x);
  if (src.dim() != target.dim())
    throw Error("vectors of dimension " + std::to_string(src.dim()) + " cannot take a " +
                std::to_string(target.dim()) + "-dimensional covariance");
  // C = V Λ Vᵀ must be invertible: Ψ = (Λ₁ Λ⁻¹)^{1/2}.
  const double lmin = src.eigenvalues.min().item<double>(), lmax = src.eigenvalues.max().item<double>();
  if (!(lmin > 1e-12 * std::max(lmax, 1e-300)))
    throw Error("the covariance of the " + std::to_string(src.n) + " vectors is singular",
                "use more vectors than dimensions (" + std::to_string(src.dim()) + ")");
  auto psi = (target.eigenvalues / src.eigenvalues).sqrt();                 // diag Ψ
  auto c = x.to(torch::kCPU, torch::kFloat64) - src.mean;                   // X − μ̂
  // f(X) = (X − μ̂) V Ψ V₁ᵀ + μ₁
  return torch::matmul(torch::matmul(c, src.eigenvectors) * psi, target.eigenvectors.t()) + target.mean;
}

SpectrumAnalysis analyze_spectrum(const torch::Tensor& data, const torch::Tensor& noise,
                                  const torch::Tensor& samples) {
  SpectrumAnalysis a;
  a.data = data.to(torch::kCPU, torch::kFloat64);
  a.noise = noise.to(torch::kCPU, torch::kFloat64);
  a.data_spectrum = spectrum_of(a.data);
  a.noise_spectrum = spectrum_of(a.noise);
  if (a.noise.size(1) != a.data.size(1))
    throw Error("noise of dimension " + std::to_string(a.noise.size(1)) + " for data of dimension " +
                std::to_string(a.data.size(1)));
  a.reshaped = reshape_noise(a.data_spectrum, a.noise);
  a.reshaped_spectrum = spectrum_of(a.reshaped);
  if (samples.defined()) {
    a.samples = samples.to(torch::kCPU, torch::kFloat64);
    if (a.samples.dim() != 2 || a.samples.size(1) != a.data.size(1))
      throw Error("samples of shape " + spectrum_impl::shape_str(a.samples) + " for data of dimension " +
                  std::to_string(a.data.size(1)));
    a.samples_spectrum = spectrum_of(a.samples);
  }
  return a;
}

// ---------------------------------------------------------------- figure -----
namespace spectrum_impl {

constexpr int64_t kMaxHeatmapSide = 200;  // larger covariances are shown as block means
constexpr int64_t kMinHeatmapSide = 64;   // smaller ones with repeated cells (the plotter interpolates)
constexpr double kSpectrumFloor = 1e-10;  // eigenvalues below this × the largest are not drawn

// A (D, D) matrix as a heatmap, block-averaged to at most kMaxHeatmapSide per side.
plot::Panel cov_panel(const torch::Tensor& cov, const std::string& title) {
  auto m = cov;
  const int64_t d = cov.size(0), k = (d + kMaxHeatmapSide - 1) / kMaxHeatmapSide;
  plot::Panel p;
  p.title = title;
  p.xlabel = "dimension";
  p.ylabel = "dimension";
  p.legend = false;
  if (d < kMinHeatmapSide) {  // small matrices: repeat each cell, so that it is drawn as a square
    const int64_t r = (kMinHeatmapSide + d - 1) / d;
    m = cov.repeat_interleave(r, 0).repeat_interleave(r, 1);
  } else if (k > 1) {
    m = torch::nn::functional::avg_pool2d(
            cov.view({1, 1, d, d}), torch::nn::functional::AvgPool2dFuncOptions(k).stride(k).ceil_mode(true))
            .squeeze();
  }
  // Axes in dimensions (also when pooled): with an explicit y range (d … 0, downwards)
  // the plotter puts the last row at the top, so the rows are handed over reversed.
  plot::Heatmap h;
  h.rows = int(m.size(0));
  h.cols = int(m.size(1));
  h.values = to_doubles(m.flip(0));
  h.title = k > 1 ? "covariance, " + std::to_string(k) + "×" + std::to_string(k) + " block means" : "covariance";
  p.heatmap = std::move(h);
  p.xlim = std::make_pair(0.0, double(d));
  p.ylim = std::make_pair(double(d), 0.0);
  p.equal_aspect = true;
  return p;
}

// Up to 6 flattened images (C, H, W) tiled 2 × 3 in one heatmap (channels averaged).
plot::Panel image_panel(const torch::Tensor& x, const std::vector<int64_t>& shape, const std::string& title) {
  const int64_t n = std::min<int64_t>(x.size(0), 6), cols = std::min<int64_t>(n, 3), rows = (n + cols - 1) / cols;
  const int64_t H = shape[1], W = shape[2], gap = 1;
  auto imgs = x.slice(0, 0, n).view({n, shape[0], H, W}).mean(1);  // (n, H, W)
  const double lo = imgs.min().item<double>();
  auto canvas = torch::full({rows * (H + gap) - gap, cols * (W + gap) - gap}, lo, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / cols, c = i % cols;
    canvas.slice(0, r * (H + gap), r * (H + gap) + H).slice(1, c * (W + gap), c * (W + gap) + W).copy_(imgs[i]);
  }
  plot::Panel p;
  p.title = title;
  p.legend = false;
  plot::Heatmap h;
  h.rows = int(canvas.size(0));
  h.cols = int(canvas.size(1));
  h.values = to_doubles(canvas);
  h.title = "value";
  p.heatmap = std::move(h);
  p.equal_aspect = true;
  return p;
}

plot::Panel vectors_panel(const SpectrumAnalysis& a, const torch::Tensor& x, const std::string& title,
                          bool data_range) {
  if (!a.image_shape.empty()) return image_panel(x, a.image_shape, title);
  auto p = vector_panel(x, title, 6, 1000);
  if (data_range) {  // data, reshaped noise and samples on the data's range, so that they compare
    const double lo = a.data.min().item<double>(), hi = a.data.max().item<double>(), pad = 0.15 * (hi - lo + 1e-12);
    p.ylim = std::make_pair(lo - pad, hi + pad);
    if (x.size(1) == 2) {
      const double xl = a.data.select(1, 0).min().item<double>(), xh = a.data.select(1, 0).max().item<double>();
      const double xp = 0.15 * (xh - xl + 1e-12);
      p.xlim = std::make_pair(xl - xp, xh + xp);
      p.ylim = std::make_pair(a.data.select(1, 1).min().item<double>() - pad,
                              a.data.select(1, 1).max().item<double>() + pad);
    }
  }
  return p;
}

plot::Series spectrum_series(const Spectrum& s, double floor, const std::string& label, int color,
                             plot::SeriesStyle style = plot::SeriesStyle::Line) {
  plot::Series r;
  r.x = plot::linspace(1, double(s.dim()), int(s.dim()));
  r.y = to_doubles(s.eigenvalues);
  for (double& v : r.y)
    if (v < floor) v = NAN;  // numerically zero for a log axis: not drawn (breaks the line)
  r.label = label;
  r.color = color;
  r.style = style;
  r.width = style == plot::SeriesStyle::Points ? 0.8 : 1.8;
  return r;
}

plot::Series cumulative_series(const Spectrum& s, const std::string& label, int color) {
  plot::Series r;
  const double total = std::max(s.eigenvalues.sum().item<double>(), 1e-300);
  r.x = plot::linspace(0, double(s.dim()), int(s.dim()) + 1);
  r.y = to_doubles(torch::cat({torch::zeros({1}, torch::kFloat64), s.eigenvalues.cumsum(0) / total}));
  r.label = label;
  r.color = color;
  return r;
}

std::string rank_label(const std::string& name, const Spectrum& s, double fraction) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s (rank%s %lld)", name.c_str(), fraction == 0.99 ? "₉₉" : "",
                (long long)effective_rank(s.eigenvalues, fraction));
  return buf;
}

}  // namespace spectrum_impl

void save_spectrum_figure(const std::string& path, const SpectrumAnalysis& a, double fraction) {
  using namespace spectrum_impl;
  const bool with_samples = a.samples.defined();
  const int64_t D = a.data_spectrum.dim();
  enum { kData = 0, kNoise = 1, kReshaped = 2, kSamples = 3 };  // palette indices (tab10)

  plot::Figure f;
  f.title = a.title;
  f.cols = with_samples ? 5 : 4;
  // Row 1: covariance heatmaps and the spectra.
  f.panels.push_back(cov_panel(a.data_spectrum.cov, "data covariance"));
  f.panels.push_back(cov_panel(a.noise_spectrum.cov, "white-noise covariance"));
  f.panels.push_back(cov_panel(a.reshaped_spectrum.cov, "reshaped-noise covariance"));
  if (with_samples) f.panels.push_back(cov_panel(a.samples_spectrum.cov, "generated-sample covariance"));

  plot::Panel spec;
  spec.title = "eigenvalue spectra λᵢ";
  spec.xlabel = "index i (descending)";
  spec.logy = true;
  double top = std::max(a.data_spectrum.eigenvalues.max().item<double>(),
                        a.noise_spectrum.eigenvalues.max().item<double>());
  if (with_samples) top = std::max(top, a.samples_spectrum.eigenvalues.max().item<double>());
  const double floor = top * kSpectrumFloor;
  double lowest = top;  // the smallest eigenvalue drawn
  for (const Spectrum* sp : {&a.data_spectrum, &a.noise_spectrum, &a.reshaped_spectrum, &a.samples_spectrum})
    if (sp->eigenvalues.defined()) {
      auto drawn = sp->eigenvalues.masked_select(sp->eigenvalues >= floor);
      if (drawn.numel() > 0) lowest = std::min(lowest, drawn.min().item<double>());
    }
  spec.ylim = std::make_pair(std::max(floor, lowest / 3), top * 3);
  spec.series.push_back(spectrum_series(a.data_spectrum, floor, rank_label("data", a.data_spectrum, fraction), kData));
  spec.series.push_back(
      spectrum_series(a.noise_spectrum, floor, rank_label("white noise", a.noise_spectrum, fraction), kNoise));
  spec.series.push_back(spectrum_series(a.reshaped_spectrum, floor, "reshaped noise", kReshaped,
                                        plot::SeriesStyle::Points));
  if (with_samples)
    spec.series.push_back(
        spectrum_series(a.samples_spectrum, floor, rank_label("samples", a.samples_spectrum, fraction), kSamples));
  f.panels.push_back(std::move(spec));

  // Row 2: a few vectors of each set, and the cumulative explained variance.
  f.panels.push_back(vectors_panel(a, a.data, "data", true));
  f.panels.push_back(vectors_panel(a, a.noise, "white noise z ~ N(0, I)", false));
  f.panels.push_back(vectors_panel(a, a.reshaped, "reshaped noise μ + U Λ^½ z", true));
  if (with_samples) f.panels.push_back(vectors_panel(a, a.samples, "generated samples", true));

  plot::Panel cum;
  cum.title = "cumulative explained variance";
  cum.xlabel = "number of eigenvalues k";
  cum.ylabel = "Σᵢ≤ₖ λᵢ / Σ λᵢ";
  cum.ylim = std::make_pair(0.0, 1.05);
  cum.xlim = std::make_pair(0.0, double(D));
  cum.series.push_back(cumulative_series(a.data_spectrum, "data", kData));
  cum.series.push_back(cumulative_series(a.noise_spectrum, "white noise", kNoise));
  if (with_samples) cum.series.push_back(cumulative_series(a.samples_spectrum, "samples", kSamples));
  plot::Series level;
  level.x = {0.0, double(D)};
  level.y = {fraction, fraction};
  level.color = 7;
  level.width = 1.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g%% of the variance", fraction * 100);
  level.label = buf;
  cum.series.push_back(std::move(level));
  f.panels.push_back(std::move(cum));
  plot::save_png(f, path);
}

}  // namespace diffuse
