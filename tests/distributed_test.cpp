// Data-parallel training, end to end through the CLI on loopback (Gloo): 2 ranks × B/2 give
// the weights of 1 rank × B, a run resumes with another world size, a killed rank stops the
// other within its timeout naming the rank, and the checkpoint stays loadable.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "diffuse/io.hpp"
#include "diffuse/train.hpp"

namespace fs = std::filesystem;

namespace {

// build/tests/diffuse_tests → build/diffuse
std::string cli() { return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "diffuse").string(); }

// These tests start the CLI; `make test-asan` builds the library and the tests only.
#define DIFFUSE_REQUIRE_CLI()                                                              \
  if (!fs::exists(cli())) GTEST_SKIP() << cli() << " is not built (DIFFUSE_BUILD_APPS=OFF, " \
                                                   "as in make test-asan)"

std::string fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("diffuse_dist_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

int run(const std::string& args, const std::string& log) {
  const int s = std::system((cli() + " " + args + " >" + log + " 2>&1").c_str());
  return WIFEXITED(s) ? WEXITSTATUS(s) : 128;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Largest |a − b| / (1 + |a|) over the tensors whose names start with `prefix`.
double max_rel_diff(const std::string& run_a, const std::string& run_b, const std::string& prefix) {
  auto a = diffuse::load_safetensors(diffuse::checkpoint_path(run_a)).tensors;
  auto b = diffuse::load_safetensors(diffuse::checkpoint_path(run_b)).tensors;
  double worst = 0;
  int n = 0;
  for (const auto& [k, ta] : a) {
    if (k.rfind(prefix, 0) != 0) continue;
    EXPECT_TRUE(b.count(k)) << k;
    if (!b.count(k)) continue;
    auto x = ta.to(torch::kDouble), y = b.at(k).to(torch::kDouble);
    worst = std::max(worst, ((x - y).abs() / (1 + x.abs())).max().item<double>());
    ++n;
  }
  EXPECT_GT(n, 0) << prefix;
  return worst;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Starts `diffuse ARGS` with stdout+stderr into `log`.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<std::string> a{cli()};
    a.insert(a.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Exit status of pid, or −1 if it did not end within `seconds`.
int wait_for(pid_t pid, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

const std::string kRun = "train --data toy:swissroll --batch 64 --log-every 5 --seed 3 --threads 1";

}  // namespace

TEST(Distributed, TwoRanksOfHalfTheBatchMatchOneRank) {
  DIFFUSE_REQUIRE_CLI();
  const auto d = fresh_dir("equiv");
  ASSERT_EQ(run(kRun + " --steps 15 --out " + d + "/one", d + "/one.log"), 0) << slurp(d + "/one.log");
  ASSERT_EQ(run(kRun + " --steps 15 --nproc 2 --dist-timeout 20 --out " + d + "/two", d + "/two.log"), 0)
      << slurp(d + "/two.log");
  // Same global batch, split in two: the same trajectory up to float summation order.
  EXPECT_LT(max_rel_diff(d + "/one", d + "/two", "model."), 1e-5);
  EXPECT_LT(max_rel_diff(d + "/one", d + "/two", "ema."), 1e-5);
  EXPECT_LT(max_rel_diff(d + "/one", d + "/two", "optim."), 1e-4);
  // Overlap off (all-reduce after backward) gives the same result.
  ASSERT_EQ(run(kRun + " --steps 15 --nproc 2 --no-overlap --bucket-mb 0.001 --dist-timeout 20 --out " + d + "/three",
                d + "/three.log"), 0) << slurp(d + "/three.log");
  EXPECT_LT(max_rel_diff(d + "/two", d + "/three", "model."), 1e-5);
  fs::remove_all(d);
}

TEST(Distributed, ResumesWithAnotherWorldSize) {
  DIFFUSE_REQUIRE_CLI();
  const auto d = fresh_dir("resume");
  ASSERT_EQ(run(kRun + " --steps 20 --out " + d + "/straight", d + "/s.log"), 0) << slurp(d + "/s.log");
  // 2 ranks for 10 steps, then 1 rank to 20.
  ASSERT_EQ(run(kRun + " --steps 10 --nproc 2 --dist-timeout 20 --out " + d + "/a", d + "/a1.log"), 0)
      << slurp(d + "/a1.log");
  ASSERT_EQ(run("train --steps 20 --resume --threads 1 --out " + d + "/a", d + "/a2.log"), 0) << slurp(d + "/a2.log");
  // 1 rank for 10 steps, then 2 ranks to 20.
  ASSERT_EQ(run(kRun + " --steps 10 --out " + d + "/b", d + "/b1.log"), 0) << slurp(d + "/b1.log");
  ASSERT_EQ(run("train --steps 20 --resume --nproc 2 --dist-timeout 20 --out " + d + "/b", d + "/b2.log"), 0)
      << slurp(d + "/b2.log");
  EXPECT_LT(max_rel_diff(d + "/straight", d + "/a", "model."), 1e-5);
  EXPECT_LT(max_rel_diff(d + "/straight", d + "/b", "model."), 1e-5);
  EXPECT_LT(max_rel_diff(d + "/straight", d + "/b", "ema."), 1e-5);
  fs::remove_all(d);
}

TEST(Distributed, KilledRankStopsTheOtherNamingIt) {
  DIFFUSE_REQUIRE_CLI();
  const auto d = fresh_dir("kill");
  const std::string master = "127.0.0.1:" + std::to_string(free_port());
  std::vector<std::string> common{"train", "--data", "toy:swissroll", "--batch", "64", "--steps", "1000000",
                                  "--checkpoint-every", "20", "--threads", "1", "--dist-timeout", "5",
                                  "--world-size", "2", "--master", master, "--out", d + "/run"};
  auto with_rank = [&](int r) {
    auto a = common;
    a.push_back("--rank");
    a.push_back(std::to_string(r));
    return a;
  };
  const pid_t r0 = spawn(with_rank(0), d + "/r0.log");
  const pid_t r1 = spawn(with_rank(1), d + "/r1.log");
  // Let it write a checkpoint or two, then kill rank 1.
  const auto ckpt = diffuse::checkpoint_path(d + "/run");
  for (int i = 0; i < 400 && !fs::exists(ckpt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(ckpt)) << slurp(d + "/r0.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(r1, SIGKILL);
  waitpid(r1, nullptr, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = wait_for(r0, 5 + 10);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (code < 0) kill(r0, SIGKILL), waitpid(r0, nullptr, 0);
  const auto log = slurp(d + "/r0.log");
  EXPECT_GT(code, 0) << log;
  EXPECT_LT(took, 15.0);
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
  EXPECT_NE(log.find("--resume"), std::string::npos) << log;
  // The checkpoint is intact and loads.
  EXPECT_NO_THROW(diffuse::load_run(d + "/run", true, "cpu"));
  fs::remove_all(d);
}

TEST(Distributed, MissingRankIsNamed) {
  DIFFUSE_REQUIRE_CLI();
  const auto d = fresh_dir("missing");
  const std::string master = "127.0.0.1:" + std::to_string(free_port());
  const auto t0 = std::chrono::steady_clock::now();
  const int code = run(kRun + " --steps 5 --world-size 3 --rank 0 --master " + master + " --dist-timeout 2 --out " + d +
                           "/run",
                       d + "/r0.log");
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto log = slurp(d + "/r0.log");
  EXPECT_EQ(code, 1) << log;
  EXPECT_LT(took, 10.0);
  EXPECT_NE(log.find("ranks 1, 2 did not join"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(diffuse::checkpoint_path(d + "/run")));
  fs::remove_all(d);
}
