// diffuse eval nll (being written).
#include "cli.hpp"

namespace diffuse::cli {

void add_eval_nll(CLI::App&) {}

}  // namespace diffuse::cli
