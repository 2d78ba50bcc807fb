// diffuse/plot.hpp - minimal PNG plotting (line/point/step series, histograms,
// heatmaps, subplot grids). The PLplot backend lives in src/io/plot.cpp; this
// header pulls in neither PLplot nor torch.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace diffuse::plot {

// Steps = histogram-style outline: y[i] holds on [x[i], x[i+1]); the outline
// drops to the baseline at both ends and the last y is unused (x holds edges).
enum class SeriesStyle { Line, Points, Steps };

struct Series {
  std::vector<double> x, y;  // equal lengths; non-finite values break lines
  std::string label;         // empty: not shown in the legend
  SeriesStyle style = SeriesStyle::Line;
  int color = -1;      // -1: next colour of the palette (tab10); else palette index
  double width = 1.5;  // line width (px) or point size scale
  double alpha = 1.0;
};

// Row-major matrix; row 0 is drawn at the top (like imshow). The image spans
// the panel's xlim/ylim when set, else [0, cols] x [0, rows] (y pointing down).
struct Heatmap {
  std::vector<double> values;
  int rows = 0, cols = 0;
  std::string title;  // colour-bar caption
};

struct Panel {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::optional<std::pair<double, double>> xlim, ylim;  // auto from data (5% margin) when empty
  bool logy = false;
  bool legend = true;
  bool equal_aspect = false;
  std::optional<Heatmap> heatmap;  // drawn below the series, with a colour bar
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;
  int cols = 0;               // 0: all panels in one row
  int width = 0, height = 0;  // pixels; 0: 420 px per panel column, 360 per row
};

// Renders fig to a PNG at path (written atomically through a temp file + rename).
// Throws std::runtime_error on invalid input or I/O failure. Calls are serialised
// internally, so it may be called repeatedly and from several threads.
void save_png(const Figure& fig, const std::string& path);

// Histogram of values over [lo, hi] in `bins` bins as a Steps series (x = bin edges);
// values outside the range are dropped; density normalises to unit area.
Series histogram(const std::vector<double>& values, int bins, double lo, double hi, bool density,
                 std::string label);

std::vector<double> linspace(double a, double b, int n);

}  // namespace diffuse::plot
