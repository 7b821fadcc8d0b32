// The figures of one octet-bench run (client side and, with --metrics_url, the server's side of
// the same window) and how they are printed: a human summary and one CSV row.
//
// CSV columns (the header line is exactly CsvHeader(); times in milliseconds, rates per second):
//   timestamp_utc      ISO 8601 time the measured window ended
//   target, model, version   server address, model name, version that answered
//   mode               "concurrency" (closed loop) or "rate" (Poisson arrivals)
//   concurrency        outstanding requests (closed loop), else empty
//   request_rate       target arrivals per second (open loop), else empty
//   batch              rows per request
//   warmup_s, window_s  requested warm-up and window lengths
//   elapsed_s          measured: first request sent to last answer received
//   requests, ok, errors     requests answered in the window; OK; not OK
//   error_codes        non-OK answers by gRPC code, "CODE:count" joined by ';' (empty if none)
//   late_sends         open loop: arrivals sent more than 1 ms after their scheduled time
//   throughput_rps     ok / elapsed_s
//   inferences_per_s   ok x batch / elapsed_s
//   latency_mean_ms, latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms
//                      client-side (send to answer) over OK requests; nearest-rank percentiles
//   server_requests    delta of octet_requests_total{model,version} (every code)
//   server_inferences  delta of octet_inferences_total{model,version}
//   server_latency_mean_ms  delta sum / delta count of octet_request_latency_seconds
//   server_queue_mean_ms    same for octet_queue_latency_seconds (per request: enqueue -> batch)
//   server_compute_mean_ms  same for octet_compute_latency_seconds (per executed batch)
//   server_batches     delta count of octet_compute_latency_seconds
//   server_mean_batch_rows  delta sum / delta count of octet_batch_size
//   server_cpu_cores   delta process_cpu_seconds_total / scrape-to-scrape seconds
//   server_rss_bytes   process_resident_memory_bytes at the end of the window
// The server_* columns are empty without --metrics_url.
#ifndef OCTET_DEPLOY_BENCH_RUN_REPORT_H_
#define OCTET_DEPLOY_BENCH_RUN_REPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "deploy/bench/metrics_snapshot.h"

namespace octet::bench {

// Latencies in seconds.
struct LatencySummary {
  int64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};
// Nearest-rank percentiles (the smallest value with at least p% of the values at or below it).
LatencySummary Summarize(std::vector<double> latencies);

// The server's side of a window, from two scrapes of its /metrics.
struct ServerWindow {
  double requests = 0;
  std::map<std::string, double> requests_by_code;
  double inferences = 0;
  double latency_mean_s = 0;
  double queue_mean_s = 0;
  double compute_mean_s = 0;
  double batches = 0;
  double mean_batch_rows = 0;
  double cpu_cores = 0;
  double rss_bytes = 0;
};
// `scrape_seconds` is the time between the two scrapes. The {model, version} series only.
ServerWindow ComputeServerWindow(const MetricsSnapshot& before, const MetricsSnapshot& after,
                                 const std::string& model, int64_t version, double scrape_seconds);

struct RunReport {
  std::string timestamp_utc;
  std::string target, model;
  int64_t version = 0;
  bool open_loop = false;
  int64_t concurrency = 0;
  double request_rate = 0;
  int64_t batch = 1;
  double warmup_s = 0, window_s = 0, elapsed_s = 0;
  int64_t ok = 0;
  std::map<std::string, int64_t> error_codes;  // non-OK answers by gRPC code name
  int64_t late_sends = 0;
  LatencySummary latency;  // OK requests
  std::optional<ServerWindow> server;

  int64_t errors() const;
  double throughput_rps() const { return elapsed_s > 0 ? ok / elapsed_s : 0; }
  double inferences_per_s() const { return throughput_rps() * static_cast<double>(batch); }
};

std::string CsvHeader();
std::string CsvRow(const RunReport& report);
// Several lines for a terminal.
std::string HumanSummary(const RunReport& report);

// Appends `rows` to `path`: writes CsvHeader() first when the file is new or empty; refuses
// (FAILED_PRECONDITION) a non-empty file whose first line is another header.
absl::Status AppendCsv(const std::string& path, const std::vector<RunReport>& rows);

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_RUN_REPORT_H_
