#include "server/metrics.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace octet::server {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  // 50 us .. 10 s: the per-request overhead target is tens of microseconds.
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& BatchSizeBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024};
  return *buckets;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcessStats {
  double resident_bytes = 0;
  double cpu_seconds = 0;
  double start_time_seconds = 0;
};

ProcessStats ReadProcessStats(const std::string& proc_dir) {
  ProcessStats stats;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::vector<std::string> statm =
      absl::StrSplit(ReadFile(proc_dir + "/self/statm"), ' ', absl::SkipEmpty());
  double pages = 0;
  if (statm.size() >= 2 && absl::SimpleAtod(statm[1], &pages)) stats.resident_bytes = pages * page;
  // /proc/self/stat: "pid (comm) state ..."; comm may hold spaces, so split after the last ')'.
  const std::string stat = ReadFile(proc_dir + "/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ', absl::SkipEmpty());
    // f[0] is field 3 (state): utime = field 14, stime = 15, starttime = 22.
    double utime = 0, stime = 0, start = 0;
    if (f.size() > 19 && absl::SimpleAtod(f[11], &utime) && absl::SimpleAtod(f[12], &stime) &&
        absl::SimpleAtod(f[19], &start)) {
      stats.cpu_seconds = (utime + stime) / ticks;
      for (absl::string_view line : absl::StrSplit(ReadFile(proc_dir + "/stat"), '\n')) {
        double btime = 0;
        if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &btime)) {
          stats.start_time_seconds = btime + start / ticks;
        }
      }
    }
  }
  return stats;
}

prometheus::MetricFamily OneValue(const std::string& name, const std::string& help,
                                  prometheus::MetricType type, double value) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  family.metric.push_back(m);
  return family;
}

}  // namespace

std::string StatusCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

double CostPerMillionInferences(double cpu_seconds, double memory_gib, double hours_loaded,
                                double inferences, const CostRates& rates) {
  if (inferences <= 0) return 0;
  const double cost =
      cpu_seconds / 3600.0 * rates.per_core_hour + memory_gib * hours_loaded * rates.per_gib_hour;
  return cost / inferences * 1e6;
}

// Scrape-time metrics: process_* and the cost gauge.
class Metrics::Collector : public prometheus::Collectable {
 public:
  explicit Collector(const Metrics* metrics) : metrics_(metrics) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const ProcessStats stats = ReadProcessStats(metrics_->options_.proc_dir);
    std::vector<prometheus::MetricFamily> out;
    out.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                           prometheus::MetricType::Gauge, stats.resident_bytes));
    out.push_back(OneValue("process_cpu_seconds_total",
                           "Total user and system CPU time spent in seconds.",
                           prometheus::MetricType::Counter, stats.cpu_seconds));
    out.push_back(OneValue("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           prometheus::MetricType::Gauge, stats.start_time_seconds));

    prometheus::MetricFamily cost{
        "octet_cost_per_million_inferences",
        "Estimated cost of one million inferences from measured compute CPU seconds and the "
        "process's resident memory apportioned by weight bytes, at --cost_per_core_hour and "
        "--cost_per_gib_hour.",
        prometheus::MetricType::Gauge,
        {}};
    std::vector<std::shared_ptr<VersionMetrics>> versions;
    {
      absl::MutexLock lock(&metrics_->mu_);
      for (const auto& [key, v] : metrics_->versions_) versions.push_back(v);
    }
    double loaded_weight_bytes = 0;
    int loaded_count = 0;
    for (const auto& v : versions) {
      if (v->loaded.Value() > 0) {
        loaded_weight_bytes += v->weight_bytes.Value();
        ++loaded_count;
      }
    }
    const absl::Time now = absl::Now();
    for (const auto& v : versions) {
      double share = 0;
      if (v->loaded.Value() > 0) {
        share = loaded_weight_bytes > 0 ? v->weight_bytes.Value() / loaded_weight_bytes
                                        : 1.0 / loaded_count;
      }
      double hours = 0;
      {
        absl::MutexLock lock(&v->mu_);
        hours = v->loaded_hours_before_;
        if (v->loaded_at_ != absl::InfinitePast()) {
          hours += absl::ToDoubleHours(now - v->loaded_at_);
        }
      }
      prometheus::ClientMetric m;
      m.label = {{"model", v->model()}, {"version", v->version()}};
      m.gauge.value = CostPerMillionInferences(
          v->compute_cpu_seconds.Value(), stats.resident_bytes * share / (1024.0 * 1024 * 1024),
          hours, v->inferences.Value(), metrics_->options_.cost);
      cost.metric.push_back(std::move(m));
    }
    out.push_back(std::move(cost));
    return out;
  }

 private:
  const Metrics* const metrics_;
};

VersionMetrics::VersionMetrics(Metrics* m, const std::string& model, int64_t version)
    : inferences(m->inferences_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      request_latency(m->request_latency_.Add(
          {{"model", model}, {"version", absl::StrCat(version)}}, LatencyBuckets())),
      queue_latency(m->queue_latency_.Add({{"model", model}, {"version", absl::StrCat(version)}},
                                          LatencyBuckets())),
      compute_latency(m->compute_latency_.Add(
          {{"model", model}, {"version", absl::StrCat(version)}}, LatencyBuckets())),
      batch_size(m->batch_size_.Add({{"model", model}, {"version", absl::StrCat(version)}},
                                    BatchSizeBuckets())),
      queue_depth(m->queue_depth_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      inflight(m->inflight_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      weight_bytes(m->weight_bytes_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      fp32_weight_bytes(
          m->fp32_weight_bytes_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      loaded(m->loaded_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      compute_cpu_seconds(
          m->compute_cpu_seconds_.Add({{"model", model}, {"version", absl::StrCat(version)}})),
      metrics_(m),
      model_(model),
      version_(absl::StrCat(version)) {}

void VersionMetrics::RecordRequest(absl::StatusCode code) {
  const size_t index = static_cast<size_t>(code);
  if (index >= requests_by_code_.size()) {
    metrics_->requests_
        .Add({{"model", model_}, {"version", version_}, {"code", StatusCodeName(code)}})
        .Increment();
    return;
  }
  prometheus::Counter* counter = requests_by_code_[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Racing first lookups get the same series from the family: either store is right.
    counter = &metrics_->requests_.Add(
        {{"model", model_}, {"version", version_}, {"code", StatusCodeName(code)}});
    requests_by_code_[index].store(counter, std::memory_order_release);
  }
  counter->Increment();
}

void VersionMetrics::SetLoaded(bool is_loaded, int64_t weight, int64_t fp32_weight) {
  absl::MutexLock lock(&mu_);
  if (is_loaded) {
    weight_bytes.Set(static_cast<double>(weight));
    fp32_weight_bytes.Set(static_cast<double>(fp32_weight));
    if (loaded_at_ == absl::InfinitePast()) loaded_at_ = absl::Now();
    loaded.Set(1);
  } else {
    if (loaded_at_ != absl::InfinitePast()) {
      loaded_hours_before_ += absl::ToDoubleHours(absl::Now() - loaded_at_);
    }
    loaded_at_ = absl::InfinitePast();
    loaded.Set(0);
  }
}

Metrics::Metrics(const Options& options)
    : options_(options),
      registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("octet_requests_total")
                    .Help("Requests answered, by gRPC status code.")
                    .Register(*registry_)),
      inferences_(prometheus::BuildCounter()
                      .Name("octet_inferences_total")
                      .Help("Examples (batch rows) inferred.")
                      .Register(*registry_)),
      request_latency_(prometheus::BuildHistogram()
                           .Name("octet_request_latency_seconds")
                           .Help("End-to-end Predict latency inside the server.")
                           .Register(*registry_)),
      queue_latency_(prometheus::BuildHistogram()
                         .Name("octet_queue_latency_seconds")
                         .Help("Time from enqueue to the start of the request's batch.")
                         .Register(*registry_)),
      compute_latency_(prometheus::BuildHistogram()
                           .Name("octet_compute_latency_seconds")
                           .Help("Batch execution time.")
                           .Register(*registry_)),
      batch_size_(prometheus::BuildHistogram()
                      .Name("octet_batch_size")
                      .Help("Rows per executed batch.")
                      .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("octet_queue_depth")
                       .Help("Rows waiting in the batching queue.")
                       .Register(*registry_)),
      inflight_(prometheus::BuildGauge()
                    .Name("octet_inflight_requests")
                    .Help("Predict requests accepted and not yet answered.")
                    .Register(*registry_)),
      weight_bytes_(prometheus::BuildGauge()
                        .Name("octet_model_weight_bytes")
                        .Help("Model weight bytes as loaded.")
                        .Register(*registry_)),
      fp32_weight_bytes_(prometheus::BuildGauge()
                             .Name("octet_model_fp32_weight_bytes")
                             .Help("Model weight bytes if held in FP32.")
                             .Register(*registry_)),
      loaded_(prometheus::BuildGauge()
                  .Name("octet_model_loaded")
                  .Help("1 while the model version is serving.")
                  .Register(*registry_)),
      load_failures_(prometheus::BuildCounter()
                         .Name("octet_model_load_failures_total")
                         .Help("Model version loads that failed.")
                         .Register(*registry_)),
      compute_cpu_seconds_(prometheus::BuildCounter()
                               .Name("octet_compute_cpu_seconds_total")
                               .Help("Batch wall time multiplied by the threads that ran it.")
                               .Register(*registry_)),
      collector_(std::make_shared<Collector>(this)) {}

Metrics::~Metrics() = default;

std::shared_ptr<VersionMetrics> Metrics::ForVersion(const std::string& model, int64_t version) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<VersionMetrics>& slot = versions_[{model, version}];
  if (slot == nullptr) slot = std::make_shared<VersionMetrics>(this, model, version);
  return slot;
}

void Metrics::RecordUnroutedRequest(absl::StatusCode code) {
  requests_.Add({{"model", ""}, {"version", ""}, {"code", StatusCodeName(code)}}).Increment();
}

void Metrics::RecordLoadFailure(const std::string& model) {
  load_failures_.Add({{"model", model}}).Increment();
}

std::string Metrics::Scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> more = collector_->Collect();
  families.insert(families.end(), more.begin(), more.end());
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace octet::server
