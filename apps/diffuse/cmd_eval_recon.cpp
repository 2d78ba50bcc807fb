// diffuse eval recon: how well a VAE run or an autoencoder-kl run gives images back — PSNR and
// SSIM per image, and the Fréchet distance of the reconstructions to the originals in the
// project's feature network — with a picture of originals over reconstructions.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/metrics.hpp"
#include "diffuse/progress.hpp"
#include "diffuse/reconstruction.hpp"
#include "diffuse/train.hpp"

namespace diffuse::cli {

void add_eval_recon(CLI::App& eval) {
  struct Opts {
    std::string run, out, grid, split = "test", weights = "ema", device = "auto", featnet;
    int64_t n = 1000, batch = 100, threads = 0;
    CLI::Option* split_opt = nullptr;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = eval.add_subcommand("recon", "reconstructions of a VAE or autoencoder run: PSNR, SSIM, FD");
  cmd->add_option("--run", o->run, "a run of --model vae or --model autoencoder-kl")->required();
  cmd->add_option("--n", o->n, "images to reconstruct (the first of the split)")->capture_default_str();
  o->split_opt = cmd->add_option("--split", o->split, "test or train split (Fashion-MNIST, emoji)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "images reconstructed at once")->capture_default_str();
  cmd->add_option("--out", o->out, "folder for recon.json (default RUN_DIR/eval)");
  cmd->add_option("--grid", o->grid, "originals over reconstructions (first 16) to this PNG (default OUT/recon.png)");
  cmd->add_option("--featnet", o->featnet, "feature network for the FD (default: the data's, see eval fd)");
  cmd->add_option("--weights", o->weights, "ema or raw")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, kThreadsHelp)->capture_default_str();
  cmd->callback([o] {
    if (o->n < 2 || o->batch < 1) throw Error("--n must be >= 2 and --batch >= 1");
    if (o->weights != "ema" && o->weights != "raw") throw Error("--weights must be ema or raw");
    if (o->split != "test" && o->split != "train") throw Error("--split must be test or train, got '" + o->split + "'");
    if (o->threads < 0) throw Error("--threads must be >= 0", kThreadsHelp);
    auto run = load_run(o->run, o->weights == "ema", o->device);
    if (!run.is_vae() && !run.is_autoencoder())
      throw Error(o->run + " is a " + (run.is_latent() ? "latent " : "") + "diffusion run: it has no encoder",
                  "eval recon measures runs of --model vae and --model autoencoder-kl");
    set_intra_op_threads(o->threads, true);
    // The images: the asked split of the run's data set (folders: their images).
    const std::string family = featnet_data_family(run.config.data);
    std::string spec = run.config.data;
    if (!family.empty()) spec = data_split_spec(run.config.data, o->split);
    else if (given(o->split_opt)) throw Error("--split applies to Fashion-MNIST and emoji runs", spec + " has no test split");
    auto source = make_data_source(spec, data_options(run.config));
    const int64_t n = std::min(quick_n(o->n), source->size());
    if (n < 2) throw Error(spec + " holds fewer than 2 images");
    auto x = source->items(torch::arange(n, torch::kLong)).x;

    Progress progress("images", n, 0, std::min(o->batch, n));
    std::vector<torch::Tensor> parts;
    for (int64_t first = 0; first < n; first += o->batch) {
      const int64_t b = std::min(o->batch, n - first);
      parts.push_back(reconstruct(run, x.slice(0, first, first + b)));
      progress.update(first + b);
    }
    progress.finish();
    auto rec = torch::cat(parts);
    // Metrics on the 8-bit images both would be saved as.
    auto x8 = to_uint8(x), r8 = to_uint8(rec);
    auto xf = x8.to(torch::kFloat64) / 127.5 - 1, rf = r8.to(torch::kFloat64) / 127.5 - 1;
    auto p = psnr(xf, rf);
    p = torch::where(torch::isinf(p), torch::full_like(p, 100.0), p);  // an exact image counts as 100 dB
    auto s = ssim(xf, rf);
    const std::string featnet_path =
        o->featnet.empty() ? find_featnet(family, x.size(1), x.size(2), family == "emoji" ? run.config.background : "",
                                          false).path
                           : o->featnet;
    FeatNet net = FeatNet::load(featnet_path);
    const double fd = frechet_distance(gaussian_stats(net.features(to_featnet_images(x8, net))),
                                       gaussian_stats(net.features(to_featnet_images(r8, net))));

    if (o->out.empty()) o->out = o->run + "/eval";
    ensure_dir(o->out);
    if (o->grid.empty()) o->grid = o->out + "/recon.png";
    const int64_t shown = std::min<int64_t>(n, 16), row = 8;
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < shown; i += row) {
      rows.push_back(x8.slice(0, i, std::min(shown, i + row)));
      rows.push_back(r8.slice(0, i, std::min(shown, i + row)));
    }
    write_picture(o->grid, make_grid(torch::cat(rows), std::min(shown, row), 2), 0);

    nlohmann::json j;
    j["run"] = o->run;
    j["model_kind"] = to_string(run.config.model_kind);
    j["step"] = run.step;
    j["weights"] = o->weights;
    j["data"] = spec;
    j["n"] = n;
    j["psnr_db"] = p.mean().item<double>();
    j["psnr_db_std"] = p.std().item<double>();
    j["ssim"] = s.mean().item<double>();
    j["ssim_std"] = s.std().item<double>();
    j["fd"] = fd;
    j["featnet"] = featnet_path;
    j["seconds"] = progress.elapsed();
    write_file_atomic(o->out + "/recon.json", [&](std::ostream& f) { f << j.dump(2) << "\n"; });
    std::printf("reconstructions of the first %lld images of %s by %s (%s, step %lld):\n", (long long)n, spec.c_str(),
                o->run.c_str(), to_string(run.config.model_kind).c_str(), (long long)run.step);
    std::printf("  PSNR %.2f dB (std %.2f)   SSIM %.4f (std %.4f)   FD(reconstructions, originals) %.3f\n",
                j["psnr_db"].get<double>(), j["psnr_db_std"].get<double>(), j["ssim"].get<double>(),
                j["ssim_std"].get<double>(), fd);
    std::printf("wrote %s/recon.json and %s\n", o->out.c_str(), o->grid.c_str());
  });
}

}  // namespace diffuse::cli
