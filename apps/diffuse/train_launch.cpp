// diffuse train --nproc N: a local launcher (fork + exec of this same command, one per rank).
#include "train_launch.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/error.hpp"

namespace diffuse::cli {

namespace {

std::vector<pid_t> g_children;
extern "C" void forward_sigint(int) {
  for (pid_t p : g_children)
    if (p > 0) kill(p, SIGINT);
}

// A TCP port that was free on 127.0.0.1 a moment ago.
int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("--nproc: cannot open a socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw Error("--nproc: cannot find a free loopback port: " + std::string(std::strerror(errno)),
                "start the ranks yourself with --world-size, --rank and --master");
  }
  close(fd);
  return ntohs(a.sin_port);
}

// This process's argv, without --nproc N / --nproc=N.
std::vector<std::string> own_args() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t i = 0; i < all.size();) {
    const size_t end = all.find('\0', i);
    args.push_back(all.substr(i, end - i));
    i = end == std::string::npos ? all.size() : end + 1;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

int launch_local_ranks(int nproc, bool threads_given, double timeout_s) {
  const auto base = own_args();
  if (base.empty()) throw Error("--nproc: cannot read this process's command line (/proc/self/cmdline)");
  const int port = free_loopback_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::fprintf(stderr, "starting %d ranks on 127.0.0.1:%d\n", nproc, port);
  std::fflush(stderr);
  g_children.assign(nproc, -1);
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> a = base;
    for (const std::string& s : std::vector<std::string>{"--world-size", std::to_string(nproc), "--rank", std::to_string(r), "--master",
                          "127.0.0.1:" + std::to_string(port)})
      a.push_back(s);
    if (!threads_given) {
      a.push_back("--threads");
      a.push_back(std::to_string(std::max(1u, cores / unsigned(nproc))));
    }
    const pid_t pid = fork();
    if (pid < 0) throw Error("--nproc: fork failed: " + std::string(std::strerror(errno)));
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "error: --nproc: cannot start rank %d: %s\n", r, std::strerror(errno));
      _exit(127);
    }
    g_children[r] = pid;
  }
  auto old = std::signal(SIGINT, forward_sigint);

  using Clock = std::chrono::steady_clock;
  int running = nproc, first_fail = 0, interrupted = 0;
  Clock::time_point grace_end{};
  bool terminated = false;
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, first_fail ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pid == 0) {  // a rank failed: give the others time to notice, then stop them
      if (Clock::now() > grace_end) {
        for (pid_t p : g_children)
          if (p > 0) kill(p, terminated ? SIGKILL : SIGTERM);
        grace_end = Clock::now() + std::chrono::seconds(5);
        terminated = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int r = 0;
    while (r < nproc && g_children[r] != pid) ++r;
    if (r == nproc) continue;
    g_children[r] = -1;
    --running;
    const int code = exit_code(status);
    if (code == 130) {
      interrupted = 130;
    } else if (code != 0) {
      std::fprintf(stderr, "rank %d %s\n", r, describe_status(status).c_str());
      if (!first_fail) {
        first_fail = code;
        grace_end = Clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000) + 15000);
      }
    }
  }
  std::signal(SIGINT, old);
  g_children.clear();
  return first_fail ? first_fail : interrupted;
}

}  // namespace diffuse::cli
