// One scrape of a Prometheus text-format endpoint (octet-server's /metrics), and sums over its
// series. octet-bench scrapes before and after a measured window and reads the server's side of
// the window (requests, inferences, queue and compute time, CPU seconds) from the differences.
#ifndef OCTET_DEPLOY_BENCH_METRICS_SNAPSHOT_H_
#define OCTET_DEPLOY_BENCH_METRICS_SNAPSHOT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet::bench {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;  // e.g. octet_queue_latency_seconds_sum
  Labels labels;
  double value = 0;
};

class MetricsSnapshot {
 public:
  // Parses the Prometheus text exposition format (version 0.0.4): comments and blank lines are
  // skipped, label values may hold \\ \" \n escapes, an optional timestamp is ignored.
  // INVALID_ARGUMENT with the line number on anything else.
  static absl::StatusOr<MetricsSnapshot> Parse(absl::string_view text);

  // Sum of the samples called `name` whose labels include every pair of `match`.
  double Sum(absl::string_view name, const Labels& match = {}) const;
  // Whether any sample is called `name` and matches.
  bool Has(absl::string_view name, const Labels& match = {}) const;
  // Sum of `name` in `after` minus in `before`.
  static double Delta(const MetricsSnapshot& before, const MetricsSnapshot& after,
                      absl::string_view name, const Labels& match = {});
  // Each distinct value of `label` among the samples called `name` that match, with the
  // difference of their sums (e.g. requests by code).
  static std::map<std::string, double> DeltaBy(const MetricsSnapshot& before,
                                               const MetricsSnapshot& after, absl::string_view name,
                                               const std::string& label, const Labels& match = {});

  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
};

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_METRICS_SNAPSHOT_H_
