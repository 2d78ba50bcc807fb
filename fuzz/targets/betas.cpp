// β files of the custom schedule (--schedule custom --betas-file FILE), read and built.
#include "../fuzz_target.hpp"
#include "diffuse/error.hpp"
#include "diffuse/schedule.hpp"

DIFFUSE_FUZZ_TARGET(betas) {
  diffuse::ScheduleConfig c;
  c.kind = diffuse::ScheduleKind::Custom;
  c.betas_file = diffuse::fuzz::input_file(data, size, ".txt");
  diffuse::make_schedule(c);
}
