// The cost of durable checkpoint writes: save_safetensors (temp file, fsync, rename, fsync of
// the folder) against the same bytes written with a plain ofstream and renamed (no fsync),
// for checkpoint sizes of the presets. Prints a Markdown table (docs/reliability.md).
//   bench_checkpoint_write [--dir DIR] [--repeat 5] [--mb 1,26,100]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

int main(int argc, char** argv) try {
  using Clock = std::chrono::steady_clock;
  std::string dir = "out/bench/checkpoint_write", mbs = "1,26,100";
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--dir") dir = v;
    else if (a == "--repeat") repeat = std::stoi(v);
    else if (a == "--mb") mbs = v;
    else throw diffuse::Error("unknown argument '" + a + "'", "valid: --dir --repeat --mb");
  }
  diffuse::ensure_dir(dir);
  std::printf("| size | durable save (fsync) ms | plain write + rename ms | ratio |\n|---:|---:|---:|---:|\n");
  std::stringstream ss(mbs);
  for (std::string item; std::getline(ss, item, ',');) {
    const double mb = std::stod(item);
    const int64_t n = int64_t(mb * (1 << 20) / 4);
    std::map<std::string, torch::Tensor> t = {{"w", torch::randn({n})}};
    const std::string path = dir + "/ckpt.safetensors";
    std::vector<double> durable, plain;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = Clock::now();
      diffuse::save_safetensors(path, t, {{"format", "bench"}});
      durable.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      t0 = Clock::now();
      {
        std::ofstream out(path + ".plain", std::ios::binary);
        out.write(static_cast<const char*>(t["w"].data_ptr()), n * 4);
      }
      std::filesystem::rename(path + ".plain", path + ".plain2");
      plain.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(durable.begin(), durable.end());
    std::sort(plain.begin(), plain.end());
    const double d = durable[durable.size() / 2], p = plain[plain.size() / 2];
    std::printf("| %.0f MB | %.1f | %.1f | %.2f |\n", mb, d, p, d / p);
  }
  std::printf("(medians of %d; directory %s)\n", repeat, dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
