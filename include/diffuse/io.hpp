// diffuse — files: atomic writes, CSV, safetensors checkpoints.
// Every file is written to a temporary name beside its target and renamed, so
// an interrupted write never leaves a half-written file under the real name.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace diffuse {

// Writes through `write` into PATH.tmp-PID, flushes, then renames onto PATH.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
// A temporary name beside `path` (for writers that need a file name, e.g. plots).
std::string temp_path_for(const std::string& path);
// Renames tmp onto path; on failure removes tmp and throws.
void commit_temp(const std::string& tmp, const std::string& path);
// Creates a directory (and parents); throws with the path if it cannot.
void ensure_dir(const std::string& path);
// The whole file as bytes; throws naming the path (and the system's reason) if it cannot.
std::string read_file(const std::string& path);
// Deletes the NAME.tmp-PID files in `dir` whose process PID no longer runs (left by a write
// that was killed); returns how many. Files of live processes are kept.
int remove_stale_temp_files(const std::string& dir);

// CSV of numbers, one row per vector. read_csv accepts a first row of names.
torch::Tensor read_csv(const std::string& path);                   // (N, D) float32
void write_csv(const std::string& path, const torch::Tensor& rows,  // rows: (N, D)
               const std::vector<std::string>& header = {});

// CSV text with quoting (RFC 4180): csv_field writes a field, quoted when it holds a comma, a
// quote or a line break (a quote inside written twice). parse_csv_records reads what it writes:
// fields split by commas; a field in double quotes may hold commas, line breaks and quotes
// (doubled); records end with LF or CRLF; blank lines are skipped. Each record keeps the line
// it starts on, for errors ("labels.csv:7: …"); `name` is the file the errors name.
std::string csv_field(const std::string& s);
struct CsvRecord {
  int64_t line;
  std::vector<std::string> fields;
};
std::vector<CsvRecord> parse_csv_records(const std::string& text, const std::string& name);

// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {str: str}}, then the raw little-endian data. Supports F64, F32, F16, BF16, I64,
// I32, U8, BOOL.
struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace diffuse
