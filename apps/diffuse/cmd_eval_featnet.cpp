// diffuse eval train-featnet: trains the feature network of the Fréchet distance.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "diffuse/error.hpp"
#include "diffuse/featnet.hpp"
#include "diffuse/io.hpp"

namespace diffuse::cli {

void add_eval_featnet(CLI::App& eval) {
  struct Opts {
    FeatNetConfig cfg;
    std::string out = "assets/featnet_fmnist.safetensors", data_dir;
    double min_accuracy = 0.92;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = eval.add_subcommand("train-featnet",
                                  "train the Fashion-MNIST classifier whose features the Fréchet distance uses");
  cmd->add_option("--out", o->out, "weights file (safetensors); FILE.json gets the accuracies")->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "Fashion-MNIST files (default: Debian's dataset-fashion-mnist)");
  cmd->add_option("--epochs", o->cfg.epochs, "passes over the train split")->capture_default_str();
  cmd->add_option("--batch", o->cfg.batch, "images per step")->capture_default_str();
  cmd->add_option("--lr", o->cfg.lr, "AdamW peak learning rate (cosine decay)")->capture_default_str();
  cmd->add_option("--feature-dim", o->cfg.feature_dim, "size of the feature vector")->capture_default_str();
  cmd->add_option("--seed", o->cfg.seed, "seed of initialisation, shuffling and flips")->capture_default_str();
  cmd->add_option("--threads", o->cfg.threads, "intra-op threads, 0: all cores")->capture_default_str();
  cmd->add_option("--min-accuracy", o->min_accuracy, "fail (exit 1, nothing written) below this test accuracy")
      ->capture_default_str();
  cmd->callback([o] {
    nlohmann::json epochs = nlohmann::json::array();
    double acc = 0;
    auto net = train_featnet(o->cfg, o->data_dir, [&](const FeatNetReport& r) {
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
    nlohmann::json j = {{"weights", o->out},
                        {"test_accuracy", acc},
                        {"feature_dim", o->cfg.feature_dim},
                        {"config",
                         {{"epochs", o->cfg.epochs}, {"batch", o->cfg.batch}, {"lr", o->cfg.lr},
                          {"weight_decay", o->cfg.weight_decay}, {"dropout", o->cfg.dropout},
                          {"hflip", o->cfg.hflip}, {"seed", o->cfg.seed}}},
                        {"epochs", epochs}};
    write_file_atomic(o->out + ".json", [&](std::ostream& s) { s << j.dump(2) << "\n"; });
    std::printf("wrote %s (test accuracy %.4f) and %s.json\n", o->out.c_str(), acc, o->out.c_str());
  });
}

}  // namespace diffuse::cli
