#include "backends/llm/device/cuda/step_profiler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <string_view>

namespace sluice::llm::cuda {

namespace {
// A step that starts later than this after the previous one followed idle time, not the
// previous step: its interval says nothing about the gap between steps.
constexpr double kMaxIntervalMs = 1000.0;
constexpr int64_t kReportEvery = 1000;
}  // namespace

StepProfiler::~StepProfiler() {
  if (steps_ > 0) Report();
}

cudaEvent_t StepProfiler::Event(size_t i) {
  while (events_.size() <= i) {
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess) return nullptr;
    events_.emplace_back(e);
  }
  return events_[i].get();
}

void StepProfiler::BeginStep(int32_t rows, bool decode) {
  const auto now = std::chrono::steady_clock::now();
  if (open_) EndStep();  // a step without a final sync (only its interval is lost)
  names_.clear();
  graph_ = false;
  if (decode) {
    kind_ = "decode " + std::to_string(rows) + (rows == 1 ? " row" : " rows");
  } else {  // by the rows' power of two: a prompt's steps apart from the load's sizing steps
    const uint32_t top = std::bit_ceil(static_cast<uint32_t>(std::max(rows, 1)));
    kind_ = "prefill/mixed <= " + std::to_string(top) + " rows";
  }
  // The interval from the previous step's start, charged to that step's kind.
  if (last_gpu_ms_ >= 0) {
    const double interval = std::chrono::duration<double, std::milli>(now - last_start_).count();
    if (interval < kMaxIntervalMs) {
      Kind& k = kinds_[last_kind_];
      ++k.timed_gaps;
      k.interval_ms += interval;
      k.interval_gpu_ms += last_gpu_ms_;
    }
  }
  last_gpu_ms_ = -1;
  last_start_ = now;
  cudaEvent_t e = Event(0);
  if (e == nullptr) return;
  cudaEventRecord(e, stream_);
  open_ = true;
}

void StepProfiler::Op(std::string name) {
  if (!open_) return;
  cudaEvent_t e = Event(names_.size() + 1);
  if (e == nullptr) return;
  cudaEventRecord(e, stream_);
  names_.push_back(std::move(name));
}

void StepProfiler::EndStep() {
  if (!open_) return;
  open_ = false;
  // The step's end: one more event, recorded after everything issued so far (the caller
  // synchronised already, so it completes at once).
  const size_t last = names_.size() + 1;
  cudaEvent_t end = Event(last);
  if (end == nullptr) return;
  cudaEventRecord(end, stream_);
  if (cudaEventSynchronize(end) != cudaSuccess) return;
  float total = 0;
  if (cudaEventElapsedTime(&total, events_[0].get(), end) != cudaSuccess) return;
  Kind& k = kinds_[graph_ ? kind_ + ", graph" : kind_ + ", eager"];
  ++k.steps;
  k.gpu_ms += total;
  if (!graph_ && !names_.empty()) {
    ++k.eager_steps;
    for (size_t i = 0; i < names_.size(); ++i) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, events_[i].get(), events_[i + 1].get()) != cudaSuccess)
        continue;
      Sum& s = k.ops[names_[i]];
      ++s.count;
      s.ms += ms;
    }
  }
  last_gpu_ms_ = total;
  last_kind_ = graph_ ? kind_ + ", graph" : kind_ + ", eager";
  if (++steps_ % kReportEvery == 0) Report();
}

void StepProfiler::Report() const {
  for (const auto& [name, k] : kinds_) {
    if (k.steps == 0) continue;
    std::string line = fmt::format("cuda profile [{}]: {} steps, GPU {:.3f} ms/step", name, k.steps,
                                   k.gpu_ms / k.steps);
    if (k.timed_gaps > 0) {
      line += fmt::format("; start to next start {:.3f} ms, of which GPU idle {:.3f} ms",
                          k.interval_ms / k.timed_gaps,
                          (k.interval_ms - k.interval_gpu_ms) / k.timed_gaps);
    }
    spdlog::info("{}", line);
    for (const auto& [op, s] : k.ops) {
      spdlog::info("cuda profile [{}]   {:<40} {:>6.1f} per step {:>9.1f} us/step {:>8.2f} us each",
                   name, op, static_cast<double>(s.count) / k.eager_steps,
                   1000.0 * s.ms / k.eager_steps, 1000.0 * s.ms / s.count);
    }
  }
}

}  // namespace sluice::llm::cuda
