#pragma once
// The wire form of metric families (common/metric_family.h), carried by a stub's heartbeat
// acknowledgement: u32 family count, then per family its name, type (u8), help and samples;
// per sample its labels (u32 count + name/value strings), then a f64 value or, for a
// histogram, u32 bound count, the bounds (f64), the per-bucket counts (u64, one more than
// the bounds), the sum (f64) and the count (u64).
//
// Bounded as every IPC decoder: each count and string is capped (below) and checked against
// the bytes left (a malformed stream is an error); each decoded family is then checked with
// ValidateMetricFamily and one that fails is left out (its error kept in `dropped`), so the
// server renders nothing a stub could use to break the page, and a backend's bad metric
// does not take its instance down.

#include <string>
#include <vector>

#include "common/metric_family.h"
#include "common/status.h"
#include "ipc/wire_buffer.h"

namespace sluice::ipc {

inline constexpr uint32_t kMaxMetricFamilies = 1024;
inline constexpr uint32_t kMaxMetricSamples = 65536;  // per family
inline constexpr uint32_t kMaxMetricLabels = 32;       // per sample
inline constexpr uint32_t kMaxMetricNameBytes = 1024;  // family and label names
inline constexpr uint32_t kMaxMetricHelpBytes = 4096;
inline constexpr uint32_t kMaxMetricLabelValueBytes = 4096;
inline constexpr uint32_t kMaxHistogramBounds = 1024;
// The encoder leaves out the families that would take the metrics past this many bytes.
inline constexpr size_t kMaxMetricsBytes = 4u << 20;

// Writes as many whole families as fit in kMaxMetricsBytes (in order); returns how many
// were left out.
size_t EncodeMetricFamilies(WireWriter& w, const std::vector<MetricFamily>& families);
// `dropped` (optional) receives the first invalid family's error, empty when none.
Result<std::vector<MetricFamily>> DecodeMetricFamilies(WireReader& r, std::string* dropped = nullptr);

}  // namespace sluice::ipc
