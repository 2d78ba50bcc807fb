// diffuse — fuzz targets for every parser that reads user input (docs/reliability.md).
//
// A target gets arbitrary bytes and must either parse them or throw diffuse::Error; any other
// outcome (a crash, a sanitizer report, another exception, a hang, an allocation beyond the
// limit) is a bug. The same source builds two ways:
//   - with clang and -DDIFFUSE_LIBFUZZER (make fuzz): one libFuzzer binary per target,
//     under AddressSanitizer and UndefinedBehaviorSanitizer;
//   - with the normal build: the targets register in one program, fuzz_replay, which runs
//     the committed corpora (fuzz/corpus/NAME/, regression inputs included) in `make test`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace diffuse::fuzz {

using TargetFn = void (*)(const uint8_t* data, size_t size);
bool register_target(const char* name, TargetFn fn);

// The input written to a file (for parsers that read paths): a per-process temp file whose
// name ends with `suffix` (".png", ".csv"…). Overwritten by the next call.
std::string input_file(const uint8_t* data, size_t size, const std::string& suffix = "");
// A second file beside it (e.g. a mask image next to the spec), same rules.
std::string second_file(const uint8_t* data, size_t size, const std::string& suffix = "");

}  // namespace diffuse::fuzz

// DIFFUSE_FUZZ_TARGET(name) { body using data, size }
// The body lets diffuse::Error escape; the wrapper catches it (an accepted outcome).
#ifdef DIFFUSE_LIBFUZZER
#define DIFFUSE_FUZZ_TARGET(name)                                                  \
  static void fuzz_body_##name(const uint8_t* data, size_t size);                  \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {        \
    try {                                                                          \
      fuzz_body_##name(data, size);                                                \
    } catch (const diffuse::Error&) {                                              \
    }                                                                              \
    return 0;                                                                      \
  }                                                                                \
  static void fuzz_body_##name(const uint8_t* data, size_t size)
#else
#define DIFFUSE_FUZZ_TARGET(name)                                                  \
  static void fuzz_body_##name(const uint8_t* data, size_t size);                  \
  static const bool fuzz_registered_##name =                                       \
      diffuse::fuzz::register_target(#name, fuzz_body_##name);                     \
  static void fuzz_body_##name(const uint8_t* data, size_t size)
#endif
