// The targets registered in the replay build (fuzz_target.hpp).
#pragma once
#include <map>
#include <string>

#include "fuzz_target.hpp"

namespace diffuse::fuzz {
std::map<std::string, TargetFn>& registry();
}
