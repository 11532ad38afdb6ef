#pragma once
// The lifecycle checker's verdicts: one step per line (PASS/FAIL/SKIP with its time in ms
// and a detail), rendered as text for people and as JSON for scripts.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/lifecycle/gpu_check.h"

namespace sluice::lifecycle {

struct StepResult {
  std::string name;
  Verdict verdict = Verdict::kSkip;
  double ms = 0;
  std::string detail;
};

struct LifecycleReport {
  std::string model;
  std::string server;
  std::vector<StepResult> steps;
  nlohmann::json gpu = nlohmann::json::object();  // snapshots, when a GPU was seen

  // True when no step failed (skips are not failures).
  bool ok() const;
  void Add(std::string name, Verdict verdict, double ms, std::string detail);
};

nlohmann::json ReportJson(const LifecycleReport& report);
std::string FormatReport(const LifecycleReport& report);

}  // namespace sluice::lifecycle
