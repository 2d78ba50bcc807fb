#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace {
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) {
    const auto b = field.find_first_not_of(" \t\r"), e = field.find_last_not_of(" \t\r");
    out.push_back(b == std::string::npos ? "" : field.substr(b, e - b + 1));
  }
  return out;
}
bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  size_t used = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size();
}
}  // namespace

torch::Tensor read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open CSV file '" + path + "'", "check the path after csv:");
  std::vector<double> values;
  int64_t cols = -1, rows = 0, lineno = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fields = split_fields(line);
    std::vector<double> row(fields.size());
    size_t bad = fields.size(), numeric = 0;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (parse_number(fields[i], row[i]) && std::isfinite(row[i])) ++numeric;
      else if (bad == fields.size()) bad = i;
    }
    if (rows == 0 && cols < 0 && numeric == 0) {  // a header of names
      cols = int64_t(fields.size());
      continue;
    }
    if (bad != fields.size())
      throw Error(path + ":" + std::to_string(lineno) + ": field " + std::to_string(bad + 1) + " ('" +
                  fields[bad] + "') is not a finite number",
                  "a CSV of vectors holds one row of numbers per vector");
    if (cols >= 0 && int64_t(fields.size()) != cols)
      throw Error(path + ":" + std::to_string(lineno) + ": " + std::to_string(fields.size()) +
                  " values where earlier rows have " + std::to_string(cols),
                  "every row must have the same number of values");
    cols = int64_t(fields.size());
    values.insert(values.end(), row.begin(), row.end());
    ++rows;
  }
  if (rows == 0) throw Error("CSV file '" + path + "' holds no rows of numbers");
  return torch::tensor(values, torch::kFloat64).view({rows, cols}).to(torch::kFloat32);
}

void write_csv(const std::string& path, const torch::Tensor& rows,
               const std::vector<std::string>& header) {
  auto x = rows.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (x.dim() == 1) x = x.unsqueeze(1);
  if (x.dim() != 2) throw Error("write_csv expects (N, D) data");
  const int64_t n = x.size(0), d = x.size(1);
  const double* p = x.data_ptr<double>();
  write_file_atomic(path, [&](std::ostream& out) {
    if (!header.empty()) {
      for (size_t j = 0; j < header.size(); ++j) out << (j ? "," : "") << header[j];
      out << '\n';
    }
    out << std::setprecision(8);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < d; ++j) out << (j ? "," : "") << p[i * d + j];
      out << '\n';
    }
  });
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::vector<CsvRecord> parse_csv_records(const std::string& text, const std::string& name) {
  std::vector<CsvRecord> records;
  int64_t line = 1;
  size_t i = 0;
  while (i < text.size()) {
    CsvRecord r{line, {}};
    while (true) {
      std::string f;
      if (i < text.size() && text[i] == '"') {
        for (++i;; ++i) {
          if (i == text.size())
            throw Error(name + ":" + std::to_string(r.line) + ": a quoted field has no closing quote",
                        "a quote inside a quoted field is written twice (\"\")");
          if (text[i] == '"' && (i + 1 == text.size() || text[i + 1] != '"')) break;
          if (text[i] == '"') ++i;  // "" is one quote
          else if (text[i] == '\n') ++line;
          f += text[i];
        }
        ++i;  // the closing quote
        if (text.compare(i, 2, "\r\n") == 0) ++i;
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '\n') f += text[i++];
        if (!f.empty() && f.back() == '\r' && (i == text.size() || text[i] == '\n')) f.pop_back();  // CRLF
      }
      r.fields.push_back(std::move(f));
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] != '\n')
        throw Error(name + ":" + std::to_string(line) + ": field " + std::to_string(r.fields.size()) +
                        " goes on after its closing quote",
                    "quote the whole field, and write a quote inside it twice (\"\")");
      if (i < text.size()) {  // the line break
        ++i;
        ++line;
      }
      break;
    }
    if (r.fields.size() > 1 || !r.fields[0].empty()) records.push_back(std::move(r));
  }
  return records;
}

}  // namespace diffuse
