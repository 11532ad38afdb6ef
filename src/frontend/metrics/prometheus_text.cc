#include "frontend/metrics/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace sluice::metrics {

std::string PrometheusText::EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PrometheusText::FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integral values as integers (counters, byte counts: 80000000000, not 8e+10).
  if (std::trunc(value) == value && std::fabs(value) < 9.0e15)
    return std::to_string(static_cast<int64_t>(value));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes only backslash and newline
    if (c == '\\')
      out_ += "\\\\";
    else if (c == '\n')
      out_ += "\\n";
    else
      out_ += c;
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::WriteLabels(const Labels& labels) {
  if (labels.empty()) return;
  out_ += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out_ += ',';
    out_ += labels[i].first;
    out_ += "=\"";
    out_ += EscapeLabelValue(labels[i].second);
    out_ += '"';
  }
  out_ += '}';
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, uint64_t value) {
  out_ += name;
  WriteLabels(labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  WriteLabels(labels);
  out_ += ' ';
  out_ += FormatDouble(value);
  out_ += '\n';
}

void PrometheusText::HistogramSamples(std::string_view name, const Labels& labels,
                                      const core::Histogram& h) {
  const std::string base(name);
  uint64_t count = h.count;
  if (h.bucket_counts.size() == h.bounds.size() + 1) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bucket_counts.size(); ++i) {
      cumulative += h.bucket_counts[i];
      Labels with_le = labels;
      with_le.emplace_back("le", i < h.bounds.size() ? FormatDouble(h.bounds[i]) : "+Inf");
      Sample(base + "_bucket", with_le, cumulative);
    }
    count = cumulative;  // the +Inf bucket and _count must agree
  } else {
    // Inconsistent bounds: the one bucket that is still true.
    Labels with_le = labels;
    with_le.emplace_back("le", "+Inf");
    Sample(base + "_bucket", with_le, count);
  }
  Sample(base + "_sum", labels, h.sum);
  Sample(base + "_count", labels, count);
}

void PrometheusText::Raw(std::string_view text) {
  if (text.empty()) return;
  out_ += text;
  if (text.back() != '\n') out_ += '\n';
}

}  // namespace sluice::metrics
