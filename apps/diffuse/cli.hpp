// The diffuse CLI: one file per subcommand. Each add_* registers its flags
// (defaults taken from the library's config structs, written once there) and a
// callback; errors are thrown and reported once, in main.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include "diffuse/sampler.hpp"
#include "diffuse/schedule.hpp"

namespace diffuse {
struct TrainConfig;    // train.hpp
struct DistillConfig;  // distill.hpp
class FeatNet;         // featnet.hpp
}

namespace diffuse::cli {

void add_info(CLI::App& app);
void add_schedule(CLI::App& app);
void add_data(CLI::App& app);
void add_train(CLI::App& app);
void add_distill(CLI::App& app);  // progressive distillation (cmd_distill.cpp)
void add_sample(CLI::App& app);
void add_forward(CLI::App& app);
void add_eval(CLI::App& app);
void add_restore(CLI::App& app);  // inpaint, upscale, colorize, edit (cmd_restore.cpp)
void add_serve(CLI::App& app);    // web UI + HTTP API (cmd_serve.cpp)

// --class: a number or a class name of the run's data (cmd_sample.cpp); throws listing them.
int64_t parse_class(const std::string& s, const std::vector<std::string>& names, int64_t num_classes);
// The subcommands of `diffuse eval` (cmd_eval_*.cpp).
void add_eval_featnet(CLI::App& eval);   // eval train-featnet
void add_eval_fd(CLI::App& eval);        // eval fd
void add_eval_nll(CLI::App& eval);       // eval nll
void add_eval_spectrum(CLI::App& eval);  // eval spectrum
void add_eval_recon(CLI::App& eval);     // eval recon
// uint8 images (N, C, H, W) as the feature network takes them (its channels and size), in cmd_eval_fd.cpp.
torch::Tensor to_featnet_images(torch::Tensor u8, const FeatNet& net);

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

// Sampler flags (--sampler, --steps, --spacing, --sigmas, --eta, …), shared by every
// command that samples. resolve() parses the names and sets the sampler-specific
// options that were given, so that SamplerConfig validation can reject them.
struct SamplerFlags {
  std::string sampler = to_string(SamplerConfig{}.kind);
  std::string spacing = to_string(SamplerConfig{}.spacing);
  std::string sigmas = to_string(SamplerConfig{}.sigmas);
  std::string variance = "beta-tilde";
  int64_t steps = 0, steps_offset = 0;
  double rho = 7.0, eta = 0, churn = 0, s_tmin = 0, s_tmax = 0, s_noise = 1;
  double clip = -1;  // −1: by the run (resolve)
  int order = 2;
  bool final_alpha_one = true;
  std::vector<int64_t> timesteps;
  CLI::Option *o_variance{}, *o_eta{}, *o_churn{}, *o_tmin{}, *o_tmax{}, *o_noise{}, *o_order{}, *o_final{};
  CLI::Option *o_sampler{}, *o_steps{};
  // image_run: --clip's default is 1 for image runs (pixels lie in [−1, 1]; diffusers' pixel
  // DDPM/DDIM schedulers clip by default) and 0 for vector runs (standardised, unbounded).
  // run: the config of the run to sample, if any. A distilled run (run->distill, distill.hpp)
  // changes the defaults to its own sampler — ddim, its steps, no clip — and any other choice
  // prints a note to stderr.
  SamplerConfig resolve(bool image_run, const TrainConfig* run = nullptr) const;
};
void add_sampler_flags(CLI::App& cmd, SamplerFlags& f);

// Help of every --threads option (set_intra_op_threads in train.hpp resolves 0).
inline constexpr const char* kThreadsHelp =
    "intra-op threads (0: OMP_NUM_THREADS if set, else all cores for images, 1 for vectors)";
// Help of every --picture-scale option (picture_scale in image_io.hpp).
inline constexpr const char* kPictureScaleHelp =
    "pictures (grids, strips, GIFs): enlarge by this integer factor, nearest neighbour "
    "(0: auto, the longer side at least 512 px; 1: native size); one PNG per image stays native";

// Quick mode (quick.cpp, docs/cli.md#quick-mode): with DIFFUSE_QUICK set (not "" or "0") the
// commands that train or sample cap their work, so that the docs' commands run as a test; the
// first call prints a one-line notice to stderr. Each function is the identity otherwise.
bool quick_mode();
void quick_train(TrainConfig& cfg);          // steps <= 2, periodic sample grids off
void quick_distill(DistillConfig& cfg);      // round_steps <= 2, convert_steps <= 1
void quick_sampler(SamplerConfig& c);        // steps (0 = all T) <= 3, unless --timesteps
int64_t quick_n(int64_t n);                  // samples / restorations / images <= 16
int64_t quick_t_samples(int64_t t_samples);  // eval nll: exact sum (0) or K > 2 → 2

// Whether the user gave this option on the command line.
inline bool given(const CLI::Option* o) { return o && o->count() > 0; }

}  // namespace diffuse::cli
