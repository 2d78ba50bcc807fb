// diffuse eval train-featnet: trains the feature network of the Fréchet distance.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "diffuse/data.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/io.hpp"

namespace diffuse::cli {

void add_eval_featnet(CLI::App& eval) {
  struct Opts {
    FeatNetConfig cfg;
    std::string out, data = "fashion-mnist";
    DataOptions data_opts;
    double min_accuracy = 0.92;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = eval.add_subcommand("train-featnet",
                                  "train the classifier whose features the Fréchet distance uses (Fashion-MNIST classes, or the emoji groups)");
  // No default: a default path would be the shipped assets/featnet_fmnist.safetensors, replaced silently.
  cmd->add_option("--out", o->out, "weights file (safetensors); FILE.json gets the accuracies")->required();
  cmd->add_flag("--force", o->force, "replace --out if it exists (e.g. the shipped assets/featnet_fmnist.safetensors)");
  cmd->add_option("--data", o->data, "labelled images: fashion-mnist or emoji (variants as in train: emoji:color); "
                  "trains on the train split, reports accuracy on the test split")->capture_default_str();
  cmd->add_option("--data-dir", o->data_opts.data_dir, "fashion-mnist, emoji: folder of the data files (default: Debian's)");
  cmd->add_option("--image-size", o->data_opts.image_size, "emoji: side of the images (0: 32)")->capture_default_str();
  cmd->add_option("--background", o->data_opts.background, "emoji: colour behind the glyphs")->capture_default_str();
  cmd->add_option("--epochs", o->cfg.epochs, "passes over the train split (default: 6 for fashion-mnist, 20 for emoji)");
  cmd->add_option("--shift", o->cfg.shift, "random translations by up to this many pixels (default: 0 for "
                  "fashion-mnist, 2 for emoji)");
  cmd->add_option("--hflip", o->cfg.hflip, "random horizontal flips (true/false)")->capture_default_str();
  cmd->add_option("--batch", o->cfg.batch, "images per step")->capture_default_str();
  cmd->add_option("--lr", o->cfg.lr, "AdamW peak learning rate (cosine decay)")->capture_default_str();
  cmd->add_option("--feature-dim", o->cfg.feature_dim, "size of the feature vector")->capture_default_str();
  cmd->add_option("--seed", o->cfg.seed, "seed of initialisation, shuffling and flips")->capture_default_str();
  cmd->add_option("--threads", o->cfg.threads, "intra-op threads, 0: all cores")->capture_default_str();
  cmd->add_option("--min-accuracy", o->min_accuracy, "fail (exit 1, nothing written) below this test accuracy "
                  "(default: 0.92 for fashion-mnist, 0.85 for emoji, 0 otherwise)");
  cmd->callback([o, cmd] {
    // Per-data defaults (featnet_defaults) for what the command line leaves out.
    const auto d = featnet_defaults(o->data);
    if (!cmd->count("--epochs")) o->cfg.epochs = d.epochs;
    if (!cmd->count("--shift")) o->cfg.shift = d.shift;
    if (!cmd->count("--hflip")) o->cfg.hflip = d.hflip;
    const auto family = featnet_data_family(o->data);
    if (!cmd->count("--min-accuracy")) o->min_accuracy = family == "fashion-mnist" ? 0.92 : family == "emoji" ? 0.85 : 0;
    if (std::filesystem::exists(o->out) && !o->force)  // checked before minutes of training
      throw Error("'" + o->out + "' already exists; not replacing it",
                  "pass --force to replace it, or choose another --out");
    nlohmann::json epochs = nlohmann::json::array();
    double acc = 0;
    auto net = train_featnet(o->cfg, o->data, o->data_opts, [&](const FeatNetReport& r) {
      std::printf("epoch %lld  train loss %.4f  train accuracy %.4f  test accuracy %.4f\n", (long long)r.epoch,
                  r.train_loss, r.train_accuracy, r.test_accuracy);
      std::fflush(stdout);
      epochs.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
                        {"test_accuracy", r.test_accuracy}});
      acc = r.test_accuracy;
    });
    if (acc < o->min_accuracy)
      throw Error("test accuracy " + std::to_string(acc) + " is below --min-accuracy " +
                      std::to_string(o->min_accuracy) + "; nothing written",
                  "train longer (--epochs) or lower --min-accuracy");
    const auto dir = std::filesystem::path(o->out).parent_path().string();
    if (!dir.empty()) ensure_dir(dir);
    net.save(o->out);
    const auto& spec = net.spec();
    nlohmann::json j = {{"weights", o->out},
                        {"data", o->data},
                        {"test_accuracy", acc},
                        {"feature_dim", o->cfg.feature_dim},
                        {"in_channels", spec.in_channels},
                        {"image_size", spec.image_size},
                        {"class_names", spec.class_names},
                        {"config",
                         {{"epochs", o->cfg.epochs}, {"batch", o->cfg.batch}, {"lr", o->cfg.lr},
                          {"weight_decay", o->cfg.weight_decay}, {"dropout", o->cfg.dropout},
                          {"hflip", o->cfg.hflip}, {"shift", o->cfg.shift}, {"seed", o->cfg.seed}}},
                        {"epochs", epochs}};
    write_file_atomic(o->out + ".json", [&](std::ostream& s) { s << j.dump(2) << "\n"; });
    std::printf("wrote %s (test accuracy %.4f) and %s.json\n", o->out.c_str(), acc, o->out.c_str());
  });
}

}  // namespace diffuse::cli
