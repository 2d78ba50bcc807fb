// diffuse train --nproc N: start N local ranks of this same command and relay their exit.
#pragma once

namespace diffuse::cli {

// Re-executes this process's command line N times, with `--nproc` replaced by
// `--world-size N --rank i --master 127.0.0.1:PORT` (a free loopback port) and, unless
// `threads_given`, `--threads cores/N`. Waits for all; when one fails, the others get
// `timeout_s` + 15 s to stop on their own (they notice within their --dist-timeout) before
// SIGTERM. SIGINT is forwarded. Returns the exit status to use: 0, the first failing rank's
// status (128 + signal if it was killed), or 130 if the ranks were interrupted.
int launch_local_ranks(int nproc, bool threads_given, double timeout_s);

}  // namespace diffuse::cli
