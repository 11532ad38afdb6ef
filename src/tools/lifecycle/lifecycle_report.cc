#include "tools/lifecycle/lifecycle_report.h"

#include <cstdio>

namespace sluice::lifecycle {

bool LifecycleReport::ok() const {
  for (const auto& s : steps) {
    if (s.verdict == Verdict::kFail) return false;
  }
  return true;
}

void LifecycleReport::Add(std::string name, Verdict verdict, double ms, std::string detail) {
  steps.push_back({std::move(name), verdict, ms, std::move(detail)});
}

nlohmann::json ReportJson(const LifecycleReport& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : report.steps) {
    steps.push_back({{"name", s.name},
                     {"verdict", std::string(VerdictName(s.verdict))},
                     {"ms", s.ms},
                     {"detail", s.detail}});
  }
  return {{"model", report.model},
          {"server", report.server},
          {"ok", report.ok()},
          {"steps", steps},
          {"gpu", report.gpu}};
}

std::string FormatReport(const LifecycleReport& report) {
  std::string out = "sluice-lifecycle: model '" + report.model + "' on " + report.server + "\n";
  char buf[512];
  for (const auto& s : report.steps) {
    snprintf(buf, sizeof buf, "  %-4s %-34s %9.1f ms  %s\n",
             std::string(VerdictName(s.verdict)).c_str(), s.name.c_str(), s.ms,
             s.detail.substr(0, 300).c_str());
    out += buf;
  }
  size_t failed = 0;
  for (const auto& s : report.steps) failed += s.verdict == Verdict::kFail ? 1 : 0;
  out += report.ok() ? "RESULT: PASS\n"
                     : "RESULT: FAIL (" + std::to_string(failed) + " step(s) failed)\n";
  return out;
}

}  // namespace sluice::lifecycle
