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
  const auto end = in.tellg();
  if (end < 0) throw Error("cannot read '" + path + "'", "it must be a regular file");
  const uint64_t size = uint64_t(end);
  in.seekg(0);
  unsigned char len[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len), 8))
    throw Error("'" + path + "' is not a safetensors file (too short)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  // The header length is bounded by the file before anything is allocated (the reference
  // implementation also caps it at 100 MB).
  if (n > size - 8 || n > (uint64_t(100) << 20))
    throw Error("'" + path + "' is not a safetensors file (its header length " + std::to_string(n) +
                    " does not fit the file of " + std::to_string(size) + " bytes)",
                "the file is truncated or not a checkpoint");
  std::string h(n, '\0');
  if (!in.read(h.data(), std::streamsize(n))) throw Error("'" + path + "' is truncated (in its header)");
  const uint64_t data_start = 8 + n, data_size = size - data_start;
  SafetensorsFile f;
  try {
    const nlohmann::json header = nlohmann::json::parse(h);
    if (!header.is_object()) throw Error("'" + path + "' has a corrupt safetensors header (not a JSON object)");
    // Validate every entry against the data size before allocating anything.
    struct Entry {
      std::string name;
      torch::ScalarType dtype;
      std::vector<int64_t> shape;
      uint64_t begin, bytes;
    };
    std::vector<Entry> entries;
    for (const auto& [name, v] : header.items()) {
      if (name == "__metadata__") {
        if (!v.is_object()) throw Error("'" + path + "': __metadata__ is not a JSON object");
        for (const auto& [k, s] : v.items()) f.metadata[k] = s.get<std::string>();
        continue;
      }
      Entry e{name, dtype_of(v.at("dtype").get<std::string>(), path), v.at("shape").get<std::vector<int64_t>>(), 0, 0};
      const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      uint64_t numel = 1;
      for (int64_t d : e.shape) {
        if (d < 0 || (d > 0 && numel > data_size / uint64_t(d)))
          throw Error("'" + path + "': tensor '" + name + "' has a shape that does not fit the file");
        numel *= uint64_t(d);
      }
      const uint64_t bytes = numel * uint64_t(c10::elementSize(e.dtype));
      if (off.size() != 2 || off[1] < off[0] || off[1] - off[0] != bytes)
        throw Error("'" + path + "': tensor '" + name + "' has bad data offsets");
      if (off[1] > data_size)
        throw Error("'" + path + "' is truncated: tensor '" + name + "' ends at byte " + std::to_string(off[1]) +
                        " of the data, the file holds " + std::to_string(data_size),
                    "the file was cut off (an interrupted copy?); use another checkpoint");
      e.begin = off[0];
      e.bytes = bytes;
      entries.push_back(std::move(e));
    }
    for (const auto& e : entries) {
      auto t = torch::empty(e.shape, torch::dtype(e.dtype));
      in.seekg(std::streamoff(data_start + e.begin));
      if (e.bytes > 0 && !in.read(static_cast<char*>(t.data_ptr()), std::streamsize(e.bytes)))
        throw Error("'" + path + "' is truncated (tensor '" + e.name + "')");
      f.tensors[e.name] = t;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + path + "' has a corrupt safetensors header: " + e.what(),
                "the file is damaged or was not written by a safetensors writer");
  }
  return f;
}

}  // namespace diffuse
