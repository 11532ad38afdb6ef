// sluice-stub: one model instance in its own process (DESIGN.md §1). Started by the
// server (core/stub_process.cc) as
//   sluice-stub --ipc-fd 3 --shm-fd 4 --parent-pid <server pid>
// with the control socket and the shared-memory memfd inherited at those descriptors.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/log_settings.h"
#include "stub/stub_runtime.h"

namespace {

bool ParseInt(const char* s, long& out) {
  std::string_view v(s);
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && end == v.data() + v.size();
}

}  // namespace

int main(int argc, char** argv) {
  long ipc_fd = -1, shm_fd = -1, parent = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag(argv[i]);
    long* target = flag == "--ipc-fd" ? &ipc_fd : flag == "--shm-fd" ? &shm_fd
                 : flag == "--parent-pid" ? &parent : nullptr;
    if (target == nullptr || !ParseInt(argv[i + 1], *target)) {
      std::fprintf(stderr, "sluice-stub: bad argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (ipc_fd < 3 || parent <= 0) {
    std::fprintf(stderr, "sluice-stub: started without --ipc-fd/--parent-pid (the server starts it)\n");
    return 2;
  }
  // The server's log format until the Init message names the model (stub_runtime.cc).
  sluice::SetLogPattern("default", "[stub] ");
  // Die with the server; if it is already gone (reparented), stop now.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != static_cast<pid_t>(parent)) return 1;
  // Own process group: a terminal Ctrl-C reaches only the server, which stops us in order.
  (void)setpgid(0, 0);
  // Keep stdio, the link and the memfd; close anything else inherited by mistake.
  const long keep_max = std::max(ipc_fd, shm_fd);
  for (long fd = 3; fd < keep_max; ++fd)
    if (fd != ipc_fd && fd != shm_fd) close(static_cast<int>(fd));
  close_range(static_cast<unsigned>(keep_max + 1), ~0u, 0);
  signal(SIGPIPE, SIG_IGN);
  // crash_after_responses aborts on purpose: no core files.
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);

  sluice::stub::StubRuntime runtime(static_cast<int>(ipc_fd), static_cast<int>(shm_fd));
  runtime.Run();
}
