#pragma once
// Liveness that covers every listener. A listener can die while the process lives: Debian's
// gRPC 1.51 stops accepting for good after one accept4() fails with EMFILE, and a server
// that still answers /v2/health/live with 200 then is never restarted. ListenerWatch probes
// each listener the way a client reaches it, over a fresh loopback connection each time (an
// HTTP/1.1 GET for HTTP listeners, a ServerLive RPC on a new channel for gRPC): any answer,
// whatever its status (401 from an API key included), proves the listener accepts. A
// listener that failed `failures_to_dead` probes in a row is dead, and Alive() is false
// until it answers again.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::server {

struct WatchedListener {
  enum class Kind { kHttp, kGrpc };
  std::string name;  // "HTTP", "gRPC", "metrics": for logs
  Kind kind = Kind::kHttp;
  std::string address;  // as bound: "0.0.0.0" / "::" are probed on loopback
  uint16_t port = 0;
  std::string http_path = "/";  // HTTP only
};

struct ListenerWatchOptions {
  std::chrono::milliseconds period{5000};
  std::chrono::milliseconds probe_timeout{2000};
  int failures_to_dead = 3;
};

// Connects to address:port and sends one GET; true when an HTTP status line comes back
// within `timeout`.
bool ProbeHttp(const std::string& address, uint16_t port, const std::string& path,
               std::chrono::milliseconds timeout);
// A ServerLive RPC over a new connection; true for any answer but UNAVAILABLE or a deadline.
bool ProbeGrpc(const std::string& address, uint16_t port, std::chrono::milliseconds timeout);

class ListenerWatch {
 public:
  // Starts the probing thread; the first probes run after one period.
  ListenerWatch(std::vector<WatchedListener> listeners, ListenerWatchOptions options);
  ~ListenerWatch();  // stops and joins the thread
  ListenerWatch(const ListenerWatch&) = delete;
  ListenerWatch& operator=(const ListenerWatch&) = delete;

  // False while any listener is dead. Cheap: reads what the thread found.
  bool Alive() const { return alive_.load(std::memory_order_relaxed); }

 private:
  void Run() SLUICE_EXCLUDES(mu_);

  // Constant after construction.
  const std::vector<WatchedListener> listeners_;
  const ListenerWatchOptions options_;
  // Self-synchronised.
  std::atomic<bool> alive_{true};
  Mutex mu_;
  CondVar wake_;
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after everything above
};

}  // namespace sluice::server
