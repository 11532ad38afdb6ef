#pragma once
// The GPU half of the lifecycle check, as pure functions over NVML snapshots: which
// processes held memory while the model was READY, and whether that memory came back after
// unload (DESIGN.md §2 item 3: "UNAVAILABLE means gone").

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/nvml.h"
#include "common/status.h"

namespace sluice::lifecycle {

struct GpuSnapshot {
  bool available = false;  // false: no GPU (or no NVML) on this machine
  uint64_t used_bytes = 0;  // device memory in use, summed over GPUs
  std::map<pid_t, uint64_t> process_bytes;  // compute processes, summed over GPUs
};

// nullptr `nvml` gives an unavailable snapshot.
Result<GpuSnapshot> TakeGpuSnapshot(const nvml::Nvml* nvml);

enum class Verdict { kPass, kFail, kSkip };
std::string_view VerdictName(Verdict v);

struct GpuRelease {
  Verdict verdict = Verdict::kSkip;
  int64_t held_while_ready_bytes = 0;  // ready.used - before.used
  int64_t leftover_bytes = 0;          // after.used - before.used
  std::vector<pid_t> model_pids;       // held memory while READY and not before (the stubs)
  std::vector<pid_t> lingering_pids;   // of those, still holding memory after unload
  std::string detail;
};

// PASS when memory is back within `tolerance_bytes` of the baseline and no process that
// appeared while READY still holds memory; SKIP without a GPU.
GpuRelease EvaluateGpuRelease(const GpuSnapshot& before, const GpuSnapshot& ready,
                              const GpuSnapshot& after, uint64_t tolerance_bytes);

nlohmann::json SnapshotJson(const GpuSnapshot& s);

}  // namespace sluice::lifecycle
