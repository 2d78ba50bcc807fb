// diffuse schedule: print a β schedule as CSV (t,beta,alpha_bar).
#include <cstdio>
#include <memory>
#include <sstream>

#include "cli.hpp"
#include "diffuse/io.hpp"

namespace diffuse::cli {

void add_schedule(CLI::App& app) {
  auto* cmd = app.add_subcommand("schedule", "print a noise schedule as CSV: t,beta,alpha_bar (t = 0 … T−1)");
  auto flags = std::make_shared<ScheduleFlags>();
  auto out = std::make_shared<std::string>();
  add_schedule_flags(*cmd, *flags);
  cmd->add_option("--out", *out, "write the CSV to this file instead of stdout");
  cmd->callback([flags, out] {
    const NoiseSchedule s = make_schedule(flags->resolve(ScheduleConfig{}));
    std::ostringstream csv;
    csv << "t,beta,alpha_bar\n";
    char line[96];
    for (int64_t t = 0; t < s.T(); ++t) {
      std::snprintf(line, sizeof line, "%lld,%.17g,%.17g\n", (long long)t, s.beta(t), s.alpha_bar(t));
      csv << line;
    }
    if (out->empty()) std::fputs(csv.str().c_str(), stdout);
    else write_file_atomic(*out, [&](std::ostream& o) { o << csv.str(); });
  });
}

}  // namespace diffuse::cli
