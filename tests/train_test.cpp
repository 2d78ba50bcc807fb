// The Trainer: loss falls, resume is exact, a NaN stops the run keeping the last
// good checkpoint, and a trained run samples.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"
#include "diffuse/sampler.hpp"
#include "diffuse/train.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {
std::string run_dir(const std::string& name) {
  auto d = fs::path(::testing::TempDir()) / ("diffuse_train_" + name);
  fs::remove_all(d);
  return d.string();
}
TrainConfig small_config() {
  TrainConfig c;
  c.data = "toy:8gaussians";
  c.schedule.T = 100;
  c.model.hidden = 32;
  c.model.blocks = 1;
  c.model.time_dim = 16;
  c.batch = 64;
  c.steps = 40;
  c.warmup = 5;
  c.log_every = 10;
  c.checkpoint_every = 1000;
  c.threads = 1;
  return c;
}
TrainHooks quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}
}  // namespace

TEST(Train, LossFalls) {
  TrainConfig c = small_config();
  c.data = "signals";
  c.model.hidden = 128;
  c.model.blocks = 2;
  c.steps = 300;
  c.log_every = 50;
  const auto dir = run_dir("falls");
  auto r = train(c, dir, false, quiet());
  EXPECT_EQ(r.status, TrainStatus::Finished);
  EXPECT_EQ(r.step, 300);
  // Untrained (zero output layer) the ε-MSE is E‖ε‖²/D = 1.
  EXPECT_LT(r.last_loss, 0.45);
  for (const char* f : {"config.json", "checkpoint.safetensors", "log.csv", "loss.png"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
}

TEST(Train, ResumeGivesTheSameWeightsAsAnUninterruptedRun) {
  const TrainConfig c = small_config();
  const auto a = run_dir("straight"), b = run_dir("resumed");
  train(c, a, false, quiet());
  TrainHooks stop = quiet();
  stop.stop_after = [](int64_t step) { return step == 17; };
  auto r1 = train(c, b, false, stop);
  ASSERT_EQ(r1.status, TrainStatus::Stopped);
  ASSERT_EQ(r1.step, 17);
  auto r2 = train(c, b, true, quiet());
  ASSERT_EQ(r2.status, TrainStatus::Finished);
  auto fa = load_safetensors(checkpoint_path(a)), fb = load_safetensors(checkpoint_path(b));
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  int compared = 0;
  for (const auto& [k, v] : fa.tensors) {
    ASSERT_TRUE(fb.tensors.count(k)) << k;
    EXPECT_TRUE(torch::equal(v, fb.tensors.at(k))) << k;
    ++compared;
  }
  EXPECT_GT(compared, 10);
  EXPECT_EQ(fa.metadata.at("step"), "40");
  EXPECT_EQ(fb.metadata.at("step"), "40");
}

TEST(Train, RefusesToOverwriteAndToResumeNothing) {
  TrainConfig c = small_config();
  c.steps = 2;
  const auto dir = run_dir("refuse");
  EXPECT_THROW(train(c, dir, true, quiet()), Error);
  train(c, dir, false, quiet());
  try {
    train(c, dir, false, quiet());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds a run"), std::string::npos);
  }
}

TEST(Train, NonFiniteLossStopsAndKeepsLastGoodCheckpoint) {
  const auto dir = run_dir("nan");
  fs::create_directories(dir);
  const std::string csv = dir + "/data.csv";
  {
    std::ofstream f(csv);
    for (int i = 0; i < 40; ++i) f << (i % 7) * 0.1 << ',' << (i % 5) * 0.2 << '\n';
    f << "3e38,3e38\n";  // one row whose square overflows float32
  }
  TrainConfig c = small_config();
  c.data = "csv:" + csv;
  c.normalize = false;
  c.batch = 4;
  c.steps = 500;
  c.checkpoint_every = 1;
  const auto run = dir + "/run";
  try {
    train(c, run, false, quiet());
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("the loss became"), std::string::npos) << m;
    EXPECT_NE(e.hint().find("last good checkpoint"), std::string::npos) << e.hint();
  }
  auto f = load_safetensors(checkpoint_path(run));
  for (const auto& [k, v] : f.tensors)
    if (v.is_floating_point()) EXPECT_TRUE(torch::isfinite(v).all().item<bool>()) << k;
}

TEST(Train, LoadedRunSamples) {
  TrainConfig c = small_config();
  c.steps = 5;
  const auto dir = run_dir("sample");
  train(c, dir, false, quiet());
  auto run = load_run(dir);
  EXPECT_EQ(run.step, 5);
  EXPECT_EQ(run.config.model.dim, 2);
  NoiseStream init(0, 0, 7), steps(1, 0, 7);
  auto x = sample(*run.denoiser, init.randn({2}), SamplerConfig{}, steps);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{7, 2}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
}
