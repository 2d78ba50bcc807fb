// log.csv and loss.png of a run (train_log.hpp).
#include "train/train_log.hpp"

#include <fstream>
#include <sstream>

#include "diffuse/io.hpp"
#include "diffuse/plot.hpp"

namespace diffuse {

std::vector<LogRow> read_log(const std::string& path, int64_t up_to_step) {
  std::vector<LogRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream s(line);
    LogRow r{};
    char c;
    if (s >> r.step >> c >> r.loss >> c >> r.lr >> c >> r.grad_norm >> c >> r.it_per_s >> c >> r.elapsed)
      if (r.step <= up_to_step) rows.push_back(r);
  }
  return rows;
}

void write_log(const std::string& path, const std::vector<LogRow>& rows) {
  write_file_atomic(path, [&](std::ostream& out) {
    out << "step,loss,lr,grad_norm,it_per_s,elapsed_s\n";
    out.precision(8);
    for (const auto& r : rows)
      out << r.step << ',' << r.loss << ',' << r.lr << ',' << r.grad_norm << ',' << r.it_per_s << ','
          << r.elapsed << '\n';
  });
}

void plot_loss(const std::string& path, const std::vector<LogRow>& rows) {
  if (rows.empty()) return;
  plot::Series s;
  s.label = "loss (mean over each log interval)";
  for (const auto& r : rows) {
    s.x.push_back(double(r.step));
    s.y.push_back(r.loss);
  }
  plot::Panel p;
  p.title = "training loss";
  p.xlabel = "step";
  p.ylabel = "loss";
  p.logy = true;
  p.legend = false;
  p.series.push_back(std::move(s));
  plot::Figure f;
  f.panels.push_back(std::move(p));
  f.width = 720;
  f.height = 420;
  plot::save_png(f, path);
}

}  // namespace diffuse
