#pragma once
// The /metrics page as one set of metric families (common/metric_family.h), gathered from
// the server's own statistics and from every stub: families of the same name merge into
// one, so each is rendered with exactly one HELP and TYPE line and all its samples
// together, whatever the number of models, versions and instances. That is what Go's
// Prometheus parser (Prometheus itself, promtool, the Gateway API Inference Extension's
// endpoint picker) requires: a second HELP/TYPE for a name rejects the whole page.
//
// Merging: the first family of a name sets its type and help; a later one of another type
// is refused. A sample whose labels equal an existing sample's is added into it (counters
// and gauges sum, histograms with the same bounds add up bucket by bucket; other bounds are
// refused), so the page never holds a duplicate series, which Prometheus would reject.
// Not thread-safe; build one per scrape.

#include <map>
#include <string>
#include <vector>

#include "common/metric_family.h"
#include "common/status.h"

namespace sluice::metrics {

class MetricSet {
 public:
  // Validates (ValidateMetricFamily) and merges `family`. On error nothing of it is added
  // and the error, naming the family, is also kept for Render's comments.
  Status Add(MetricFamily family);
  // Every family in the order of its first Add, samples in the order added; first a
  // `# sluice:` comment line for each refused Add.
  std::string Render() const;

  const std::vector<MetricFamily>& families() const { return families_; }

 private:
  std::vector<MetricFamily> families_;
  std::map<std::string, size_t> by_name_;
  // Per family: rendered label set -> sample index.
  std::vector<std::map<std::string, size_t>> series_;
  std::vector<std::string> problems_;
};

}  // namespace sluice::metrics
