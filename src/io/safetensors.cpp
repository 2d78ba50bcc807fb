// safetensors reader and writer (format: see io.hpp).
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace {
const std::vector<std::pair<torch::ScalarType, std::string>>& dtype_names() {
  static const std::vector<std::pair<torch::ScalarType, std::string>> n = {
      {torch::kFloat64, "F64"}, {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"},
      {torch::kBFloat16, "BF16"}, {torch::kInt64, "I64"}, {torch::kInt32, "I32"},
      {torch::kUInt8, "U8"}, {torch::kBool, "BOOL"}};
  return n;
}
std::string dtype_name(torch::ScalarType t) {
  for (const auto& [k, n] : dtype_names())
    if (k == t) return n;
  throw Error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}
torch::ScalarType dtype_of(const std::string& name, const std::string& path) {
  for (const auto& [k, n] : dtype_names())
    if (n == name) return k;
  throw Error("'" + path + "': unsupported safetensors dtype '" + name + "'");
}
}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the reference does
  const uint64_t n = h.size();
  write_file_atomic(path, [&](std::ostream& out) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = (n >> (8 * i)) & 0xff;  // little-endian u64
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(h.data(), h.size());
    for (const auto& c : data)
      out.write(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'", "check the path (is the run folder right?)");
  in.seekg(0, std::ios::end);
  const uint64_t size = in.tellg();
  in.seekg(0);
  unsigned char len[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len), 8))
    throw Error("'" + path + "' is not a safetensors file (too short)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > size - 8) throw Error("'" + path + "' is not a safetensors file (bad header length)");
  std::string h(n, '\0');
  in.read(h.data(), n);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(h);
  } catch (const std::exception& e) {
    throw Error("'" + path + "' has a corrupt safetensors header: " + e.what());
  }
  const uint64_t data_start = 8 + n, data_size = size - data_start;
  std::vector<char> bytes(data_size);
  in.read(bytes.data(), data_size);
  if (!in) throw Error("'" + path + "' is truncated");
  SafetensorsFile f;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, s] : v.items()) f.metadata[k] = s.get<std::string>();
      continue;
    }
    const auto dtype = dtype_of(v.at("dtype").get<std::string>(), path);
    const auto shape = v.at("shape").get<std::vector<int64_t>>();
    const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
    auto t = torch::empty(shape, torch::dtype(dtype));
    const uint64_t bytes_needed = t.numel() * t.element_size();
    if (off.size() != 2 || off[1] < off[0] || off[1] > data_size || off[1] - off[0] != bytes_needed)
      throw Error("'" + path + "': tensor '" + name + "' has bad data offsets");
    std::memcpy(t.data_ptr(), bytes.data() + off[0], bytes_needed);
    f.tensors[name] = t;
  }
  return f;
}

}  // namespace diffuse
