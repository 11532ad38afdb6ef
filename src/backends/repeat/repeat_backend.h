#pragma once
// The `repeat` backend (decoupled), after Triton's repeat example. Inputs: IN (INT32 [-1]),
// DELAY (UINT32 [-1], optional: ms to wait before each response, one per IN element),
// WAIT (UINT32 [1], optional: ms after arrival before the request is released). For each
// element i of IN it sends one response with OUT (INT32 [1]) = IN[i] and IDX (UINT32 [1])
// = i, then the final flag with no response, no earlier than WAIT ms after arrival.
//
// Responses are produced on the backend's own thread, which serves any number of
// requests concurrently (a timer queue, not a thread per request). Cancel ends a request
// at once with Cancelled("request was cancelled"). Finalize joins the thread and ends any
// request still open with Unavailable.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "common/thread_annotations.h"

namespace sluice::backends {

class RepeatBackend : public Backend {
 public:
  ~RepeatBackend() override;
  Status Initialize(const InstanceSpec& context) override;
  void Execute(BackendRequest request) override;
  void Cancel(uint64_t id) override;
  void Finalize() override;
  std::vector<MetricFamily> Metrics() const override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Stream {
    std::shared_ptr<ResponseSender> sender;
    std::string client_id;
    std::vector<int32_t> values;
    std::vector<uint32_t> delays_ms;
    Clock::time_point release_at;
    Clock::time_point due;
    size_t next = 0;
  };
  void Run() SLUICE_EXCLUDES(mu_);

  InstanceSpec context_;  // constant after Initialize

  mutable Mutex mu_;
  CondVar cv_;
  std::map<uint64_t, Stream> streams_ SLUICE_GUARDED_BY(mu_);
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  uint64_t responses_sent_ SLUICE_GUARDED_BY(mu_) = 0;
  std::thread worker_;                  // started by Initialize, joined by Finalize
};

}  // namespace sluice::backends
