#include "ipc/metric_codec.h"

#include <algorithm>

namespace sluice::ipc {
namespace {

void EncodeFamily(WireWriter& w, const MetricFamily& f) {
  w.Str(std::string_view(f.name).substr(0, kMaxMetricNameBytes));
  w.U8(static_cast<uint8_t>(f.type));
  w.Str(std::string_view(f.help).substr(0, kMaxMetricHelpBytes));
  const size_t n = std::min<size_t>(f.samples.size(), kMaxMetricSamples);
  w.U32(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    const MetricSample& s = f.samples[i];
    const size_t nl = std::min<size_t>(s.labels.size(), kMaxMetricLabels);
    w.U32(static_cast<uint32_t>(nl));
    for (size_t j = 0; j < nl; ++j) {
      w.Str(std::string_view(s.labels[j].first).substr(0, kMaxMetricNameBytes));
      w.Str(std::string_view(s.labels[j].second).substr(0, kMaxMetricLabelValueBytes));
    }
    if (f.type != MetricType::kHistogram) {
      w.F64(s.value);
      continue;
    }
    const MetricHistogram& h = s.histogram;
    const size_t nb = std::min<size_t>(h.bounds.size(), kMaxHistogramBounds);
    w.U32(static_cast<uint32_t>(nb));
    for (size_t j = 0; j < nb; ++j) w.F64(h.bounds[j]);
    // Always bounds + 1 counts on the wire; a short source is padded with zeros (the
    // decoder's validation then refuses the family rather than misreading the stream).
    for (size_t j = 0; j <= nb; ++j) w.U64(j < h.bucket_counts.size() ? h.bucket_counts[j] : 0);
    w.F64(h.sum);
    w.U64(h.count);
  }
}

Result<MetricFamily> DecodeFamily(WireReader& r) {
  MetricFamily f;
  ASSIGN_OR_RETURN(f.name, r.Str("metric name", kMaxMetricNameBytes));
  ASSIGN_OR_RETURN(uint8_t type, r.U8("metric type"));
  if (type > static_cast<uint8_t>(MetricType::kHistogram))
    return InvalidArgument("metric family '" + f.name + "' has unknown type " + std::to_string(type));
  f.type = static_cast<MetricType>(type);
  ASSIGN_OR_RETURN(f.help, r.Str("metric help", kMaxMetricHelpBytes));
  ASSIGN_OR_RETURN(uint32_t n, r.Count("metric sample count", kMaxMetricSamples));
  // Each sample takes at least 12 bytes (label count + value): a lying count fails here,
  // before anything is reserved.
  if (uint64_t{n} * 12 > r.remaining())
    return InvalidArgument("metric sample count " + std::to_string(n) + " runs past the end of the message");
  f.samples.resize(n);
  for (MetricSample& s : f.samples) {
    ASSIGN_OR_RETURN(uint32_t nl, r.Count("metric label count", kMaxMetricLabels));
    s.labels.resize(nl);
    for (auto& [name, value] : s.labels) {
      ASSIGN_OR_RETURN(name, r.Str("metric label name", kMaxMetricNameBytes));
      ASSIGN_OR_RETURN(value, r.Str("metric label value", kMaxMetricLabelValueBytes));
    }
    if (f.type != MetricType::kHistogram) {
      ASSIGN_OR_RETURN(s.value, r.F64("metric value"));
      continue;
    }
    MetricHistogram& h = s.histogram;
    ASSIGN_OR_RETURN(uint32_t nb, r.Count("histogram bound count", kMaxHistogramBounds));
    if ((uint64_t{nb} * 2 + 3) * 8 > r.remaining())
      return InvalidArgument("histogram bound count " + std::to_string(nb) + " runs past the end of the message");
    h.bounds.resize(nb);
    for (double& b : h.bounds) {
      ASSIGN_OR_RETURN(b, r.F64("histogram bound"));
    }
    h.bucket_counts.resize(size_t{nb} + 1);
    for (uint64_t& c : h.bucket_counts) {
      ASSIGN_OR_RETURN(c, r.U64("histogram bucket count"));
    }
    ASSIGN_OR_RETURN(h.sum, r.F64("histogram sum"));
    ASSIGN_OR_RETURN(h.count, r.U64("histogram count"));
  }
  return f;
}

}  // namespace

size_t EncodeMetricFamilies(WireWriter& w, const std::vector<MetricFamily>& families) {
  std::vector<std::string> encoded;
  size_t bytes = 0;
  for (const MetricFamily& f : families) {
    if (encoded.size() == kMaxMetricFamilies) break;
    WireWriter one;
    EncodeFamily(one, f);
    if (bytes + one.buffer().size() > kMaxMetricsBytes) break;
    bytes += one.buffer().size();
    encoded.push_back(one.Take());
  }
  w.U32(static_cast<uint32_t>(encoded.size()));
  for (const std::string& e : encoded) w.buffer() += e;
  return families.size() - encoded.size();
}

Result<std::vector<MetricFamily>> DecodeMetricFamilies(WireReader& r, std::string* dropped) {
  if (dropped) dropped->clear();
  ASSIGN_OR_RETURN(uint32_t n, r.Count("metric family count", kMaxMetricFamilies));
  std::vector<MetricFamily> out;
  out.reserve(std::min<uint32_t>(n, 64));
  for (uint32_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(MetricFamily f, DecodeFamily(r));
    if (Status valid = ValidateMetricFamily(f); !valid.ok()) {
      if (dropped && dropped->empty()) *dropped = valid.message();
      continue;
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sluice::ipc
