#include "tools/bench/stats.h"

#include <algorithm>
#include <cmath>

namespace sluice::bench {

namespace {

double SortedPercentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

}  // namespace

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return SortedPercentile(values, p);
}

Distribution Describe(const std::vector<double>& values) {
  Distribution d;
  if (values.empty()) return d;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  d.count = sorted.size();
  double sum = 0;
  for (double v : sorted) sum += v;
  d.mean = sum / static_cast<double>(d.count);
  double sq = 0;
  for (double v : sorted) sq += (v - d.mean) * (v - d.mean);
  d.stddev = std::sqrt(sq / static_cast<double>(d.count));
  d.median = SortedPercentile(sorted, 50);
  d.p90 = SortedPercentile(sorted, 90);
  d.p99 = SortedPercentile(sorted, 99);
  d.min = sorted.front();
  d.max = sorted.back();
  return d;
}

}  // namespace sluice::bench
