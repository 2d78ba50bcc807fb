// diffuse serve — the page's files (web/), compiled into the binary by
// cmake/embed_assets.cmake, so the page works with no network and no files beside the binary.
#pragma once
#include <cstddef>
#include <vector>

namespace diffuse::serve {

struct Asset {
  const char* path;  // "/index.html", "/app.js", …
  const char* mime;
  const unsigned char* data;
  size_t size;
};
const std::vector<Asset>& web_assets();

}  // namespace diffuse::serve
