#pragma once
// Latency statistics as `vllm bench serve` reports them: mean, median, standard deviation
// and percentiles with numpy's default (linear interpolation between closest ranks).

#include <cstddef>
#include <vector>

namespace sluice::bench {

// The p-th percentile (0 <= p <= 100) of `values`, numpy.percentile's "linear" method:
// rank = p/100 * (n-1), interpolated between the neighbouring sorted values. 0 when empty.
double Percentile(std::vector<double> values, double p);

struct Distribution {
  size_t count = 0;
  double mean = 0, median = 0, stddev = 0, p90 = 0, p99 = 0, min = 0, max = 0;
};

// All zero for an empty input. stddev is the population standard deviation (numpy.std).
Distribution Describe(const std::vector<double>& values);

}  // namespace sluice::bench
