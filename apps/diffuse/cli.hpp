// The diffuse CLI: one file per subcommand. Each add_* registers its flags
// (defaults taken from the library's config structs, written once there) and a
// callback; errors are thrown and reported once, in main.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include "diffuse/schedule.hpp"

namespace diffuse::cli {

void add_info(CLI::App& app);
void add_schedule(CLI::App& app);
void add_data(CLI::App& app);
void add_train(CLI::App& app);
void add_sample(CLI::App& app);
void add_forward(CLI::App& app);
void add_eval(CLI::App& app);

// Schedule flags (--schedule, --T, --beta-start, …) bound to cfg. `kind_name`
// receives --schedule; call finish_schedule_flags after parsing.
struct ScheduleFlags {
  ScheduleConfig cfg;
  std::string kind = to_string(ScheduleConfig{}.kind);
  std::vector<CLI::Option*> options;  // to tell which were given
  bool any_given() const;
  ScheduleConfig resolve(ScheduleConfig base) const;  // base with the given flags applied
};
void add_schedule_flags(CLI::App& cmd, ScheduleFlags& f);

// Whether the user gave this option on the command line.
inline bool given(const CLI::Option* o) { return o && o->count() > 0; }

}  // namespace diffuse::cli
