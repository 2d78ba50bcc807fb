// Helpers shared by the tests: a fresh temporary folder, a file's text, an Error's message,
// the loss column of a run's log.csv.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/error.hpp"

namespace diffuse::test {

// TempDir()/name, emptied (not created).
inline std::string fresh_dir(const std::string& name) {
  auto d = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(d);
  return d.string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "what | hint" of the diffuse::Error f throws, or "" when it throws none.
inline std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "";
}

// The loss column of RUN/log.csv (step,loss,…), in order.
inline std::vector<double> logged_losses(const std::string& run_dir) {
  std::istringstream in(read_text(run_dir + "/log.csv"));
  std::string line;
  std::getline(in, line);  // header
  std::vector<double> out;
  while (std::getline(in, line)) {
    std::stringstream s(line);
    std::string step, loss;
    std::getline(s, step, ',');
    std::getline(s, loss, ',');
    out.push_back(std::stod(loss));
  }
  return out;
}

}  // namespace diffuse::test
