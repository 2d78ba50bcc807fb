// src/io/plot.cpp - PLplot (pngcairo) backend for diffuse/plot.hpp.
//
// PLplot quirks handled here: errors inside plinit (unknown device, unopenable
// output file) prompt on stdin or call exit(), so both are checked beforehand;
// PLplot's global stream table is not thread-safe, so calls are serialised.
#include "diffuse/plot.hpp"
#include "diffuse/io.hpp"

#include <plstream.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace diffuse::plot {
namespace {

using Range = std::pair<double, double>;

// cmap0 slots: fixed style colours, then one slot per series (for alpha).
constexpr int kBg = 0, kFg = 1, kGrid = 2, kFrame = 3, kLegendBg = 4, kSeries = 16;
constexpr int kTab10[10][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                               {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                               {188, 189, 34},  {23, 190, 207}};
// Layout in pixels.
constexpr double kFontPx = 12.5, kLeftPx = 74, kRightPx = 18, kBottomPx = 54, kTopPx = 34,
                 kColorbarPx = 82, kFigTitlePx = 38;
const char* const kDot = "\u25CF";  // BLACK CIRCLE; Hershey "#(727)" renders as an x with cairo

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error("plot: " + msg); }

bool finite(double v) { return std::isfinite(v); }

// Series y in window coordinates (log10 for log axes; NaN when not drawable).
std::vector<double> window_y(const Series& s, bool logy) {
  std::vector<double> y(s.y);
  if (logy)
    for (double& v : y) v = v > 0 ? std::log10(v) : NAN;
  return y;
}

// Range of the finite values with a 5% margin; degenerate ranges are widened.
Range padded(double lo, double hi) {
  if (!(lo <= hi)) return {0.0, 1.0};
  double m = hi - lo < 1e-12 * std::max(1.0, std::abs(lo)) ? std::max(0.5, 0.05 * std::abs(lo))
                                                           : 0.05 * (hi - lo);
  return {lo - m, hi + m};
}

void validate(const Figure& fig, const std::string& path) {
  if (path.empty()) fail("empty output path");
  if (fig.panels.empty()) fail("figure has no panels");
  if (fig.width < 0 || fig.height < 0 || fig.width > 20000 || fig.height > 20000)
    fail("invalid figure size " + std::to_string(fig.width) + "x" + std::to_string(fig.height));
  for (size_t p = 0; p < fig.panels.size(); ++p) {
    const Panel& pan = fig.panels[p];
    std::string where = "panel " + std::to_string(p) + " ('" + pan.title + "')";
    if (pan.series.empty() && !pan.heatmap) fail(where + " has neither series nor heatmap");
    for (const Series& s : pan.series)
      if (s.x.size() != s.y.size())
        fail(where + ": series '" + s.label + "' has " + std::to_string(s.x.size()) + " x but " +
             std::to_string(s.y.size()) + " y values");
    for (const auto& lim : {pan.xlim, pan.ylim})
      if (lim && !(finite(lim->first) && finite(lim->second) && lim->first != lim->second))
        fail(where + ": axis limits must be finite and distinct");
    if (pan.logy && pan.ylim && (pan.ylim->first <= 0 || pan.ylim->second <= 0))
      fail(where + ": log y axis needs positive ylim");
    if (const auto& h = pan.heatmap)
      if (h->rows <= 0 || h->cols <= 0 || h->values.size() != size_t(h->rows) * size_t(h->cols))
        fail(where + ": heatmap has " + std::to_string(h->values.size()) + " values for " +
             std::to_string(h->rows) + "x" + std::to_string(h->cols));
  }
}

class Renderer {
 public:
  Renderer(plstream& pls, double width, double height) : pls_(pls), w_(width), h_(height) {}

  void draw(const Panel& pan, double x0, double y0, double x1, double y1);  // cell in px, y down

 private:
  void font(double scale) { pls_.schr(0, scale); }
  void draw_heatmap(const Heatmap& hm, const Range& xr, const Range& yr, bool flipped);
  void draw_series(const Series& s, int slot, bool logy, double base);
  void draw_legend(const Panel& pan, const std::vector<int>& slots, const Range& xr,
                   const Range& yr);

  plstream& pls_;
  double w_, h_;  // page size in pixels
};

void Renderer::draw(const Panel& pan, double x0, double y0, double x1, double y1) {
  // Window ranges: explicit limits, heatmap extent, else data (+5% margin).
  const Heatmap* hm = pan.heatmap ? &*pan.heatmap : nullptr;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Series& s : pan.series) {
    std::vector<double> ys = window_y(s, pan.logy);
    bool steps = s.style == SeriesStyle::Steps;  // bin edges count even where y is empty
    for (size_t i = 0; i < ys.size(); ++i) {
      if (!finite(s.x[i]) || !(steps || finite(ys[i]))) continue;
      xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
      if (finite(ys[i]) && !(steps && i + 1 == ys.size()))
        ylo = std::min(ylo, ys[i]), yhi = std::max(yhi, ys[i]);
    }
    if (steps && !pan.logy) ylo = std::min(ylo, 0.0), yhi = std::max(yhi, 0.0);
  }
  bool flipped = hm && !pan.ylim;  // matrix view: row 0 at the top, y grows downwards
  Range xr = pan.xlim ? *pan.xlim : hm ? Range{0.0, double(hm->cols)} : padded(xlo, xhi);
  Range yr = pan.ylim ? *pan.ylim : hm ? Range{double(hm->rows), 0.0} : padded(ylo, yhi);
  if (pan.logy && pan.ylim) yr = {std::log10(yr.first), std::log10(yr.second)};

  // Viewport inside the cell, in normalised device coordinates.
  double vx0 = x0 + kLeftPx, vx1 = x1 - kRightPx - (hm ? kColorbarPx : 0);
  double vy0 = y0 + (pan.title.empty() ? 14 : kTopPx), vy1 = y1 - kBottomPx;
  if (vx1 - vx0 < 20 || vy1 - vy0 < 20) fail("figure too small for its panels");
  if (pan.equal_aspect) {  // shrink one side so that data units are square
    double sx = (vx1 - vx0) / std::abs(xr.second - xr.first);
    double sy = (vy1 - vy0) / std::abs(yr.second - yr.first);
    double cx = (vx0 + vx1) / 2, cy = (vy0 + vy1) / 2, s = std::min(sx, sy);
    double hw = s * std::abs(xr.second - xr.first) / 2, hh = s * std::abs(yr.second - yr.first) / 2;
    vx0 = cx - hw, vx1 = cx + hw, vy0 = cy - hh, vy1 = cy + hh;
  }
  pls_.vpor(vx0 / w_, vx1 / w_, 1 - vy1 / h_, 1 - vy0 / h_);
  pls_.wind(xr.first, xr.second, yr.first, yr.second);
  font(1.0);

  std::string logopt = pan.logy ? "l" : "";
  if (hm) {
    draw_heatmap(*hm, xr, yr, flipped);
  } else {  // light grid below the data
    pls_.col0(kGrid), pls_.width(0.8), pls_.lsty(1);
    pls_.box("g", 0, 0, ("g" + logopt).c_str(), 0, 0);
  }
  std::vector<int> slots;
  int next = 0;
  double base = pan.logy ? std::min(yr.first, yr.second) : 0.0;
  for (size_t k = 0; k < pan.series.size(); ++k) {
    const Series& s = pan.series[k];
    int c = s.color >= 0 ? s.color % 10 : next++ % 10;
    int slot = kSeries + int(k);
    pls_.scol0a(slot, kTab10[c][0], kTab10[c][1], kTab10[c][2], std::clamp(s.alpha, 0.0, 1.0));
    slots.push_back(slot);
    draw_series(s, slot, pan.logy, base);
  }
  // Axes, ticks and labels on top, in black.
  pls_.col0(kFg), pls_.width(1.0), pls_.lsty(1);
  // A log y axis is labelled by hand at 1, 2, 5 × 10^k (only 10^k when that
  // makes too many), so that a range inside one decade still gets labels.
  size_t log_label_chars = 0;
  pls_.box("bcnst", 0, 0, (pan.logy ? "bcstvl" : "bcnstv"), 0, 0);
  if (pan.logy) {
    const double lo = std::min(yr.first, yr.second), hi = std::max(yr.first, yr.second);
    std::vector<double> at;
    for (int only_decades = 0; only_decades < 2 && (at.empty() || at.size() > 8); ++only_decades) {
      at.clear();
      for (int k = int(std::floor(lo)) - 1; k <= int(std::ceil(hi)) + 1; ++k)
        for (double m : {1.0, 2.0, 5.0}) {
          if (only_decades && m != 1.0) continue;
          const double v = std::log10(m) + k;
          if (v >= lo - 1e-9 && v <= hi + 1e-9) at.push_back(v);
        }
    }
    for (double v : at) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", std::pow(10.0, v));
      log_label_chars = std::max(log_label_chars, std::strlen(text));
      pls_.mtex("lv", 0.7, (v - yr.first) / (yr.second - yr.first), 1.0, text);
    }
  }
  PLINT digmax = 0, digits = 0;
  pls_.gyax(digmax, digits);
  if (!pan.xlabel.empty()) pls_.mtex("b", 3.1, 0.5, 0.5, pan.xlabel.c_str());
  if (!pan.ylabel.empty()) {  // clear the widest tick label
    double d = pan.logy ? double(std::max<size_t>(log_label_chars, 2)) : std::max<PLINT>(digits, 2);
    pls_.mtex("l", 1.6 + 0.62 * d, 0.5, 0.5, pan.ylabel.c_str());
  }
  if (!pan.title.empty()) font(1.1), pls_.mtex("t", 0.9, 0.5, 0.5, pan.title.c_str()), font(1.0);
  if (pan.legend) draw_legend(pan, slots, xr, yr);
}

void Renderer::draw_heatmap(const Heatmap& hm, const Range& xr, const Range& yr, bool flipped) {
  double zlo = INFINITY, zhi = -INFINITY;
  for (double v : hm.values)
    if (finite(v)) zlo = std::min(zlo, v), zhi = std::max(zhi, v);
  if (!(zlo < zhi)) zlo = finite(zlo) ? zlo - 0.5 : 0.0, zhi = zlo + 1.0;
  // PLplot indexes data[ix][iy] with iy = 0 at the lowest y of the extent.
  std::vector<double> buf(hm.values.size());
  std::vector<const PLFLT*> cols(hm.cols);
  for (int ix = 0; ix < hm.cols; ++ix) {
    for (int iy = 0; iy < hm.rows; ++iy) {
      int row = flipped ? iy : hm.rows - 1 - iy;
      double v = hm.values[size_t(row) * hm.cols + ix];
      buf[size_t(ix) * hm.rows + iy] = finite(v) ? v : zlo;
    }
    cols[ix] = &buf[size_t(ix) * hm.rows];
  }
  double ylo = std::min(yr.first, yr.second), yhi = std::max(yr.first, yr.second);
  pls_.image(cols.data(), hm.cols, hm.rows, xr.first, xr.second, ylo, yhi, zlo, zhi, xr.first,
             xr.second, ylo, yhi);
  // Colour bar to the right of the viewport (restores the viewport afterwards).
  PLFLT cw = 0, ch = 0, values[2] = {zlo, zhi}, ticks[1] = {0.0};
  PLINT label_opts[1] = {PL_COLORBAR_LABEL_RIGHT}, sub_ticks[1] = {0}, n_values[1] = {2};
  const char* labels[1] = {hm.title.c_str()};
  const char* axis_opts[1] = {"bcvtm"};
  const PLFLT* vals[1] = {values};
  font(0.9);
  pls_.colorbar(&cw, &ch, PL_COLORBAR_IMAGE,
                PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.03, 0.0, 0.045,
                1.0, kBg, kFg, 1, 0, 0, 0, 0, hm.title.empty() ? 0 : 1, label_opts, labels, 1,
                axis_opts, ticks, sub_ticks, n_values, vals);
  font(1.0);
}

void Renderer::draw_series(const Series& s, int slot, bool logy, double base) {
  std::vector<double> ys = window_y(s, logy);
  const size_t n = ys.size();
  pls_.col0(slot), pls_.width(s.width), pls_.lsty(1);
  if (s.style == SeriesStyle::Points) {
    std::vector<double> px, py;
    for (size_t i = 0; i < n; ++i)
      if (finite(s.x[i]) && finite(ys[i])) px.push_back(s.x[i]), py.push_back(ys[i]);
    font(0.4 * s.width);
    if (!px.empty()) pls_.string(PLINT(px.size()), px.data(), py.data(), kDot);
    font(1.0);
  } else if (s.style == SeriesStyle::Steps) {
    if (n < 2) return;
    std::vector<double> px{s.x[0]}, py{base};
    for (size_t i = 0; i + 1 < n; ++i) {
      double y = finite(ys[i]) ? ys[i] : base;
      px.insert(px.end(), {s.x[i], s.x[i + 1]}), py.insert(py.end(), {y, y});
    }
    px.push_back(s.x[n - 1]), py.push_back(base);
    pls_.line(PLINT(px.size()), px.data(), py.data());
  } else {  // Line: one polyline per run of finite points
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j < n && finite(s.x[j]) && finite(ys[j])) ++j;
      if (j - i >= 2) pls_.line(PLINT(j - i), &s.x[i], &ys[i]);
      i = j + 1;
    }
  }
}

void Renderer::draw_legend(const Panel& pan, const std::vector<int>& slots, const Range& xr,
                           const Range& yr) {
  std::vector<size_t> idx;
  for (size_t k = 0; k < pan.series.size(); ++k)
    if (!pan.series[k].label.empty()) idx.push_back(k);
  if (idx.empty()) return;
  // "Best" corner: the one covering the fewest data points.
  static const PLINT kCorners[4] = {
      PL_POSITION_TOP | PL_POSITION_RIGHT, PL_POSITION_TOP | PL_POSITION_LEFT,
      PL_POSITION_BOTTOM | PL_POSITION_RIGHT, PL_POSITION_BOTTOM | PL_POSITION_LEFT};
  int counts[4] = {0, 0, 0, 0};
  for (const Series& s : pan.series) {
    std::vector<double> ys = window_y(s, pan.logy);
    for (size_t i = 0; i < ys.size(); ++i) {
      double u = (s.x[i] - xr.first) / (xr.second - xr.first),
             v = (ys[i] - yr.first) / (yr.second - yr.first);
      if (!(u >= 0 && u <= 1 && v >= 0 && v <= 1)) continue;
      bool right = u > 0.55, left = u<0.45, top = v> 0.6, bottom = v < 0.4;
      counts[0] += top && right, counts[1] += top && left, counts[2] += bottom && right,
          counts[3] += bottom && left;
    }
  }
  int corner = int(std::min_element(counts, counts + 4) - counts);
  const size_t n = idx.size();
  std::vector<PLINT> opts(n), text_colors(n, kFg), colors(n), styles(n, 1), box_pat(n, 0),
      sym_num(n, 2);
  std::vector<PLFLT> widths(n), sym_scales(n), box_scales(n, 1.0), box_widths(n, 1.0);
  std::vector<const char*> text(n), symbols(n, kDot);
  for (size_t j = 0; j < n; ++j) {
    const Series& s = pan.series[idx[j]];
    opts[j] = s.style == SeriesStyle::Points ? PL_LEGEND_SYMBOL : PL_LEGEND_LINE;
    colors[j] = slots[idx[j]], widths[j] = s.width, sym_scales[j] = 0.4 * s.width;
    text[j] = s.label.c_str();
  }
  PLFLT lw = 0, lh = 0;
  pls_.col0(kFg), pls_.width(1.0), font(0.9);
  pls_.legend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
              kCorners[corner] | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.025, 0.03, 0.1,
              kLegendBg, kFrame, 1, PLINT(n), 1, PLINT(n), opts.data(), 0.8, 1.0, 1.9, 0.0,
              text_colors.data(), text.data(), colors.data(), box_pat.data(), box_scales.data(),
              box_widths.data(), colors.data(), styles.data(), widths.data(), colors.data(),
              sym_scales.data(), sym_num.data(), symbols.data());
  font(1.0);
}

std::mutex g_mutex;  // PLplot keeps global state (current stream, stream table)

void render(const Figure& fig, const std::string& file, int width, int height, int ncols,
            int nrows) {
  auto pls = std::make_unique<plstream>();
  // An unknown device would make plinit prompt on stdin: check it exists first.
  const char *menu[128], *names[128], **pm = menu, **pn = names;
  int ndev = 128;
  pls->gFileDevs(&pm, &pn, &ndev);
  if (std::none_of(names, names + ndev,
                   [](const char* d) { return std::strcmp(d, "pngcairo") == 0; }))
    fail("PLplot 'pngcairo' driver not available (install plplot-driver-cairo)");

  pls->sdev("pngcairo");
  pls->sfnam(file.c_str());
  pls->spage(0, 0, width, height, 0, 0);
  pls->scolbg(255, 255, 255);
  size_t nslots = 0;
  for (const Panel& p : fig.panels) nslots = std::max(nslots, p.series.size());
  pls->scmap0n(PLINT(kSeries + nslots + 1));
  pls->scol0(kFg, 0, 0, 0);
  pls->scol0(kGrid, 226, 226, 226);
  pls->scol0(kFrame, 204, 204, 204);
  pls->scol0a(kLegendBg, 255, 255, 255, 0.8);
  // cmap1 (heatmaps): viridis-like ramp.
  const PLFLT pos[5] = {0, 0.25, 0.5, 0.75, 1}, r[5] = {0.267, 0.231, 0.129, 0.369, 0.993},
              g[5] = {0.005, 0.322, 0.569, 0.788, 0.906},
              b[5] = {0.329, 0.545, 0.549, 0.384, 0.144};
  pls->scmap1n(256);
  pls->scmap1l(true, 5, pos, r, g, b);
  pls->init();

  // Sizes are given in mm: derive the pixel scale so text stays ~kFontPx tall.
  pls->adv(0);
  PLFLT sx0, sx1, sy0, sy1;
  pls->gspa(sx0, sx1, sy0, sy1);
  double px_per_mm = width / std::max(1e-9, sx1 - sx0);
  pls->schr(kFontPx / px_per_mm, 1.0);
  pls->smaj(4.0 / px_per_mm, 1.0);
  pls->smin(2.0 / px_per_mm, 1.0);

  double top = fig.title.empty() ? 0.0 : kFigTitlePx;
  double cw = double(width) / ncols, ch = (height - top) / nrows;
  Renderer rd(*pls, width, height);
  for (size_t p = 0; p < fig.panels.size(); ++p) {
    double x0 = (p % ncols) * cw, y0 = top + (p / ncols) * ch;
    rd.draw(fig.panels[p], x0, y0, x0 + cw, y0 + ch);
  }
  if (!fig.title.empty()) {
    pls->vpor(0, 1, 0, 1), pls->wind(0, 1, 0, 1), pls->col0(kFg);
    pls->schr(0, 1.3);
    pls->ptex(0.5, 1 - 0.5 * kFigTitlePx / height, 1, 0, 0.5, fig.title.c_str());
  }
  pls.reset();  // plend1: flushes and closes the PNG
}

}  // namespace

namespace {
// Whether the file ends with a PNG's IEND chunk (length 0, "IEND", its CRC).
bool ends_with_png_iend(const std::string& file) {
  static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return false;
  unsigned char tail[12];
  const bool ok = std::fseek(f, -12, SEEK_END) == 0 && std::fread(tail, 1, 12, f) == 12 &&
                  std::memcmp(tail, iend, 12) == 0;
  std::fclose(f);
  return ok;
}
}  // namespace

void save_png(const Figure& fig, const std::string& path) {
  validate(fig, path);
  int ncols =
      fig.cols > 0 ? std::min<int>(fig.cols, int(fig.panels.size())) : int(fig.panels.size());
  int nrows = (int(fig.panels.size()) + ncols - 1) / ncols;
  int width = fig.width > 0 ? fig.width : 420 * ncols;
  int height =
      fig.height > 0 ? fig.height : 360 * nrows + (fig.title.empty() ? 0 : int(kFigTitlePx));

  std::lock_guard<std::mutex> lock(g_mutex);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  // PLplot exit()s when it cannot open its output file, so probe it first.
  FILE* probe = std::fopen(tmp.c_str(), "wb");
  if (!probe) fail("cannot write '" + tmp + "' for '" + path + "': " + std::strerror(errno));
  std::fclose(probe);
  try {
    render(fig, tmp, width, height, ncols, nrows);
    struct stat st {};
    if (::stat(tmp.c_str(), &st) != 0 || st.st_size == 0)
      fail("PLplot produced no output for '" + path + "'");
    // A full disk leaves a cut-off PNG (cairo does not report it): only a file that ends with
    // the IEND chunk is renamed onto `path`.
    if (!ends_with_png_iend(tmp))
      fail("cannot write '" + path + "': the PNG came out incomplete (is the disk full?)");
    diffuse::commit_temp(tmp, path);  // fsync, rename, fsync the folder
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

Series histogram(const std::vector<double>& values, int bins, double lo, double hi, bool density,
                 std::string label) {
  if (bins <= 0) fail("histogram needs bins > 0");
  if (!(finite(lo) && finite(hi) && lo < hi)) fail("histogram needs finite lo < hi");
  Series s;
  s.x = linspace(lo, hi, bins + 1);
  s.y.assign(bins + 1, 0.0);
  double total = 0;
  for (double v : values) {
    if (!(v >= lo && v <= hi)) continue;  // also drops NaN
    int b = std::min(bins - 1, int((v - lo) / (hi - lo) * bins));
    s.y[b] += 1, total += 1;
  }
  if (density && total > 0)
    for (double& y : s.y) y /= total * (hi - lo) / bins;
  s.y[bins] = s.y[bins - 1];
  s.label = std::move(label);
  s.style = SeriesStyle::Steps;
  return s;
}

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> v(std::max(n, 0));
  for (int i = 0; i < n; ++i) v[i] = n == 1 ? a : a + (b - a) * i / (n - 1);
  return v;
}

}  // namespace diffuse::plot
