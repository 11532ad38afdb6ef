// Where a CUDA engine step's time goes, when SLUICE_CUDA_PROFILE=1 (otherwise the device
// keeps none: no events, no cost).
//
// Every step: GPU time from an event at BeginStep to one after the step's last op, and the
// host time from one step's start to the next's; the difference is time the GPU sat idle
// (launch gaps, host work between steps). Eager steps (enforce_eager, or a bucket's first
// step) also time each op with an event after it. Steps are grouped by kind (decode of n
// rows, prefill or mixed by the power of two that holds their rows); a summary goes to the
// log every 1000 steps and when the device closes. This is the profile behind bench/RESULTS.md's
// decode breakdown; ncu serialises a 7B step's ~300 kernels too slowly to be used on the server.

#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/cuda_handles.h"

namespace sluice::llm::cuda {

class StepProfiler {
 public:
  explicit StepProfiler(cudaStream_t stream) : stream_(stream) {}
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // A step of `rows` token rows (`decode`: every row a sequence's one new token) starts.
  void BeginStep(int32_t rows, bool decode);
  // After an op's kernels were issued eagerly (never during a graph capture).
  void Op(std::string name);
  // The step was issued as a graph replay (its ops are not timed one by one).
  void MarkGraph() { graph_ = true; }
  // After the stream was synchronised at the step's end: reads the step's events.
  void EndStep();
  // Logs the summary so far.
  void Report() const;

  struct Sum {
    int64_t count = 0;
    double ms = 0;
  };
  struct Kind {
    int64_t steps = 0;
    double gpu_ms = 0;
    // Steps followed by another within a second: their start-to-next-start time and GPU time.
    int64_t timed_gaps = 0;
    double interval_ms = 0, interval_gpu_ms = 0;
    int64_t eager_steps = 0;
    std::map<std::string, Sum> ops;  // eager steps only
  };
  // By kind: "decode 1 row, eager", "decode 8 rows, graph", "prefill/mixed <= 8192 rows,
  // eager", ...
  const std::map<std::string, Kind>& kinds() const { return kinds_; }

 private:
  cudaEvent_t Event(size_t i);

  cudaStream_t stream_;
  std::vector<UniqueEvent> events_;
  std::vector<std::string> names_;  // names_[i] ends at events_[i + 1]
  bool open_ = false, graph_ = false;
  std::string kind_;
  std::chrono::steady_clock::time_point last_start_{};
  double last_gpu_ms_ = -1;
  std::string last_kind_;
  std::map<std::string, Kind> kinds_;
  int64_t steps_ = 0;
};

}  // namespace sluice::llm::cuda
