#pragma once
// A writer of Prometheus text exposition format (version 0.0.4): metric families with
// their `# HELP` and `# TYPE` lines, samples with escaped label values, and histograms
// (cumulative `_bucket{le=...}`, `_sum`, `_count`). It formats; it does not aggregate.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/inference_service.h"

namespace sluice::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Writes the HELP and TYPE lines of a family; its samples follow. type: "counter",
  // "gauge" or "histogram". Name and help are trusted (constants of the caller).
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, uint64_t value);
  void Sample(std::string_view name, const Labels& labels, double value);
  // The samples of one histogram: `histogram.bucket_counts` are per bucket (last: +Inf),
  // written cumulatively. A histogram whose bucket count does not match its bounds
  // writes only the +Inf bucket, `_sum` and `_count`.
  void HistogramSamples(std::string_view name, const Labels& labels,
                        const core::Histogram& histogram);
  // Appends lines verbatim (a final newline is added when missing).
  void Raw(std::string_view text);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  // Label value escaping (\\, \", \n) and number formatting, exposed for tests.
  static std::string EscapeLabelValue(std::string_view value);
  static std::string FormatDouble(double value);

 private:
  void WriteLabels(const Labels& labels);
  std::string out_;
};

}  // namespace sluice::metrics
