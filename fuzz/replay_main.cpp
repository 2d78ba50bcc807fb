// fuzz_replay CORPUS_ROOT [TARGET…]: runs every file of CORPUS_ROOT/NAME/ through target NAME
// (all registered targets, or the ones named) and fails when one does anything but return or
// throw diffuse::Error. Part of `make test`; `make fuzz` explores with libFuzzer instead.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "diffuse/error.hpp"
#include "fuzz_registry.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_replay CORPUS_ROOT [TARGET…]\n");
    return 2;
  }
  const fs::path root = argv[1];
  std::vector<std::string> names;
  for (int i = 2; i < argc; ++i) names.push_back(argv[i]);
  if (names.empty())
    for (const auto& [name, fn] : diffuse::fuzz::registry()) names.push_back(name);
  int failures = 0;
  for (const auto& name : names) {
    auto it = diffuse::fuzz::registry().find(name);
    if (it == diffuse::fuzz::registry().end()) {
      std::fprintf(stderr, "FAIL: unknown target '%s'\n", name.c_str());
      ++failures;
      continue;
    }
    const fs::path dir = root / name;
    if (!fs::is_directory(dir)) {
      std::fprintf(stderr, "FAIL: no corpus folder %s\n", dir.c_str());
      ++failures;
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    int accepted = 0, rejected = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        it->second(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        ++accepted;
      } catch (const diffuse::Error&) {
        ++rejected;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "FAIL: %s on %s threw a non-diffuse exception: %s\n", name.c_str(), f.c_str(), e.what());
        ++failures;
      } catch (...) {
        std::fprintf(stderr, "FAIL: %s on %s threw a non-exception\n", name.c_str(), f.c_str());
        ++failures;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-14s %4zu inputs: %4d parsed, %4d rejected with diffuse::Error (%.2f s)\n", name.c_str(),
                files.size(), accepted, rejected, s);
    if (files.empty()) {
      std::fprintf(stderr, "FAIL: %s has an empty corpus\n", name.c_str());
      ++failures;
    }
  }
  std::printf(failures ? "fuzz_replay: %d failures\n" : "fuzz_replay: all inputs handled\n", failures);
  return failures ? 1 : 0;
}
