// Names given as flags or config strings: schedule, sampler, DDPM variance, timestep spacing,
// sigma schedule, prediction, loss weighting, precision, restoration method, device, and
// data specs (parsed, not loaded: only the vector generators are built). One line each.
#include <sstream>

#include "../fuzz_target.hpp"
#include "diffuse/data.hpp"
#include "diffuse/diffusion.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/schedule.hpp"
#include "diffuse/train.hpp"

DIFFUSE_FUZZ_TARGET(names) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  int i = 0;
  auto attempt = [](auto&& f) {
    try {
      f();
    } catch (const diffuse::Error&) {
    }
  };
  while (std::getline(in, line) && i < 16) {
    switch (i++ % 12) {
      case 0: attempt([&] { diffuse::parse_schedule_kind(line); }); break;
      case 1: attempt([&] { diffuse::parse_sampler_kind(line); }); break;
      case 2: attempt([&] { diffuse::parse_ddpm_variance(line); }); break;
      case 3: attempt([&] { diffuse::parse_timestep_spacing(line); }); break;
      case 4: attempt([&] { diffuse::parse_sigma_schedule(line); }); break;
      case 5: attempt([&] { diffuse::parse_prediction_type(line); }); break;
      case 6: attempt([&] { diffuse::parse_loss_weighting(line); }); break;
      case 7: attempt([&] { diffuse::parse_precision(line); }); break;
      case 8: attempt([&] { diffuse::parse_restore_method(line); }); break;
      case 9: attempt([&] { diffuse::resolve_device(line); }); break;
      case 10:
        attempt([&] {
          diffuse::is_image_spec(line);
          diffuse::featnet_data_family(line);
          diffuse::data_split_spec(line, "test");
          if (line == "emoji" || line.rfind("emoji:", 0) == 0) diffuse::parse_emoji_spec(line);
        });
        break;
      case 11:
        attempt([&] {
          if (line == "signals" || line.rfind("toy:", 0) == 0) diffuse::make_data_source(line);
        });
        break;
    }
  }
}
