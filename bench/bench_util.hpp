// Small helpers shared by the benchmark programs.
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace diffuse::bench {
// "a,b,,c" → {"a", "b", "c"}: the comma lists of the benchmarks' flags.
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}
}  // namespace diffuse::bench
