#pragma once
// Starts the real `sluice` binary for integration tests: on ephemeral loopback ports (read
// back from its "Started ... at host:port" log lines), with its log captured, and helpers
// to signal it and to inspect its child processes.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

class ServerProcess {
 public:
  // Starts `sluice` with `args` (plus --http-port 0 --grpc-port 0 --metrics-port 0) and
  // waits until HTTP, gRPC and metrics have started. Fails the test on timeout.
  explicit ServerProcess(std::vector<std::string> args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~ServerProcess();  // SIGKILL if still running, then reaps; kills leftover stubs too

  bool started() const { return started_; }
  pid_t pid() const { return pid_; }
  int http_port() const { return http_port_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

  void Signal(int sig);
  // Waits for exit; returns the wait status, or -1 on timeout.
  int WaitExit(std::chrono::milliseconds timeout);
  // The server's log so far.
  std::string Log() const;
  // Waits until the log contains `text`.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const;

  // Direct children of the server (the stubs), from /proc.
  std::vector<pid_t> Children() const;

 private:
  void ReadLog(int fd);

  pid_t pid_ = -1;
  bool started_ = false;
  bool reaped_ = false;
  int http_port_ = 0, grpc_port_ = 0, metrics_port_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string log_;  // guarded by mu_
};

// Every pid whose parent is `parent`.
std::vector<pid_t> ChildrenOf(pid_t parent);
bool ProcessAlive(pid_t pid);
// Entries in /dev/shm.
std::vector<std::string> DevShmEntries();
// Open descriptors of a process.
int OpenFdCount(pid_t pid);
// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Paths of the built binaries and the source tree.
std::string SluiceBinary();
std::string SourceDir();

}  // namespace sluice::testing
