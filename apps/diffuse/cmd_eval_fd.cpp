// diffuse eval fd: Fréchet distance (features of the project's Fashion-MNIST network and
// raw pixels), precision/recall and class histogram of a sample set against a reference.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/draw.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/restore.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

// uint8 (N, C, H, W) → uint8 (N, net C, S, S) of the network: RGB → gray by luma (ITU-R 601),
// gray → RGB by repeating it; antialiased bilinear resize.
torch::Tensor to_featnet_images(torch::Tensor u8, const FeatNet& net) {
  const int64_t C = net.in_channels(), S = net.image_size();
  if (u8.size(1) == C && u8.size(2) == S && u8.size(3) == S) return u8;
  auto x = u8.to(torch::kFloat32);
  if (x.size(1) != 1 && x.size(1) != 3)
    throw Error("images must have 1 or 3 channels, got " + std::to_string(x.size(1)));
  if (x.size(1) == 3 && C == 1) x = Degradation::gray().apply(x);
  if (x.size(1) == 1 && C == 3) x = x.expand({-1, 3, -1, -1}).contiguous();
  if (x.size(2) != S || x.size(3) != S)
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{S, S}).mode(torch::kBilinear)
               .align_corners(false).antialias(true));
  return x.round().clamp(0, 255).to(torch::kUInt8);
}

namespace {

struct SetStats {
  torch::Tensor feats;  // (N, D) float64
  GaussianStats feat_stats;
  torch::Tensor pixels;  // (N, C·S·S) float32 in [−1, 1]: its distance by frechet_distance_of_samples
  torch::Tensor hist;   // (classes) fraction of images per predicted class
  torch::Tensor pred;   // (N) predicted class
};

SetStats stats_of(const FeatNet& net, const torch::Tensor& u8) {
  SetStats s;
  s.feats = net.features(u8);
  s.feat_stats = gaussian_stats(s.feats);
  s.pixels = u8.to(torch::kFloat32).div(127.5).sub(1.0).flatten(1);
  s.pred = net.logits(u8).argmax(1);
  s.hist = torch::bincount(s.pred, {}, net.num_classes()).to(torch::kFloat64) / double(u8.size(0));
  return s;
}

// n images of `pool`, chosen at random (seeded) when the pool is larger.
torch::Tensor subset(const torch::Tensor& pool, int64_t n, uint64_t seed) {
  if (pool.size(0) <= n) return pool;
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return pool.index_select(0, torch::randperm(pool.size(0), g, torch::kLong).slice(0, 0, n));
}

namespace fs = std::filesystem;

// The default output folder of --samples DIR: DIR_eval beside it ("s/" → "s_eval", "." → "/abs/cwd_eval").
std::string beside(std::string dir, const std::string& suffix) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto name = fs::path(dir).filename();
  if (name == "." || name == "..") dir = fs::weakly_canonical(fs::absolute(dir)).string();
  return dir + suffix;
}

// Whether `inner` is the folder `outer` or lies below it.
bool is_within(const std::string& inner, const std::string& outer) {
  auto norm = [](const std::string& p) {
    std::string s = fs::weakly_canonical(fs::absolute(p)).string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  };
  const std::string a = norm(inner), b = norm(outer);
  return a == b || a.rfind(b == "/" ? b : b + "/", 0) == 0;
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

void add_eval_fd(CLI::App& eval) {
  struct Opts {
    std::string samples, run, ref = "test", featnet, data, out, data_dir, weights = "ema", device = "auto";
    int64_t n = 0, batch = 250, k = 3, threads = 0;
    uint64_t seed = 0;
    double guidance = 1.0;
    SamplerFlags sampler;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = eval.add_subcommand("fd", "Fréchet distance, precision/recall and class histogram of samples");
  auto* src = cmd->add_option("--samples", o->samples, "a folder of sample images (PNG/JPEG)");
  cmd->add_option("--run", o->run, "a trained image run: draw --n samples first (sampler flags as in 'diffuse sample')")
      ->excludes(src);
  cmd->add_option("--n", o->n, "samples to use (--run: to draw; default 1000 / the whole folder)");
  cmd->add_option("--ref", o->ref, "reference set: test | train (the splits of the samples' data set) | a folder")
      ->capture_default_str();
  cmd->add_option("--data", o->data,
                  "the data set the samples imitate: fashion-mnist, emoji… (its feature network and splits; "
                  "images converted to the network's size and channels). Default: the run's data, or for "
                  "--samples the shipped network made for the images' channels and size");
  cmd->add_option("--featnet", o->featnet,
                  "feature network weights (default: the shipped one for the data: assets/featnet_fmnist, "
                  "assets/featnet_emoji32)");
  cmd->add_option("--out", o->out,
                  "folder for fd.json (default: RUN_DIR/eval, or SAMPLES_eval beside the samples folder)");
  cmd->add_option("--data-dir", o->data_dir, "fashion-mnist, emoji: folder of the data files (default: Debian's)");
  cmd->add_option("--k", o->k, "neighbours of the precision/recall manifolds")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the samples (--run) and of the floor's subset")->capture_default_str();
  cmd->add_option("--batch", o->batch, "samples drawn at once (--run)")->capture_default_str();
  cmd->add_option("--guidance", o->guidance, "classifier-free guidance scale (--run, class-conditional)")
      ->capture_default_str();
  cmd->add_option("--weights", o->weights, "ema or raw (--run)")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N (--run)")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)->capture_default_str();
  add_sampler_flags(*cmd, o->sampler);
  cmd->callback([o] {
    if (o->samples.empty() && o->run.empty()) throw Error("give --samples DIR or --run RUN_DIR");
    if (o->n < 0) throw Error("--n must be >= 1");
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    if (o->out.empty()) o->out = o->run.empty() ? beside(o->samples, "_eval") : o->run + "/eval";
    const bool ref_split = o->ref == "test" || o->ref == "train";
    for (const std::string& dir : {o->samples, ref_split ? std::string() : o->ref})
      if (!dir.empty() && fs::is_directory(dir) && is_within(o->out, dir))
        throw Error("--out '" + o->out + "' lies inside the image folder '" + dir +
                        "': the next evaluation would read its files as images",
                    "choose an --out outside it (the default is SAMPLES_eval, beside the samples folder)");
    set_intra_op_threads(o->threads, true);

    // The feature network: --featnet, else the shipped one of the data set (of the same channels and
    // size unless --data asks to convert), else the one made for the images' channels and size.
    std::string data = o->data, background;  // what the samples imitate ("": unknown)
    std::string featnet_path = o->featnet;
    std::unique_ptr<FeatNet> net_ptr;
    auto pick_featnet = [&](int64_t channels, int64_t size) {
      const std::string family = featnet_data_family(data);
      if (featnet_path.empty())
        featnet_path = find_featnet(family, channels, size, family == "emoji" ? background : "",
                                    /*exact=*/o->data.empty()).path;
      net_ptr = std::make_unique<FeatNet>(FeatNet::load(featnet_path));
    };

    // The samples.
    nlohmann::json j;
    torch::Tensor samples, asked;
    if (!o->run.empty()) {
      auto run = load_run(o->run, o->weights == "ema", o->device);
      if (!is_image_spec(run.config.data))
        throw Error(o->run + " is a vector run", "eval fd measures images; for vectors use eval swd");
      if (data.empty()) data = run.config.data;
      background = run.config.background;
      if (run.is_autoencoder()) run.diffusion("eval fd");  // the error naming what to do, before the feature network
      const auto image_shape = run.image_shape();  // latent runs: the decoder's images
      pick_featnet(image_shape[0], image_shape[2]);  // before minutes of sampling
      DrawConfig dc;
      dc.n = quick_n(o->n > 0 ? o->n : 1000);
      dc.batch = o->batch;
      dc.seed = o->seed;
      dc.guidance = o->guidance;
      // latents are not bounded by [−1, 1]: no clip by default; distilled runs: their own sampler
      dc.sampler = o->sampler.resolve(!run.is_latent(), &run.config);
      if (run.config.unet.num_classes > 0) {
        // Classes in the proportions of the run's training data (emoji: 58 % people-body), so
        // that the samples and the reference have the same mix; i mod K if it has no labels.
        DataOptions d = data_options(run.config);
        if (!o->data_dir.empty()) d.data_dir = o->data_dir;
        const auto train_labels = make_data_source(run.config.data, d)->labels();
        if (train_labels.defined() && train_labels.numel() > 0) {
          auto counts = torch::bincount(train_labels.to(torch::kLong), {}, run.config.unet.num_classes).to(torch::kFloat64);
          if (counts.size(0) == run.config.unet.num_classes)
            dc.class_weights = std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + counts.size(0));
        }
      }
      Progress progress("sampling", dc.n, 0, 1);
      auto drawn = draw_samples(run, dc, resolve_device(o->device), [&](int64_t done) { progress.update(done); });
      progress.finish();
      samples = to_featnet_images(to_uint8(drawn.samples), *net_ptr);
      if (run.class_names == net_ptr->spec().class_names) asked = drawn.labels;  // comparable to the classifier's
      j["run"] = o->run;
      if (run.is_vae())  // one decoder call per image, z ~ N(0, I)
        j["sampler"] = {{"name", "vae-decoder"},
                        {"steps", 0},
                        {"network_calls", 1},
                        {"seed", o->seed},
                        {"seconds_per_image", progress.elapsed() / double(dc.n)}};
      else
        j["sampler"] = {{"name", to_string(dc.sampler.kind)},
                        {"steps", int64_t(sampling_grid(run.denoiser->schedule(), dc.sampler).size()) - 1},
                        {"network_calls", network_calls(run.denoiser->schedule(), dc.sampler)},
                        {"guidance", o->guidance},
                        {"seed", o->seed},
                        {"seconds_per_image", progress.elapsed() / double(dc.n)}};
    } else {
      samples = load_image_folder(o->samples, 0, 0).images;  // the first image's size and channels
      if (o->n > 0) {
        if (o->n > samples.size(0))
          throw Error("--n " + std::to_string(o->n) + " but " + o->samples + " holds " +
                      std::to_string(samples.size(0)) + " images");
        samples = samples.slice(0, 0, o->n);
      }
      j["samples"] = o->samples;
      pick_featnet(samples.size(1), samples.size(2));
      if (samples.size(1) != net_ptr->in_channels() || samples.size(2) != net_ptr->image_size())
        // read again at the network's size and channels (luma, then resize, as the reference folder)
        samples = load_image_folder(o->samples, net_ptr->image_size(), net_ptr->in_channels())
                      .images.slice(0, 0, samples.size(0));
    }
    const FeatNet& net = *net_ptr;
    const auto& spec = net.spec();
    const std::vector<std::string>& class_names = spec.class_names;
    const std::string family = featnet_data_family(data);
    const int64_t N = samples.size(0);

    // The reference, and the floor: N real images that are not the reference against it. The
    // splits are those of the samples' data set when the network is of that family (emoji:color
    // stays emoji:color), else of the network's training data.
    torch::Tensor ref, other;
    std::string ref_data = o->ref;
    if (ref_split) {
      const std::string base =
          !family.empty() && family == featnet_data_family(spec.data) ? data : spec.data;
      DataOptions d;
      d.data_dir = o->data_dir;
      d.image_size = net.image_size();
      d.background = !spec.background.empty() ? spec.background : !background.empty() ? background : d.background;
      auto split_images = [&](const std::string& split) {
        auto source = make_data_source(data_split_spec(base, split), d);
        return to_featnet_images(to_uint8(source->items(torch::arange(source->size(), torch::kLong)).x), net);
      };
      ref_data = data_split_spec(base, o->ref);
      ref = split_images(o->ref);
      other = split_images(o->ref == "test" ? "train" : "test");
    } else {
      ref = load_image_folder(o->ref, net.image_size(), net.in_channels()).images;
    }
    const auto s = stats_of(net, samples), r = stats_of(net, ref);
    const double fd = frechet_distance(s.feat_stats, r.feat_stats);
    const double fd_pix = frechet_distance_of_samples(s.pixels, r.pixels);
    const auto pr = precision_recall(subset(r.feats, N, mix_seed(o->seed, 7)), s.feats, o->k);
    std::printf("samples      %lld images%s\n", (long long)N, o->run.empty() ? "" : " (drawn)");
    std::printf("reference    %s (%lld images)\n", ref_data.c_str(), (long long)ref.size(0));
    std::printf("FD           %.4f   (features of %s)\n", fd, featnet_path.c_str());
    std::printf("FD pixels    %.4f\n", fd_pix);
    std::printf("precision    %.4f   recall %.4f   (k = %lld, %lld reference images)\n", pr.precision, pr.recall,
                (long long)pr.k, (long long)std::min(N, ref.size(0)));
    j["n"] = N;
    j["ref"] = o->ref;
    j["ref_data"] = ref_data;
    j["n_ref"] = ref.size(0);
    j["featnet"] = featnet_path;
    j["featnet_data"] = spec.data;
    j["fd"] = fd;
    j["fd_pixels"] = fd_pix;
    j["precision"] = pr.precision;
    j["recall"] = pr.recall;
    j["k"] = pr.k;
    if (other.defined()) {
      const auto floor_images = subset(other, N, mix_seed(o->seed, 8));  // fewer when the split is smaller
      const int64_t n_floor = floor_images.size(0);
      const auto f = stats_of(net, floor_images);
      const double floor = frechet_distance(f.feat_stats, r.feat_stats);
      const double floor_pix = frechet_distance_of_samples(f.pixels, r.pixels);
      const auto fpr = precision_recall(subset(r.feats, N, mix_seed(o->seed, 7)), f.feats, o->k);
      const char* split = o->ref == "test" ? "train" : "test";
      std::printf("floor        FD %.4f   FD pixels %.4f   precision %.4f   recall %.4f   (%lld %s images vs %s)\n",
                  floor, floor_pix, fpr.precision, fpr.recall, (long long)n_floor, split, o->ref.c_str());
      j["floor"] = {{"fd", floor}, {"fd_pixels", floor_pix}, {"precision", fpr.precision},
                    {"recall", fpr.recall}, {"images", std::string(split) + " split"}, {"n", n_floor}};
    }
    std::printf("classes      predicted share of samples (reference):\n");
    nlohmann::json hist = nlohmann::json::object();
    const auto sh = to_vector(s.hist), rh = to_vector(r.hist);
    for (size_t c = 0; c < class_names.size(); ++c) {
      std::printf("  %-12s %5.1f%%  (%4.1f%%)\n", class_names[c].c_str(), 100 * sh[c], 100 * rh[c]);
      hist[class_names[c]] = {{"samples", sh[c]}, {"reference", rh[c]}};
    }
    j["class_histogram"] = hist;
    if (asked.defined()) {
      const double agree = s.pred.eq(asked).to(torch::kFloat64).mean().item<double>();
      std::printf("class agreement %.4f   (the classifier's class = the class asked for)\n", agree);
      j["class_agreement"] = agree;
    }
    ensure_dir(o->out);
    write_file_atomic(o->out + "/fd.json", [&](std::ostream& f) { f << j.dump(2) << "\n"; });
    write_picture(o->out + "/fd_samples.png", make_grid(samples.slice(0, 0, 100), 10, 2));  // enlarged to be seen
    std::printf("wrote %s/fd.json and %s/fd_samples.png\n", o->out.c_str(), o->out.c_str());
  });
}

}  // namespace diffuse::cli
