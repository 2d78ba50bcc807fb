// diffuse — diffusion models in C++: train, sample, evaluate.
#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "diffuse/error.hpp"
#include "diffuse/version.hpp"

int main(int argc, char** argv) {
  // A file size limit (ulimit -f) fails the write with EFBIG, reported with the file's name,
  // instead of killing the process in the middle of it.
  std::signal(SIGXFSZ, SIG_IGN);
  // The name is fixed so that help shows "Usage: diffuse …" however the binary was called.
  CLI::App app{"diffuse — train, sample and evaluate denoising diffusion models (DDPM) in C++", "diffuse"};
  app.set_version_flag("--version", std::string("diffuse ") + diffuse::version());
  app.require_subcommand(1);
  app.fallthrough(false);
  diffuse::cli::add_info(app);
  diffuse::cli::add_schedule(app);
  diffuse::cli::add_data(app);
  diffuse::cli::add_train(app);
  diffuse::cli::add_distill(app);
  diffuse::cli::add_sample(app);
  diffuse::cli::add_forward(app);
  diffuse::cli::add_eval(app);
  diffuse::cli::add_restore(app);
  diffuse::cli::add_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const diffuse::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error (LibTorch): %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
