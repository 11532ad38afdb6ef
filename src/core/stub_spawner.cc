#include "core/stub_spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <thread>

#include "common/thread_annotations.h"

namespace sluice::core {
namespace {

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void ExecChild(const char* path, char* const* argv, const std::pair<int, int>* fds,
                            size_t nfds, int max_target, pid_t parent, int err_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2})
    sigaction(sig, &dfl, nullptr);
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  // Move every source out of the target range first, then into place (dup2 clears
  // close-on-exec on the target).
  int moved[16];
  for (size_t i = 0; i < nfds; ++i) {
    moved[i] = fcntl(fds[i].first, F_DUPFD_CLOEXEC, max_target + 1);
    if (moved[i] < 0) goto fail;
  }
  for (size_t i = 0; i < nfds; ++i)
    if (dup2(moved[i], fds[i].second) < 0) goto fail;
  // Everything above the targets (including err_fd) closes at exec.
  close_range(static_cast<unsigned>(max_target + 1), ~0u, CLOSE_RANGE_CLOEXEC);
  execv(path, argv);
fail:
  int e = errno;
  (void)!write(err_fd, &e, sizeof e);
  _exit(127);
}

class Spawner {
 public:
  Spawner() : thread_([this] { Loop(); }) {}
  ~Spawner() {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    cv_.NotifyAll();
    thread_.join();
  }

  Result<pid_t> Spawn(const ChildLaunch& launch) SLUICE_EXCLUDES(mu_) {
    Job job{&launch, {}};
    auto future = job.result.get_future();
    {
      MutexLock lock(mu_);
      if (stop_) return Unavailable("the process is exiting: no new stub");
      jobs_.push_back(&job);
    }
    cv_.NotifyAll();
    return future.get();
  }

 private:
  struct Job {
    const ChildLaunch* launch;
    std::promise<Result<pid_t>> result;
  };

  void Loop() SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (;;) {
      cv_.Wait(mu_, [this]() SLUICE_REQUIRES(mu_) { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stop_ and nothing left
      Job* job = jobs_.front();
      jobs_.pop_front();
      lock.Unlock();
      job->result.set_value(Run(*job->launch));
      lock.Lock();
    }
  }

  static Result<pid_t> Run(const ChildLaunch& launch) {
    if (launch.fds.size() > 16) return InvalidArgument("too many descriptors for a child");
    int max_target = 2;
    for (const auto& [src, dst] : launch.fds) {
      if (dst < 3) return InvalidArgument("child descriptor numbers start at 3");
      max_target = std::max(max_target, dst);
    }
    std::vector<std::string> storage;
    storage.push_back(launch.path);
    storage.insert(storage.end(), launch.args.begin(), launch.args.end());
    std::vector<char*> argv;
    for (std::string& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);

    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0)
      return Internal(std::string("cannot create a pipe: ") + std::strerror(errno));
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      close(err_pipe[0]);
      close(err_pipe[1]);
      return Unavailable(std::string("fork failed: ") + std::strerror(e));
    }
    if (pid == 0) {
      close(err_pipe[0]);
      ExecChild(storage[0].c_str(), argv.data(), launch.fds.data(), launch.fds.size(),
                max_target, parent, err_pipe[1]);
    }
    close(err_pipe[1]);
    (void)setpgid(pid, pid);  // also done by the child; whichever runs first wins
    int child_errno = 0;
    ssize_t n;
    do {
      n = read(err_pipe[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(err_pipe[0]);
    if (n > 0) {
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return Unavailable(std::string("cannot start the stub executable: ") +
                         std::strerror(child_errno));
    }
    return pid;
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<Job*> jobs_ SLUICE_GUARDED_BY(mu_);
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;     // lives until static destruction; joined there
};

}  // namespace

Result<pid_t> SpawnChild(const ChildLaunch& launch) {
  static Spawner spawner;
  return spawner.Spawn(launch);
}

}  // namespace sluice::core
