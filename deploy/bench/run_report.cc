#include "deploy/bench/run_report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace octet::bench {
namespace {

// Nearest rank: the value at index ceil(p/100 * n) - 1 of the sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  const size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

double Ratio(double num, double den) { return den > 0 ? num / den : 0; }

std::string Ms(double seconds) { return absl::StrFormat("%.3f", seconds * 1e3); }

}  // namespace

LatencySummary Summarize(std::vector<double> latencies) {
  LatencySummary s;
  if (latencies.empty()) return s;
  std::sort(latencies.begin(), latencies.end());
  s.count = static_cast<int64_t>(latencies.size());
  s.mean = std::accumulate(latencies.begin(), latencies.end(), 0.0) /
           static_cast<double>(latencies.size());
  s.p50 = Percentile(latencies, 50);
  s.p90 = Percentile(latencies, 90);
  s.p99 = Percentile(latencies, 99);
  s.max = latencies.back();
  return s;
}

ServerWindow ComputeServerWindow(const MetricsSnapshot& before, const MetricsSnapshot& after,
                                 const std::string& model, int64_t version, double scrape_seconds) {
  const Labels match = {{"model", model}, {"version", std::to_string(version)}};
  auto delta = [&](const char* name) { return MetricsSnapshot::Delta(before, after, name, match); };
  ServerWindow w;
  w.requests = delta("octet_requests_total");
  w.requests_by_code =
      MetricsSnapshot::DeltaBy(before, after, "octet_requests_total", "code", match);
  w.inferences = delta("octet_inferences_total");
  w.latency_mean_s = Ratio(delta("octet_request_latency_seconds_sum"),
                           delta("octet_request_latency_seconds_count"));
  w.queue_mean_s =
      Ratio(delta("octet_queue_latency_seconds_sum"), delta("octet_queue_latency_seconds_count"));
  w.batches = delta("octet_compute_latency_seconds_count");
  w.compute_mean_s = Ratio(delta("octet_compute_latency_seconds_sum"), w.batches);
  w.mean_batch_rows = Ratio(delta("octet_batch_size_sum"), delta("octet_batch_size_count"));
  w.cpu_cores =
      Ratio(MetricsSnapshot::Delta(before, after, "process_cpu_seconds_total"), scrape_seconds);
  w.rss_bytes = after.Sum("process_resident_memory_bytes");
  return w;
}

int64_t RunReport::errors() const {
  int64_t n = 0;
  for (const auto& [code, count] : error_codes) n += count;
  return n;
}

std::string CsvHeader() {
  return "timestamp_utc,target,model,version,mode,concurrency,request_rate,batch,warmup_s,"
         "window_s,elapsed_s,requests,ok,errors,error_codes,late_sends,throughput_rps,"
         "inferences_per_s,latency_mean_ms,latency_p50_ms,latency_p90_ms,latency_p99_ms,"
         "latency_max_ms,server_requests,server_inferences,server_latency_mean_ms,"
         "server_queue_mean_ms,server_compute_mean_ms,server_batches,server_mean_batch_rows,"
         "server_cpu_cores,server_rss_bytes";
}

std::string CsvRow(const RunReport& r) {
  std::vector<std::string> codes;
  for (const auto& [code, count] : r.error_codes) codes.push_back(absl::StrCat(code, ":", count));
  std::vector<std::string> f = {r.timestamp_utc,
                                r.target,
                                r.model,
                                absl::StrCat(r.version),
                                r.open_loop ? "rate" : "concurrency",
                                r.open_loop ? "" : absl::StrCat(r.concurrency),
                                r.open_loop ? absl::StrFormat("%g", r.request_rate) : "",
                                absl::StrCat(r.batch),
                                absl::StrFormat("%g", r.warmup_s),
                                absl::StrFormat("%g", r.window_s),
                                absl::StrFormat("%.3f", r.elapsed_s),
                                absl::StrCat(r.ok + r.errors()),
                                absl::StrCat(r.ok),
                                absl::StrCat(r.errors()),
                                absl::StrJoin(codes, ";"),
                                absl::StrCat(r.late_sends),
                                absl::StrFormat("%.2f", r.throughput_rps()),
                                absl::StrFormat("%.2f", r.inferences_per_s()),
                                Ms(r.latency.mean),
                                Ms(r.latency.p50),
                                Ms(r.latency.p90),
                                Ms(r.latency.p99),
                                Ms(r.latency.max)};
  if (r.server.has_value()) {
    const ServerWindow& s = *r.server;
    for (std::string v :
         {absl::StrFormat("%.0f", s.requests), absl::StrFormat("%.0f", s.inferences),
          Ms(s.latency_mean_s), Ms(s.queue_mean_s), Ms(s.compute_mean_s),
          absl::StrFormat("%.0f", s.batches), absl::StrFormat("%.2f", s.mean_batch_rows),
          absl::StrFormat("%.3f", s.cpu_cores), absl::StrFormat("%.0f", s.rss_bytes)}) {
      f.push_back(std::move(v));
    }
  } else {
    f.resize(f.size() + 9);
  }
  // Only target and model could hold a comma or quote; quote every field that does.
  for (std::string& field : f) {
    if (field.find_first_of(",\"\n") != std::string::npos) {
      std::string quoted = "\"";
      for (char c : field) {
        if (c == '"') quoted.push_back('"');
        quoted.push_back(c);
      }
      field = quoted + "\"";
    }
  }
  return absl::StrJoin(f, ",");
}

std::string HumanSummary(const RunReport& r) {
  std::string s = absl::StrFormat(
      "%s v%d, %s, batch %d: %.3f s window, %d requests (%d OK, %d errors)\n", r.model, r.version,
      r.open_loop ? absl::StrFormat("Poisson arrivals at %g req/s", r.request_rate)
                  : absl::StrFormat("concurrency %d", r.concurrency),
      r.batch, r.elapsed_s, r.ok + r.errors(), r.ok, r.errors());
  absl::StrAppendFormat(&s, "  throughput  %.1f req/s, %.1f inferences/s\n", r.throughput_rps(),
                        r.inferences_per_s());
  absl::StrAppendFormat(&s, "  latency     mean %s ms, p50 %s, p90 %s, p99 %s, max %s ms\n",
                        Ms(r.latency.mean), Ms(r.latency.p50), Ms(r.latency.p90), Ms(r.latency.p99),
                        Ms(r.latency.max));
  if (!r.error_codes.empty()) {
    std::vector<std::string> codes;
    for (const auto& [code, n] : r.error_codes) codes.push_back(absl::StrCat(code, " ", n));
    absl::StrAppend(&s, "  errors      ", absl::StrJoin(codes, ", "), "\n");
  }
  if (r.open_loop && r.late_sends > 0) {
    absl::StrAppendFormat(&s, "  late sends  %d (client could not keep the schedule)\n",
                          r.late_sends);
  }
  if (r.server.has_value()) {
    const ServerWindow& w = *r.server;
    absl::StrAppendFormat(&s,
                          "  server      %.0f requests, %.0f inferences; mean latency %s ms = "
                          "queue %s ms + compute %s ms/batch + other\n",
                          w.requests, w.inferences, Ms(w.latency_mean_s), Ms(w.queue_mean_s),
                          Ms(w.compute_mean_s));
    absl::StrAppendFormat(&s,
                          "              %.0f batches of %.2f rows on average; %.2f CPU cores; "
                          "resident %.1f MiB\n",
                          w.batches, w.mean_batch_rows, w.cpu_cores, w.rss_bytes / (1 << 20));
  }
  return s;
}

absl::Status AppendCsv(const std::string& path, const std::vector<RunReport>& rows) {
  std::string first_line;
  {
    std::ifstream in(path);
    if (in) std::getline(in, first_line);
  }
  if (!first_line.empty() && first_line != CsvHeader()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--csv ", path, " exists with other columns; give a new file (header: ", CsvHeader(), ")"));
  }
  std::ofstream out(path, std::ios::app);
  if (first_line.empty()) out << CsvHeader() << "\n";
  for (const RunReport& r : rows) out << CsvRow(r) << "\n";
  out.flush();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write --csv ", path));
  return absl::OkStatus();
}

}  // namespace octet::bench
