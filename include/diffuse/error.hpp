// diffuse — errors. The library throws diffuse::Error for every user-facing
// problem (bad configuration, bad file, bad data); the CLI catches it once and
// prints what() followed by the hint.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace diffuse {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// "a, b, c" — for error messages that list the valid choices.
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

}  // namespace diffuse
