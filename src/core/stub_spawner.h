#pragma once
// Starts child processes (the sluice-stub) from one long-lived thread.
//
// Why a thread of its own: PR_SET_PDEATHSIG fires when the *thread* that forked the child
// ends, not the process. A stub forked from a short-lived load thread would be SIGKILLed
// when that thread exits. Forking from a thread that lives as long as the process ties
// the stub's life to the server's, as intended.
//
// The child gets: its own process group (a terminal Ctrl-C reaches only the server),
// PR_SET_PDEATHSIG(SIGKILL) (and exits at once if the server is already gone), an empty
// signal mask with default dispositions, exactly the descriptors asked for (every other
// descriptor is closed-on-exec), and the server's environment.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::core {

struct ChildLaunch {
  std::string path;               // executable
  std::vector<std::string> args;  // argv[1..]
  // (descriptor in this process, descriptor number in the child). Targets must be >= 3
  // and distinct; sources may be close-on-exec.
  std::vector<std::pair<int, int>> fds;
};

// Forks and execs; returns the child's pid once exec succeeded. An exec failure is an
// error (the child is reaped) that names the errno, not the path.
Result<pid_t> SpawnChild(const ChildLaunch& launch);

}  // namespace sluice::core
