// The Trainer: loss falls, resume is exact (vector and image runs), a NaN stops the run
// keeping the last good checkpoint, a trained run samples (fp32 and bf16, EMA and raw weights),
// and --threads 0 follows OMP_NUM_THREADS.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

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

// Image runs: a very small class-conditional U-Net (attention at 14×14, dropout, label
// dropout, EMA) on the Fashion-MNIST test split, T = 20, a few steps on one thread.
namespace {
TrainConfig tiny_unet_config() {
  TrainConfig c;
  c.data = "fashion-mnist:test";
  c.class_conditional = true;
  c.schedule.T = 20;
  c.schedule.beta_start = 0.005;
  c.schedule.beta_end = 0.5;
  c.unet.base_channels = 8;
  c.unet.channel_mult = {1, 2};
  c.unet.blocks_per_level = 1;
  c.unet.attention_resolutions = {14};
  c.unet.head_channels = 8;
  c.unet.groups = 4;
  c.unet.dropout = 0.1;
  c.layout = MemoryLayout::Nchw;  // runs compared bit for bit: no timed choice between them
  c.batch = 4;
  c.steps = 6;
  c.warmup = 2;
  c.log_every = 2;
  c.checkpoint_every = 1000;
  c.threads = 1;
  return c;
}
// A folder of links to Debian's Fashion-MNIST files (a data_dir that can be moved).
std::string linked_fashion_mnist(const std::string& dir) {
  fs::create_directories(dir);
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::create_symlink(std::string("/usr/share/datasets/fashion-mnist/") + f, dir + "/" + f);
  return dir;
}
}  // namespace

TEST(Train, ImageRunResumesBitForBit) {
  // Reference: the same run without the interruption. Every tensor of the checkpoint (weights,
  // EMA, AdamW moments and step counts) must be equal, bit for bit.
  const TrainConfig c = tiny_unet_config();
  const auto a = run_dir("img_straight"), b = run_dir("img_resumed");
  ASSERT_EQ(train(c, a, false, quiet()).status, TrainStatus::Finished);
  TrainHooks stop = quiet();
  stop.stop_after = [](int64_t step) { return step == 3; };
  ASSERT_EQ(train(c, b, false, stop).status, TrainStatus::Stopped);
  ASSERT_EQ(train(c, b, true, quiet()).status, TrainStatus::Finished);
  auto fa = load_safetensors(checkpoint_path(a)), fb = load_safetensors(checkpoint_path(b));
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  std::map<std::string, int> compared;
  int ema_differs = 0;
  for (const auto& [k, v] : fa.tensors) {
    ASSERT_TRUE(fb.tensors.count(k)) << k;
    EXPECT_TRUE(torch::equal(v, fb.tensors.at(k))) << k;
    ++compared[k.substr(0, k.find('.'))];
    if (k.rfind("model.", 0) == 0 && !torch::equal(v, fa.tensors.at("ema." + k.substr(6)))) ++ema_differs;
  }
  EXPECT_GT(compared["model"], 20);
  EXPECT_EQ(compared["ema"], compared["model"]);
  EXPECT_GT(compared["optim"], 20);
  EXPECT_GT(ema_differs, 10);  // the EMA is an average of past weights, not a copy, so it is tested too
  EXPECT_EQ(fb.metadata.at("step"), "6");
}

TEST(Train, ResumeReadsTheDataFromTheGivenDataDir) {
  // The data moved after the first part of the run: resume with the new data_dir.
  const auto dir = run_dir("moved_data");
  TrainConfig c = tiny_unet_config();
  c.steps = 4;
  c.data_dir = linked_fashion_mnist(dir + "/fm_old");
  TrainHooks stop = quiet();
  stop.stop_after = [](int64_t step) { return step == 2; };
  ASSERT_EQ(train(c, dir + "/run", false, stop).status, TrainStatus::Stopped);
  fs::rename(dir + "/fm_old", dir + "/fm_new");
  TrainConfig r = c;
  r.data_dir = dir + "/fm_new";
  ASSERT_EQ(train(r, dir + "/run", true, quiet()).status, TrainStatus::Finished);
  EXPECT_EQ(load_run(dir + "/run").config.data_dir, dir + "/fm_new");  // and the run now refers to it
  // An empty data_dir keeps the saved one.
  TrainConfig keep = c;
  keep.data_dir = "";
  keep.steps = 5;
  ASSERT_EQ(train(keep, dir + "/run", true, quiet()).status, TrainStatus::Finished);
  EXPECT_EQ(load_run(dir + "/run").config.data_dir, dir + "/fm_new");
}

TEST(Train, Bf16ImageRunTrainsLoadsAndSamples) {
  TrainConfig c = tiny_unet_config();
  c.steps = 3;
  c.precision = Precision::Bf16;
  const auto dir = run_dir("bf16");
  auto r = train(c, dir, false, quiet());
  ASSERT_EQ(r.status, TrainStatus::Finished);
  EXPECT_TRUE(std::isfinite(r.last_loss));
  // The same run in fp32 ends with other weights: the forward really ran in bf16.
  TrainConfig f = c;
  f.precision = Precision::Fp32;
  const auto dir32 = run_dir("fp32");
  train(f, dir32, false, quiet());
  auto wb = load_safetensors(checkpoint_path(dir)), w32 = load_safetensors(checkpoint_path(dir32));
  double max_diff = 0;
  for (const auto& [k, v] : wb.tensors)
    if (k.rfind("model.", 0) == 0 && v.is_floating_point())
      max_diff = std::max(max_diff, (v - w32.tensors.at(k)).abs().max().item<double>());
  EXPECT_GT(max_diff, 0.0);
  for (const auto& [k, v] : wb.tensors)
    if (v.is_floating_point()) EXPECT_TRUE(torch::isfinite(v).all().item<bool>()) << k;
  auto run = load_run(dir);
  EXPECT_EQ(run.config.precision, Precision::Bf16);
  NoiseStream init(0, 0, 4), steps(1, 0, 4);
  Conditioning cond;
  cond.labels = torch::arange(4, torch::kLong);
  auto x = sample(*run.denoiser, init.randn({1, 28, 28}), SamplerConfig{}, steps, {}, cond);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  EXPECT_GT(x.std().item<double>(), 0.0);
}

TEST(Train, RawWeightsAreTheModelTensorsAndSampleOtherImagesThanTheEma) {
  TrainConfig c = tiny_unet_config();
  c.steps = 4;
  const auto dir = run_dir("raw_ema");
  train(c, dir, false, quiet());
  auto file = load_safetensors(checkpoint_path(dir));
  auto raw = load_run(dir, false), ema = load_run(dir, true);
  int params = 0, differ = 0;
  for (const auto& p : raw.network.module->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), file.tensors.at("model." + p.key()))) << p.key();
    ++params;
  }
  for (const auto& p : ema.network.module->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), file.tensors.at("ema." + p.key()))) << p.key();
    if (!torch::equal(p.value(), file.tensors.at("model." + p.key()))) ++differ;
  }
  EXPECT_GT(params, 20);
  EXPECT_GT(differ, 10);
  auto draw = [](const LoadedRun& run) {
    NoiseStream init(0, 0, 3), steps(1, 0, 3);
    Conditioning cond;
    cond.labels = torch::arange(3, torch::kLong);
    SamplerConfig sc;
    sc.steps = 5;
    return sample(*run.denoiser, init.randn({1, 28, 28}), sc, steps, {}, cond);
  };
  auto xr = draw(raw), xe = draw(ema);
  EXPECT_TRUE(torch::isfinite(xr).all().item<bool>());
  EXPECT_GT((xr - xe).abs().max().item<double>(), 1e-3);
}

TEST(Threads, ZeroFollowsOmpNumThreads) {
  const char* old = std::getenv("OMP_NUM_THREADS");
  const std::string saved = old ? old : "";
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  setenv("OMP_NUM_THREADS", "3", 1);
  EXPECT_EQ(intra_op_threads(0, true), 3);
  EXPECT_EQ(intra_op_threads(0, false), 3);
  EXPECT_EQ(intra_op_threads(2, true), 2);  // an explicit --threads wins
  setenv("OMP_NUM_THREADS", "5,2", 1);     // OpenMP's nested list: the outer level counts
  EXPECT_EQ(intra_op_threads(0, false), 5);
  for (const char* unusable : {"", "0", "-2", "many"}) {
    setenv("OMP_NUM_THREADS", unusable, 1);
    EXPECT_EQ(intra_op_threads(0, true), cores) << unusable;
    EXPECT_EQ(intra_op_threads(0, false), 1) << unusable;
  }
  unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(intra_op_threads(0, true), cores);
  EXPECT_EQ(intra_op_threads(0, false), 1);
  if (old) setenv("OMP_NUM_THREADS", saved.c_str(), 1);
}
