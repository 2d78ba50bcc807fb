// diffuse eval spectrum (being written).
#include "cli.hpp"

namespace diffuse::cli {

void add_eval_spectrum(CLI::App&) {}

}  // namespace diffuse::cli
