#pragma once
namespace diffuse {
const char* version();  // "MAJOR.MINOR.PATCH" of the library
}
