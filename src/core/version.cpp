#include "diffuse/version.hpp"
namespace diffuse {
const char* version() { return DIFFUSE_VERSION; }
}
