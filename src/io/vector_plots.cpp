#include <torch/torch.h>

#include <cmath>

#include "diffuse/error.hpp"
#include "diffuse/vector_plots.hpp"

namespace diffuse {

namespace {
std::vector<double> column(const torch::Tensor& x, int64_t j, int64_t n) {
  auto c = x.index({torch::indexing::Slice(0, n), j}).to(torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}
}  // namespace

plot::Panel vector_panel(const torch::Tensor& x_in, const std::string& title, int max_curves,
                         int max_points) {
  auto x = x_in.detach().to(torch::kCPU, torch::kFloat64);
  if (x.dim() != 2) throw Error("vector_panel expects (N, D) data");
  plot::Panel p;
  p.title = title;
  p.legend = false;
  if (x.size(1) == 2) {
    const int64_t n = std::min<int64_t>(x.size(0), max_points);
    plot::Series s;
    s.style = plot::SeriesStyle::Points;
    s.x = column(x, 0, n);
    s.y = column(x, 1, n);
    s.width = 0.5;
    s.color = 0;
    p.series.push_back(std::move(s));
    p.xlabel = "x₁";
    p.ylabel = "x₂";
    p.equal_aspect = true;
  } else {
    const int64_t n = std::min<int64_t>(x.size(0), max_curves), d = x.size(1);
    for (int64_t i = 0; i < n; ++i) {
      plot::Series s;
      s.x = plot::linspace(0, double(d - 1), int(d));
      auto row = x[i].contiguous();
      s.y.assign(row.data_ptr<double>(), row.data_ptr<double>() + d);
      s.width = 1.2;
      p.series.push_back(std::move(s));
    }
    p.xlabel = "dimension";
    p.ylabel = "value";
  }
  return p;
}

void save_process_figure(const std::string& path, const std::string& title,
                         const std::vector<Snapshot>& snaps, bool histograms) {
  plot::Figure f;
  f.title = title;
  f.cols = int(snaps.size());
  // A common range so that panels compare.
  double lim = 0;
  for (const auto& s : snaps) lim = std::max(lim, s.x.abs().max().item<double>());
  lim = std::min(std::max(lim, 1.0) * 1.05, 50.0);
  for (const auto& s : snaps) {
    auto p = vector_panel(s.x, s.title);
    p.ylim = std::make_pair(-lim, lim);
    if (s.x.size(1) == 2) p.xlim = std::make_pair(-lim, lim);
    f.panels.push_back(std::move(p));
  }
  if (histograms) {
    const double hl = std::max(4.0, std::min(lim, 8.0));
    auto grid = plot::linspace(-hl, hl, 200);
    for (const auto& s : snaps) {
      auto flat = s.x.detach().to(torch::kCPU, torch::kFloat64).flatten().contiguous();
      std::vector<double> v(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
      plot::Panel p;
      p.title = "values at " + s.title;
      p.xlabel = "value";
      p.ylabel = "density";
      p.series.push_back(plot::histogram(v, 60, -hl, hl, true, "data"));
      plot::Series pdf;
      pdf.label = "N(0, 1)";
      pdf.x = grid;
      for (double g : grid) pdf.y.push_back(std::exp(-0.5 * g * g) / std::sqrt(2 * std::acos(-1.0)));
      pdf.color = 3;
      p.series.push_back(std::move(pdf));
      f.panels.push_back(std::move(p));
    }
  }
  f.width = 300 * f.cols;
  f.height = histograms ? 600 : 320;
  plot::save_png(f, path);
}

void save_samples_figure(const std::string& path, const torch::Tensor& samples,
                         const torch::Tensor& data) {
  plot::Figure f;
  f.panels.push_back(vector_panel(samples, "generated samples"));
  f.panels.push_back(vector_panel(data, "fresh data"));
  auto lim = std::max(samples.abs().max().item<double>(), data.abs().max().item<double>()) * 1.05;
  lim = std::min(lim, 50.0);
  for (auto& p : f.panels) {
    p.ylim = std::make_pair(-lim, lim);
    if (samples.size(1) == 2) p.xlim = std::make_pair(-lim, lim);
  }
  f.width = 1000;
  f.height = 480;
  plot::save_png(f, path);
}

}  // namespace diffuse
