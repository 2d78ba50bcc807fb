// diffuse info: versions, threads, BLAS, CPU features.
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli.hpp"
#include "diffuse/train.hpp"
#include "diffuse/version.hpp"

namespace diffuse::cli {

namespace {
// The libblas.so.3 this process loaded (LibTorch links it; Debian's alternatives
// system decides whether it is OpenBLAS or the slow reference BLAS).
std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("libblas") != std::string::npos || path.find("libopenblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos)
      return path;
  }
  return "";
}

std::pair<std::string, std::set<std::string>> cpu() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (model.empty() && line.rfind("model name", 0) == 0) model = line.substr(line.find(':') + 2);
    if (flags.empty() && line.rfind("flags", 0) == 0) {
      std::istringstream s(line.substr(line.find(':') + 1));
      std::string f;
      while (s >> f) flags.insert(f);
    }
  }
  return {model, flags};
}
}  // namespace

void add_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "print versions, threads, BLAS and CPU features");
  cmd->callback([] {
    std::printf("diffuse        %s\n", diffuse::version());
    std::printf("LibTorch       %s\n", TORCH_VERSION);
    const char* omp = std::getenv("OMP_NUM_THREADS");
    std::printf("threads        --threads 0 uses %d intra-op for image networks, %d for vector ones "
                "(OMP_NUM_THREADS %s; %u cores); %d inter-op\n",
                intra_op_threads(0, true), intra_op_threads(0, false),
                omp ? ("= " + std::string(omp)).c_str() : "not set", std::max(1u, std::thread::hardware_concurrency()),
                at::get_num_interop_threads());
    std::printf("CUDA           %s\n", torch::cuda::is_available()
                                           ? (std::to_string(torch::cuda::device_count()) + " device(s)").c_str()
                                           : "not available");
    std::printf("oneDNN         %s\n", at::hasMKLDNN() ? "yes" : "no");
    const std::string blas = loaded_blas();
    const bool openblas = blas.find("openblas") != std::string::npos;
    const bool mkl = blas.find("mkl") != std::string::npos;
    std::printf("BLAS           %s (%s)\n", openblas ? "OpenBLAS" : mkl ? "MKL" : blas.empty() ? "unknown" : "reference BLAS",
                blas.empty() ? "no libblas mapped" : blas.c_str());
    auto [model, flags] = cpu();
    std::printf("CPU            %s\n", model.empty() ? "unknown" : model.c_str());
    std::string feats;
    for (const char* f : {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"})
      feats += std::string(" ") + f + (flags.count(f) ? "+" : "-");
    std::printf("CPU features  %s\n", feats.c_str());
    if (!openblas && !mkl)
      std::fprintf(stderr,
                   "warning: the reference BLAS is in use; fp32 matmul runs ~60x slower.\n"
                   "hint: apt-get install libopenblas0-pthread (or run 'make setup')\n");
  });
}

}  // namespace diffuse::cli
