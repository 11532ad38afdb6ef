#pragma once
// The stub's ResponseSender: turns a backend's Send/SendFinal/SendError into Response
// messages for one request. Thread-safe; the first final event ends the request and every
// later call returns InvalidArgument without sending. Dropping the last reference before a final event sends a final INTERNAL error naming the backend.

#include <atomic>

#include "backends/backend.h"
#include "common/thread_annotations.h"

namespace sluice::stub {

class StubRuntime;

class IpcResponseSender : public backends::ResponseSender {
 public:
  // `runtime` outlives every sender (it lives until the process _exits).
  IpcResponseSender(StubRuntime& runtime, uint64_t request_id)
      : runtime_(runtime), request_id_(request_id) {}
  ~IpcResponseSender() override;

  Status Send(InferResponse response, bool final) override;
  Status SendFinal() override;
  Status SendError(Status error) override;
  bool IsCancelled() const override { return cancelled_.load(); }
  void ReportStarted() override;

  void MarkCancelled() { cancelled_.store(true); }

 private:
  Status Emit(ResponseEvent event) SLUICE_EXCLUDES(mu_);

  StubRuntime& runtime_;
  const uint64_t request_id_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> started_{false};
  Mutex mu_;  // serializes the events of this request
  bool finished_ SLUICE_GUARDED_BY(mu_) = false;
};

}  // namespace sluice::stub
