#pragma once
// The inside of a sluice-stub process: reads Init, creates and initializes the backend,
// then serves the server over the IPC link until Shutdown.
//
// Threads: the IPC thread reads every message and answers Heartbeat at once (even while
// the backend initializes, executes or finalizes); it is the only caller of Execute and
// Cancel. The main thread (Run) runs Initialize and Finalize. Responses are sent from
// whichever thread the backend uses, through IpcResponseSender.
//
// Exit: Run returns only through _exit: 0 after Shutdown + Finalize, 1 when the server is
// gone (the link closed), 2 when the server sent garbage or Init failed to arrive.

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>

#include "backends/backend.h"
#include "common/inference.h"
#include "common/thread_annotations.h"
#include "ipc/connection.h"
#include "stub/gpu_hold.h"
#include "stub/test_behavior.h"

namespace sluice::stub {

class IpcResponseSender;

class StubRuntime {
 public:
  // Takes ownership of both descriptors. `shm_fd` < 0: no shared memory (inline only).
  StubRuntime(int ipc_fd, int shm_fd);
  [[noreturn]] void Run();

  // Sends one response event of request `request_id` (called by IpcResponseSender, any
  // thread). Counts responses for crash_after_responses; forgets the request on final.
  Status SendResponse(uint64_t request_id, ResponseEvent event);
  // Tells the server that the backend started the request (best effort: a failure is
  // logged, the request carries on and counts as started at its end).
  void SendStarted(uint64_t request_id);
  const std::string& backend_name() const { return backend_name_; }

 private:
  void ReadLoop();
  void HandleRequest(uint64_t id, InferRequest request) SLUICE_EXCLUDES(mu_);
  void HandleCancel(uint64_t id) SLUICE_EXCLUDES(mu_);
  void HandleHeartbeat(uint64_t sequence);
  // Reads the launch spec and the test behaviour (before the IPC thread starts).
  Status Prepare(const InstanceSpec& instance);
  // Creates and initializes the backend (main thread, while the IPC thread runs).
  Status Initialize(const InstanceSpec& instance);
  [[noreturn]] void Exit(int code);

  std::unique_ptr<ipc::Connection> link_;  // self-synchronised for Send
  std::string backend_name_;               // constant once the IPC thread runs
  TestBehavior behavior_;                  // constant once the IPC thread runs
  std::unique_ptr<backends::Backend> backend_;  // set by Initialize before initialized_
  std::unique_ptr<GpuHold> gpu_hold_;      // main thread only

  std::atomic<bool> initialized_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> responses_sent_{0};

  Mutex mu_;
  CondVar cv_;
  bool shutdown_requested_ SLUICE_GUARDED_BY(mu_) = false;
  // Live senders, for Cancel (weak: the backend owns them).
  std::unordered_map<uint64_t, std::weak_ptr<IpcResponseSender>> senders_ SLUICE_GUARDED_BY(mu_);

  std::thread reader_;  // never joined: the process ends with _exit
};

}  // namespace sluice::stub
