// Custom schedule: β values read from a text file, separated by newlines, commas
// or spaces; '#' starts a comment.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "diffuse/error.hpp"
#include "diffuse/schedule.hpp"

namespace diffuse {

std::vector<double> read_betas_file(const std::string& path) {
  if (path.empty())
    throw Error("the custom schedule needs a file of β values", "pass --betas-file FILE");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("betas file '" + path + "' " + (std::filesystem::exists(path, ec) ? "is not a regular file" : "not found"),
                "check the path");
  std::ifstream in(path);
  if (!in) throw Error("cannot open betas file '" + path + "'", "check the path");
  std::vector<double> betas;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    for (char& c : line)
      if (c == ',' || c == ';' || c == '\t' || c == '\r') c = ' ';
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || !std::isfinite(v))
        throw Error(path + ":" + std::to_string(lineno) + ": '" + word + "' is not a number",
                    "the file holds β values separated by newlines, commas or spaces");
      if (betas.size() >= size_t(kMaxScheduleSteps))
        throw Error("betas file '" + path + "' holds more than " + std::to_string(kMaxScheduleSteps) + " values",
                    "a schedule has at most that many steps");
      betas.push_back(v);
    }
  }
  if (betas.empty()) throw Error("betas file '" + path + "' holds no values");
  return betas;
}

}  // namespace diffuse
