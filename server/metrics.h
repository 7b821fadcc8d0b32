// Prometheus metrics of the server, with the names of SERVER_CONTRACT.md. Everything per model
// version is labelled {model, version}. Process metrics (resident memory, CPU seconds, start
// time) and the cost gauge are computed at scrape time by a collector.
//
// Cost per million inferences of a model version =
//   1e6 / inferences x ( compute_cpu_seconds / 3600 x cost_per_core_hour
//                      + memory_gib x hours_loaded x cost_per_gib_hour )
// where memory_gib is the process's resident memory apportioned to loaded versions by their
// weight bytes (the whole process is what the operator pays for).
#ifndef OCTET_SERVER_METRICS_H_
#define OCTET_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace octet::server {

class Metrics;

// Handles for one model version. Series stay registered after unload (octet_model_loaded = 0)
// so counters never go backwards while the process lives.
class VersionMetrics {
 public:
  VersionMetrics(Metrics* metrics, const std::string& model, int64_t version);

  void RecordRequest(absl::StatusCode code);
  // Called when the version starts / stops serving.
  void SetLoaded(bool loaded, int64_t weight_bytes, int64_t fp32_weight_bytes);

  prometheus::Counter& inferences;
  prometheus::Histogram& request_latency;
  prometheus::Histogram& queue_latency;
  prometheus::Histogram& compute_latency;
  prometheus::Histogram& batch_size;
  prometheus::Gauge& queue_depth;
  prometheus::Gauge& inflight;
  prometheus::Gauge& weight_bytes;
  prometheus::Gauge& fp32_weight_bytes;
  prometheus::Gauge& loaded;
  prometheus::Counter& compute_cpu_seconds;

  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }

 private:
  friend class Metrics;
  Metrics* const metrics_;
  const std::string model_;
  const std::string version_;
  // octet_requests_total{model, version, code} by code, looked up once: a label lookup (label
  // map, hash, family lock) per request is measurable on small models.
  std::array<std::atomic<prometheus::Counter*>, 17> requests_by_code_{};
  absl::Mutex mu_;
  absl::Time loaded_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  double loaded_hours_before_ ABSL_GUARDED_BY(mu_) = 0;  // from earlier load periods
};

struct CostRates {
  // Price of one CPU core for one hour. >= 0.
  double per_core_hour = 0;
  // Price of one GiB of memory for one hour. >= 0.
  double per_gib_hour = 0;
};

// The formula above; 0 when there were no inferences.
double CostPerMillionInferences(double cpu_seconds, double memory_gib, double hours_loaded,
                                double inferences, const CostRates& rates);

class Metrics {
 public:
  struct Options {
    CostRates cost;
    // Where /proc is (tests may point it elsewhere).
    std::string proc_dir = "/proc";
  };
  explicit Metrics(const Options& options);
  ~Metrics();

  // The handles of (model, version); the same object for the same pair.
  std::shared_ptr<VersionMetrics> ForVersion(const std::string& model, int64_t version);
  // A request answered without reaching a version (unknown model, draining...). The model label
  // is "" for unknown models so that clients cannot create series at will.
  void RecordUnroutedRequest(absl::StatusCode code);
  void RecordLoadFailure(const std::string& model);

  // For the Exposer: the registry and the scrape-time collector.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  std::shared_ptr<prometheus::Collectable> collector() const { return collector_; }
  // Everything in Prometheus text format (what GET /metrics returns).
  std::string Scrape() const;

 private:
  friend class VersionMetrics;
  class Collector;

  const Options options_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& inferences_;
  prometheus::Family<prometheus::Histogram>& request_latency_;
  prometheus::Family<prometheus::Histogram>& queue_latency_;
  prometheus::Family<prometheus::Histogram>& compute_latency_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& inflight_;
  prometheus::Family<prometheus::Gauge>& weight_bytes_;
  prometheus::Family<prometheus::Gauge>& fp32_weight_bytes_;
  prometheus::Family<prometheus::Gauge>& loaded_;
  prometheus::Family<prometheus::Counter>& load_failures_;
  prometheus::Family<prometheus::Counter>& compute_cpu_seconds_;
  std::shared_ptr<prometheus::Collectable> collector_;

  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<VersionMetrics>> versions_
      ABSL_GUARDED_BY(mu_);
};

// gRPC-style name of a status code ("OK", "INVALID_ARGUMENT", ...), the `code` label.
std::string StatusCodeName(absl::StatusCode code);

}  // namespace octet::server

#endif  // OCTET_SERVER_METRICS_H_
