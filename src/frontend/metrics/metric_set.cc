#include "frontend/metrics/metric_set.h"

#include <algorithm>

#include "frontend/metrics/prometheus_text.h"

namespace sluice::metrics {
namespace {

// Identifies a series within its family: labels in name order (a series is a label set,
// whatever order the source wrote them in).
std::string SeriesKey(const MetricLabels& labels) {
  MetricLabels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::string key;
  for (const auto& [name, value] : sorted) {
    key += name;
    key += '=';
    key += PrometheusText::EscapeLabelValue(value);
    key += '\n';  // cannot appear unescaped in either part
  }
  return key;
}

Status MergeSample(const MetricFamily& family, MetricSample& into, const MetricSample& from) {
  if (family.type != MetricType::kHistogram) {
    into.value += from.value;
    return Status::Ok();
  }
  MetricHistogram& a = into.histogram;
  const MetricHistogram& b = from.histogram;
  if (a.bounds != b.bounds)
    return InvalidArgument("metric family '" + family.name +
                           "': two sources of one series with different histogram bounds");
  for (size_t i = 0; i < a.bucket_counts.size(); ++i) a.bucket_counts[i] += b.bucket_counts[i];
  a.sum += b.sum;
  a.count += b.count;
  return Status::Ok();
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

Status MetricSet::Add(MetricFamily family) {
  Status status = ValidateMetricFamily(family);
  auto it = by_name_.find(family.name);
  if (status.ok() && it != by_name_.end() && families_[it->second].type != family.type)
    status = InvalidArgument("metric family '" + family.name + "' is a " +
                             std::string(MetricTypeName(family.type)) + " here and a " +
                             std::string(MetricTypeName(families_[it->second].type)) + " elsewhere");
  if (status.ok() && it != by_name_.end()) {
    // All or nothing: check every duplicate series first.
    const MetricFamily& existing = families_[it->second];
    for (const MetricSample& s : family.samples) {
      auto dup = series_[it->second].find(SeriesKey(s.labels));
      if (dup == series_[it->second].end() || family.type != MetricType::kHistogram) continue;
      if (existing.samples[dup->second].histogram.bounds != s.histogram.bounds) {
        status = InvalidArgument("metric family '" + family.name +
                                 "': two sources of one series with different histogram bounds");
        break;
      }
    }
  }
  if (!status.ok()) {
    problems_.push_back(OneLine(status.message()));
    return status;
  }
  if (it == by_name_.end()) {
    it = by_name_.emplace(family.name, families_.size()).first;
    MetricFamily empty;
    empty.name = family.name;
    empty.type = family.type;
    empty.help = family.help;
    families_.push_back(std::move(empty));
    series_.emplace_back();
  }
  MetricFamily& into = families_[it->second];
  auto& series = series_[it->second];
  for (MetricSample& s : family.samples) {
    auto [pos, added] = series.emplace(SeriesKey(s.labels), into.samples.size());
    if (added) {
      into.samples.push_back(std::move(s));
    } else {
      // Against earlier Adds this was checked above; two equal series within this one
      // family can still disagree: the later is left out.
      if (Status m = MergeSample(into, into.samples[pos->second], s); !m.ok())
        problems_.push_back(OneLine(m.message()));
    }
  }
  return Status::Ok();
}

std::string MetricSet::Render() const {
  PrometheusText out;
  for (const std::string& p : problems_) out.Raw("# sluice: metrics left out: " + p);
  for (const MetricFamily& f : families_) {
    out.Family(f.name, MetricTypeName(f.type), f.help);
    for (const MetricSample& s : f.samples) {
      if (f.type == MetricType::kHistogram) {
        out.HistogramSamples(f.name, s.labels, s.histogram);
      } else {
        out.Sample(f.name, s.labels, s.value);
      }
    }
  }
  return out.Take();
}

}  // namespace sluice::metrics
