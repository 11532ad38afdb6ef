#pragma once
// Metrics as data: a Prometheus metric family (name, type, help, samples with labels and a
// value or histogram buckets). Backends fill these in their stubs, the IPC carries them
// (ipc/message.h), and the server merges every source's families and renders each family
// once (frontend/metrics/metric_set.h), whatever the number of models and instances.
//
// Names are the exposition names: the TYPE line and the samples carry the same name (a
// histogram's samples add _bucket, _sum, _count), so Go's and Python's parsers type every
// family. vLLM's counters are named as prometheus_client writes them, with the `_total`
// suffix in the family name (`# TYPE vllm:prompt_tokens_total counter`); Triton's have none.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice {

enum class MetricType : uint8_t { kCounter = 0, kGauge = 1, kHistogram = 2 };
std::string_view MetricTypeName(MetricType type);  // "counter", "gauge", "histogram"

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A fixed-bucket histogram (Prometheus semantics: bucket i counts observations
// <= bounds[i] and > bounds[i-1]; counts are per bucket, not cumulative; the last bucket,
// bucket_counts[bounds.size()], counts those above every bound, +Inf).
struct MetricHistogram {
  std::vector<double> bounds;           // ascending, finite
  std::vector<uint64_t> bucket_counts;  // bounds.size() + 1
  double sum = 0;
  uint64_t count = 0;
};

// An empty histogram over `bounds` (sorted here).
MetricHistogram NewMetricHistogram(std::vector<double> bounds);
// Counts `value` in the first bucket whose bound is >= value (+Inf past the last).
// `h` must have bounds.size() + 1 bucket counts (NewMetricHistogram's).
void ObserveMetric(MetricHistogram& h, double value);

struct MetricSample {
  MetricLabels labels;
  double value = 0;           // counter, gauge
  MetricHistogram histogram;  // histogram
};

struct MetricFamily {
  std::string name;
  MetricType type = MetricType::kGauge;
  std::string help;
  std::vector<MetricSample> samples;
};

// Checks what a renderer relies on, for families from another process: the name is a
// Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); label names are [a-zA-Z_][a-zA-Z0-9_]*, not reserved (`__` prefix, `le` on a histogram)
// and unique within a sample; help is one line; counters are finite and >= 0; a histogram's
// bounds are finite and strictly ascending, with one count more than bounds, counts adding
// up to `count`. The error names the family and the offending part.
Status ValidateMetricFamily(const MetricFamily& family);

}  // namespace sluice
