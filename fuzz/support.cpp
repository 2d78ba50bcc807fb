// Registry of the fuzz targets (replay build) and the input files they parse.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "fuzz_target.hpp"
#include "fuzz_registry.hpp"

namespace diffuse::fuzz {

std::map<std::string, TargetFn>& registry() {
  static std::map<std::string, TargetFn> r;
  return r;
}

bool register_target(const char* name, TargetFn fn) {
  registry()[name] = fn;
  return true;
}

namespace {
std::string write_to(const std::string& stem, const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto d = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / ("diffuse-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  const std::string path = dir + "/" + stem + suffix;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw std::runtime_error("fuzz: cannot write " + path);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += size_t(n);
  }
  ::close(fd);
  return path;
}
}  // namespace

std::string input_file(const uint8_t* data, size_t size, const std::string& suffix) {
  return write_to("input", data, size, suffix);
}
std::string second_file(const uint8_t* data, size_t size, const std::string& suffix) {
  return write_to("second", data, size, suffix);
}

}  // namespace diffuse::fuzz
