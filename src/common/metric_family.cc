#include "common/metric_family.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace sluice {
namespace {

bool IsNameStart(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool IsNameChar(char c, bool colon) { return IsNameStart(c, colon) || (c >= '0' && c <= '9'); }

bool ValidName(std::string_view name, bool colon) {
  if (name.empty() || !IsNameStart(name[0], colon)) return false;
  for (char c : name)
    if (!IsNameChar(c, colon)) return false;
  return true;
}

Status ValidateHistogram(const MetricHistogram& h) {
  if (h.bucket_counts.size() != h.bounds.size() + 1)
    return InvalidArgument("has " + std::to_string(h.bucket_counts.size()) + " bucket counts for " +
                           std::to_string(h.bounds.size()) + " bounds (want one more, for +Inf)");
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (!std::isfinite(h.bounds[i])) return InvalidArgument("has a bound that is not finite");
    if (i > 0 && !(h.bounds[i] > h.bounds[i - 1]))
      return InvalidArgument("has bounds that are not strictly ascending");
  }
  uint64_t total = 0;
  for (uint64_t c : h.bucket_counts) {
    if (c > UINT64_MAX - total) return InvalidArgument("has bucket counts that overflow");
    total += c;
  }
  if (total != h.count)
    return InvalidArgument("has buckets adding up to " + std::to_string(total) + ", count " +
                           std::to_string(h.count));
  if (std::isnan(h.sum)) return InvalidArgument("has a sum that is NaN");
  return Status::Ok();
}

}  // namespace

MetricHistogram NewMetricHistogram(std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  MetricHistogram h;
  h.bucket_counts.assign(bounds.size() + 1, 0);
  h.bounds = std::move(bounds);
  return h;
}

void ObserveMetric(MetricHistogram& h, double value) {
  const size_t i = std::lower_bound(h.bounds.begin(), h.bounds.end(), value) - h.bounds.begin();
  ++h.bucket_counts[i];
  h.sum += value;
  ++h.count;
}

std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Status ValidateMetricFamily(const MetricFamily& f) {
  const std::string what = "metric family '" + f.name + "'";
  if (!ValidName(f.name, /*colon=*/true)) return InvalidArgument(what + ": not a valid metric name");
  if (f.help.find('\n') != std::string::npos) return InvalidArgument(what + ": help spans lines");
  for (const MetricSample& s : f.samples) {
    std::set<std::string_view> names;
    for (const auto& [name, value] : s.labels) {
      if (!ValidName(name, /*colon=*/false) || name.rfind("__", 0) == 0)
        return InvalidArgument(what + ": invalid label name '" + name + "'");
      if (f.type == MetricType::kHistogram && name == "le")
        return InvalidArgument(what + ": label 'le' is reserved for histogram buckets");
      if (!names.insert(name).second) return InvalidArgument(what + ": label '" + name + "' twice");
    }
    switch (f.type) {
      case MetricType::kCounter:
        if (!std::isfinite(s.value) || s.value < 0)
          return InvalidArgument(what + ": a counter must be finite and not negative");
        break;
      case MetricType::kGauge:
        break;
      case MetricType::kHistogram:
        if (Status st = ValidateHistogram(s.histogram); !st.ok()) return st.WithPrefix(what);
        break;
    }
  }
  return Status::Ok();
}

}  // namespace sluice
