#include "tools/lifecycle/gpu_check.h"

#include <cstdio>

namespace sluice::lifecycle {

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "PASS";
    case Verdict::kFail: return "FAIL";
    case Verdict::kSkip: return "SKIP";
  }
  return "?";
}

Result<GpuSnapshot> TakeGpuSnapshot(const nvml::Nvml* nvml) {
  GpuSnapshot s;
  if (!nvml) return s;
  ASSIGN_OR_RETURN(std::vector<nvml::GpuInfo> gpus, nvml->Gpus());
  if (gpus.empty()) return s;
  s.available = true;
  for (const auto& g : gpus) {
    s.used_bytes += g.memory_used_bytes;
    ASSIGN_OR_RETURN(std::vector<nvml::ProcessMemory> procs, nvml->ComputeProcesses(g.index));
    for (const auto& p : procs) s.process_bytes[p.pid] += p.used_bytes;
  }
  return s;
}

namespace {

std::string Mib(int64_t bytes) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string Pids(const std::vector<pid_t>& pids) {
  std::string s = "[";
  for (size_t i = 0; i < pids.size(); ++i) s += (i ? ", " : "") + std::to_string(pids[i]);
  return s + "]";
}

}  // namespace

GpuRelease EvaluateGpuRelease(const GpuSnapshot& before, const GpuSnapshot& ready,
                              const GpuSnapshot& after, uint64_t tolerance_bytes) {
  GpuRelease r;
  if (!before.available || !ready.available || !after.available) {
    r.verdict = Verdict::kSkip;
    r.detail = "skipped: no GPU";
    return r;
  }
  r.held_while_ready_bytes =
      static_cast<int64_t>(ready.used_bytes) - static_cast<int64_t>(before.used_bytes);
  r.leftover_bytes =
      static_cast<int64_t>(after.used_bytes) - static_cast<int64_t>(before.used_bytes);
  for (const auto& [pid, bytes] : ready.process_bytes) {
    auto was = before.process_bytes.find(pid);
    if (bytes > 0 && (was == before.process_bytes.end() || was->second < bytes)) {
      r.model_pids.push_back(pid);
    }
  }
  for (pid_t pid : r.model_pids) {
    auto now = after.process_bytes.find(pid);
    auto was = before.process_bytes.find(pid);
    uint64_t baseline = was == before.process_bytes.end() ? 0 : was->second;
    if (now != after.process_bytes.end() && now->second > baseline) r.lingering_pids.push_back(pid);
  }
  bool memory_back = r.leftover_bytes <= static_cast<int64_t>(tolerance_bytes);
  r.verdict = memory_back && r.lingering_pids.empty() ? Verdict::kPass : Verdict::kFail;
  r.detail = "held " + Mib(r.held_while_ready_bytes) + " while READY by pids " +
             Pids(r.model_pids) + "; after unload " + Mib(r.leftover_bytes) +
             " over the baseline (tolerance " + Mib(static_cast<int64_t>(tolerance_bytes)) + ")";
  if (!r.lingering_pids.empty()) r.detail += "; still holding memory: pids " + Pids(r.lingering_pids);
  if (r.model_pids.empty() && r.held_while_ready_bytes <= static_cast<int64_t>(tolerance_bytes)) {
    r.detail += "; note: the model held no GPU memory while READY";
  }
  return r;
}

nlohmann::json SnapshotJson(const GpuSnapshot& s) {
  nlohmann::json j = {{"available", s.available}, {"used_bytes", s.used_bytes}};
  nlohmann::json procs = nlohmann::json::array();
  for (const auto& [pid, bytes] : s.process_bytes) procs.push_back({{"pid", pid}, {"used_bytes", bytes}});
  j["processes"] = procs;
  return j;
}

}  // namespace sluice::lifecycle
