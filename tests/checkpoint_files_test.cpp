// Wrong or foreign checkpoint files are errors that say what does not match, never a
// partial load: truncated, zeroed, another model size, a newer format, not a checkpoint,
// oversized length fields. And a failed write leaves the previous file as it was.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffuse/error.hpp"
#include "diffuse/image_io.hpp"
#include "diffuse/io.hpp"
#include "diffuse/train.hpp"

using namespace diffuse;
namespace fs = std::filesystem;

namespace {

std::string ckpt_dir(const std::string& name) {
  auto d = fs::path(::testing::TempDir()) / ("diffuse_ckpt_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// A trained vector run (2 steps), once per test binary.
const std::string& ckpt_trained_run() {
  static const std::string dir = [] {
    auto d = (fs::path(::testing::TempDir()) / "diffuse_ckpt_run").string();
    fs::remove_all(d);
    TrainConfig c;
    c.data = "toy:8gaussians";
    c.schedule.T = 20;
    c.model.hidden = 16;
    c.model.blocks = 1;
    c.model.time_dim = 8;
    c.batch = 8;
    c.steps = 2;
    c.threads = 1;
    TrainHooks h;
    h.quiet = true;
    train(c, d, false, h);
    return d;
  }();
  return dir;
}

std::string ckpt_read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void ckpt_write_all(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// A copy of the trained run whose checkpoint is `bytes`.
std::string run_with_checkpoint(const std::string& name, const std::string& bytes) {
  const auto d = ckpt_dir(name);
  ckpt_write_all(checkpoint_path(d), bytes);
  return d;
}

// The trained checkpoint with its metadata changed by `edit`.
std::string edited_checkpoint(const std::function<void(std::map<std::string, std::string>&)>& edit,
                              const std::string& name) {
  auto f = load_safetensors(checkpoint_path(ckpt_trained_run()));
  edit(f.metadata);
  const auto d = ckpt_dir(name);
  save_safetensors(checkpoint_path(d), f.tensors, f.metadata);
  return d;
}

// The message of the diffuse::Error that f throws ("" if it throws none).
template <class F>
std::string ckpt_error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "";
}

}  // namespace

TEST(CheckpointFiles, TheTrainedRunLoads) { EXPECT_NO_THROW(load_run(ckpt_trained_run(), true, "cpu")); }

TEST(CheckpointFiles, TruncatedFileSaysTruncated) {
  const std::string bytes = ckpt_read_all(checkpoint_path(ckpt_trained_run()));
  for (size_t keep : {size_t(0), size_t(5), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    const auto d = run_with_checkpoint("trunc", bytes.substr(0, keep));
    const auto msg = ckpt_error_of([&] { load_run(d, true, "cpu"); });
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("too short") != std::string::npos ||
                msg.find("header length") != std::string::npos)
        << "kept " << keep << " bytes: " << msg;
  }
}

TEST(CheckpointFiles, ZeroedFileIsNotACheckpoint) {
  const std::string bytes = ckpt_read_all(checkpoint_path(ckpt_trained_run()));
  const auto d = run_with_checkpoint("zeroed", std::string(bytes.size(), '\0'));
  const auto msg = ckpt_error_of([&] { load_run(d, true, "cpu"); });
  EXPECT_NE(msg.find("corrupt safetensors header"), std::string::npos) << msg;
}

TEST(CheckpointFiles, AnotherModelSizeNamesTheTensorAndBothShapes) {
  const auto d = edited_checkpoint(
      [](auto& md) {
        auto c = nlohmann::json::parse(md.at("config"));
        c["model"]["hidden"] = 24;  // the tensors are of hidden 16
        md["config"] = c.dump();
      },
      "size");
  const auto msg = ckpt_error_of([&] { load_run(d, true, "cpu"); });
  EXPECT_NE(msg.find("has shape [16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("where the model of its config has [24"), std::string::npos) << msg;
  EXPECT_NE(msg.find("another model size"), std::string::npos) << msg;
}

TEST(CheckpointFiles, NewerFormatAsksForAnUpdate) {
  const auto d = edited_checkpoint([](auto& md) { md["format_version"] = "7"; }, "newer");
  const auto msg = ckpt_error_of([&] { load_run(d, true, "cpu"); });
  EXPECT_NE(msg.find("newer diffuse (format version 7"), std::string::npos) << msg;
  const auto bad = edited_checkpoint([](auto& md) { md["step"] = "12abc"; }, "badstep");
  EXPECT_NE(ckpt_error_of([&] { load_run(bad, true, "cpu"); }).find("'step' is '12abc'"), std::string::npos);
}

TEST(CheckpointFiles, ForeignSafetensorsIsNotADiffuseCheckpoint) {
  const auto d = ckpt_dir("foreign");
  save_safetensors(checkpoint_path(d), {{"weight", torch::ones({2, 2})}}, {});
  const auto msg = ckpt_error_of([&] { load_run(d, true, "cpu"); });
  EXPECT_NE(msg.find("is not a diffuse checkpoint"), std::string::npos) << msg;
}

TEST(CheckpointFiles, LengthFieldsAreBoundedBeforeAllocation) {
  // A header length of 2^61 in a 16-byte file, and a tensor of 2^70 elements declared in a
  // small one: errors, not allocations.
  const auto d = ckpt_dir("lengths");
  std::string bytes(16, '\0');
  bytes[7] = 0x20;
  ckpt_write_all(d + "/a.safetensors", bytes);
  EXPECT_NE(ckpt_error_of([&] { load_safetensors(d + "/a.safetensors"); }).find("header length"), std::string::npos);
  std::string h = R"({"a":{"dtype":"F32","shape":[1099511627776,1073741824],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = char((h.size() >> (8 * i)) & 0xff);
  ckpt_write_all(d + "/b.safetensors", file + h + std::string(4, '\0'));
  EXPECT_NE(ckpt_error_of([&] { load_safetensors(d + "/b.safetensors"); }).find("shape that does not fit"),
            std::string::npos);
  // A PNG that claims 1 048 576 × 1 048 576 pixels.
  EXPECT_NO_THROW(check_image_size("x.png", kMaxImageSide, kMaxImagePixels / kMaxImageSide));
  EXPECT_NE(ckpt_error_of([] { check_image_size("x.png", 1 << 20, 1 << 20); }).find("beyond what diffuse reads"),
            std::string::npos);
}

TEST(CheckpointFiles, AFailedWriteKeepsTheOldFile) {
  const auto d = ckpt_dir("atomic");
  const std::string path = d + "/f.bin";
  write_file_atomic(path, [](std::ostream& o) { o << "old contents"; });
  EXPECT_THROW(write_file_atomic(path,
                                 [](std::ostream& o) {
                                   o << "half of the new";
                                   throw Error("interrupted");
                                 }),
               Error);
  EXPECT_EQ(ckpt_read_all(path), "old contents");
  for (const auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename(), "f.bin");  // no temp file left
}

TEST(CheckpointFiles, StaleTempFilesOfDeadProcessesAreRemoved) {
  const auto d = ckpt_dir("stale");
  const pid_t child = ::fork();  // a process that has ended: its PID is free
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = d + "/checkpoint.safetensors.tmp-" + std::to_string(child);
  const std::string mine = d + "/log.csv.tmp-" + std::to_string(::getpid());
  const std::string other = d + "/notes.tmp-draft";
  for (const auto& f : {dead, mine, other}) ckpt_write_all(f, "x");
  EXPECT_EQ(remove_stale_temp_files(d), 1);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_TRUE(fs::exists(other));
}
