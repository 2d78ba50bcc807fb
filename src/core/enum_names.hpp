// Internal: a table of an enum's names, for to_string / parse / the list of
// valid choices that every parse error names.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "diffuse/error.hpp"

namespace diffuse {

template <class E>
class EnumNames {
 public:
  // what: the noun in messages, e.g. "schedule" → "unknown schedule 'x'", "valid schedules: …".
  EnumNames(std::string what, std::vector<std::pair<E, std::string>> names)
      : what_(std::move(what)), names_(std::move(names)) {}

  const std::string& name(E e) const {
    for (const auto& [k, n] : names_)
      if (k == e) return n;
    static const std::string unknown = "?";
    return unknown;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kn : names_) out.push_back(kn.second);
    return out;
  }
  E parse(const std::string& s) const {
    for (const auto& [k, n] : names_)
      if (n == s) return k;
    throw Error("unknown " + what_ + " '" + s + "'", "valid " + what_ + "s: " + join(names()));
  }

 private:
  std::string what_;
  std::vector<std::pair<E, std::string>> names_;
};

}  // namespace diffuse
