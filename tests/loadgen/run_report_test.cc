#include "deploy/bench/run_report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet::bench {
namespace {

TEST(SummarizeTest, NearestRankPercentiles) {
  // 1..100 ms shuffled: p50 = 50, p90 = 90, p99 = 99, max = 100, mean = 50.5.
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i * 1e-3);
  LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 100);
  EXPECT_DOUBLE_EQ(s.p50, 0.050);
  EXPECT_DOUBLE_EQ(s.p90, 0.090);
  EXPECT_DOUBLE_EQ(s.p99, 0.099);
  EXPECT_DOUBLE_EQ(s.max, 0.100);
  EXPECT_NEAR(s.mean, 0.0505, 1e-12);
  // Three values: ranks ceil(1.5) = 2, ceil(2.7) = 3, ceil(2.97) = 3.
  s = Summarize({0.3, 0.1, 0.2});
  EXPECT_DOUBLE_EQ(s.p50, 0.2);
  EXPECT_DOUBLE_EQ(s.p90, 0.3);
  EXPECT_DOUBLE_EQ(s.p99, 0.3);
  EXPECT_EQ(Summarize({}).count, 0);
}

MetricsSnapshot Snap(const std::string& text) {
  absl::StatusOr<MetricsSnapshot> s = MetricsSnapshot::Parse(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(ServerWindowTest, QueueAndComputeFromHistogramDeltas) {
  const std::string l = "{model=\"m\",version=\"2\"";
  MetricsSnapshot before = Snap(
      "octet_requests_total" + l + ",code=\"OK\"} 10\n" + "octet_inferences_total" + l + "} 80\n" +
      "octet_request_latency_seconds_sum" + l + "} 1\n" + "octet_request_latency_seconds_count" +
      l + "} 10\n" + "octet_queue_latency_seconds_sum" + l + "} 0.5\n" +
      "octet_queue_latency_seconds_count" + l + "} 10\n" + "octet_compute_latency_seconds_sum" + l +
      "} 0.2\n" + "octet_compute_latency_seconds_count" + l + "} 4\n" + "octet_batch_size_sum" + l +
      "} 80\n" + "octet_batch_size_count" + l + "} 4\n" +
      "process_cpu_seconds_total 100\nprocess_resident_memory_bytes 1000\n");
  MetricsSnapshot after = Snap(
      "octet_requests_total" + l + ",code=\"OK\"} 30\n" + "octet_requests_total" + l +
      ",code=\"UNAVAILABLE\"} 2\n" +
      "octet_requests_total{model=\"x\",version=\"2\",code=\"OK\"} 99\n" +
      "octet_inferences_total" + l + "} 240\n" + "octet_request_latency_seconds_sum" + l +
      "} 1.44\n" + "octet_request_latency_seconds_count" + l + "} 32\n" +
      "octet_queue_latency_seconds_sum" + l + "} 0.72\n" + "octet_queue_latency_seconds_count" + l +
      "} 32\n" + "octet_compute_latency_seconds_sum" + l + "} 0.28\n" +
      "octet_compute_latency_seconds_count" + l + "} 8\n" + "octet_batch_size_sum" + l + "} 240\n" +
      "octet_batch_size_count" + l + "} 8\n" +
      "process_cpu_seconds_total 103\nprocess_resident_memory_bytes 2048\n");
  ServerWindow w = ComputeServerWindow(before, after, "m", 2, 2.0);
  EXPECT_EQ(w.requests, 22);
  EXPECT_EQ(w.requests_by_code["OK"], 20);
  EXPECT_EQ(w.requests_by_code["UNAVAILABLE"], 2);
  EXPECT_EQ(w.inferences, 160);
  EXPECT_NEAR(w.latency_mean_s, 0.44 / 22, 1e-12);
  EXPECT_NEAR(w.queue_mean_s, 0.22 / 22, 1e-12);
  EXPECT_EQ(w.batches, 4);
  EXPECT_NEAR(w.compute_mean_s, 0.08 / 4, 1e-12);
  EXPECT_NEAR(w.mean_batch_rows, 40, 1e-12);
  EXPECT_NEAR(w.cpu_cores, 1.5, 1e-12);
  EXPECT_EQ(w.rss_bytes, 2048);
}

RunReport Example() {
  RunReport r;
  r.timestamp_utc = "2026-11-23T15:00:00Z";
  r.target = "127.0.0.1:8500";
  r.model = "fashion_mlp";
  r.version = 1;
  r.concurrency = 16;
  r.batch = 8;
  r.warmup_s = 1;
  r.window_s = 2;
  r.elapsed_s = 2.0;
  r.ok = 1000;
  r.error_codes = {{"UNAVAILABLE", 3}, {"DEADLINE_EXCEEDED", 1}};
  r.latency = Summarize({0.001, 0.002, 0.004});
  return r;
}

std::vector<std::string> Fields(const std::string& line) { return absl::StrSplit(line, ','); }

TEST(CsvTest, RowMatchesTheHeader) {
  RunReport r = Example();
  const std::vector<std::string> header = Fields(CsvHeader());
  std::vector<std::string> row = Fields(CsvRow(r));
  ASSERT_EQ(row.size(), header.size());
  auto col = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return row[static_cast<size_t>(it - header.begin())];
  };
  EXPECT_EQ(col("mode"), "concurrency");
  EXPECT_EQ(col("concurrency"), "16");
  EXPECT_EQ(col("request_rate"), "");
  EXPECT_EQ(col("requests"), "1004");
  EXPECT_EQ(col("errors"), "4");
  EXPECT_EQ(col("error_codes"), "DEADLINE_EXCEEDED:1;UNAVAILABLE:3");
  EXPECT_EQ(col("throughput_rps"), "500.00");
  EXPECT_EQ(col("inferences_per_s"), "4000.00");
  EXPECT_EQ(col("latency_p50_ms"), "2.000");
  EXPECT_EQ(col("latency_max_ms"), "4.000");
  EXPECT_EQ(col("server_requests"), "");

  r.open_loop = true;
  r.request_rate = 250;
  r.server = ServerWindow{};
  r.server->requests = 1004;
  r.server->queue_mean_s = 0.0015;
  row = Fields(CsvRow(r));
  ASSERT_EQ(row.size(), header.size());
  EXPECT_EQ(col("mode"), "rate");
  EXPECT_EQ(col("concurrency"), "");
  EXPECT_EQ(col("request_rate"), "250");
  EXPECT_EQ(col("server_requests"), "1004");
  EXPECT_EQ(col("server_queue_mean_ms"), "1.500");
}

TEST(CsvTest, AppendWritesTheHeaderOnceAndRefusesOtherFiles) {
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) / "octet_bench_csv_test.csv";
  std::filesystem::remove(path);
  ASSERT_TRUE(AppendCsv(path.string(), {Example()}).ok());
  ASSERT_TRUE(AppendCsv(path.string(), {Example(), Example()}).ok());
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], CsvHeader());
  EXPECT_EQ(lines[3], CsvRow(Example()));

  std::ofstream(path) << "a,b,c\n1,2,3\n";
  absl::Status s = AppendCsv(path.string(), {Example()});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace octet::bench
