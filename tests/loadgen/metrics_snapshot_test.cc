#include "deploy/bench/metrics_snapshot.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"

namespace octet::bench {
namespace {

TEST(MetricsSnapshotTest, ParsesLabelsEscapesAndTimestamps) {
  auto s = MetricsSnapshot::Parse(
      "# HELP x_total A counter\n"
      "# TYPE x_total counter\n"
      "x_total{model=\"a\",version=\"1\",code=\"OK\"} 5\n"
      "x_total{model=\"a\",version=\"1\",code=\"UNAVAILABLE\"} 2 1700000000000\n"
      "x_total{model=\"b\\\"q\\\\\",version=\"1\",code=\"OK\"} 7\n"
      "\n"
      "h_bucket{le=\"+Inf\"} 3\n"
      "g 1.5e3\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->samples().size(), 5u);
  EXPECT_EQ(s->Sum("x_total"), 14);
  EXPECT_EQ(s->Sum("x_total", {{"model", "a"}}), 7);
  EXPECT_EQ(s->Sum("x_total", {{"model", "b\"q\\"}}), 7);
  EXPECT_EQ(s->Sum("x_total", {{"model", "a"}, {"code", "OK"}}), 5);
  EXPECT_EQ(s->Sum("g"), 1500);
  EXPECT_TRUE(s->Has("h_bucket", {{"le", "+Inf"}}));
  EXPECT_FALSE(s->Has("x_total", {{"model", "c"}}));
  EXPECT_EQ(s->Sum("missing"), 0);
}

TEST(MetricsSnapshotTest, RefusesMalformedLinesWithTheLineNumber) {
  for (const char* bad : {"x_total{model=\"a\" 1\n", "x_total\n", "x_total{a=b} 1\n",
                          "x_total 1 2 3\n", "{a=\"b\"} 1\n", "x_total one\n"}) {
    auto s = MetricsSnapshot::Parse(std::string("ok 1\n") + bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s.status().message(), ::testing::HasSubstr("line 2")) << bad;
  }
}

TEST(MetricsSnapshotTest, DeltasOfTheServersOwnMetrics) {
  // What octet-server's Metrics class really emits, scraped twice around recorded activity.
  server::Metrics metrics(server::Metrics::Options{});
  std::shared_ptr<server::VersionMetrics> v = metrics.ForVersion("fashion_mlp", 3);
  std::shared_ptr<server::VersionMetrics> other = metrics.ForVersion("fashion_cnn", 1);
  v->RecordRequest(absl::StatusCode::kOk);
  v->queue_latency.Observe(0.5);
  auto before = MetricsSnapshot::Parse(metrics.Scrape());
  ASSERT_TRUE(before.ok()) << before.status();
  for (int i = 0; i < 4; ++i) v->RecordRequest(absl::StatusCode::kOk);
  v->RecordRequest(absl::StatusCode::kUnavailable);
  other->RecordRequest(absl::StatusCode::kOk);
  v->queue_latency.Observe(0.001);
  v->queue_latency.Observe(0.003);
  auto after = MetricsSnapshot::Parse(metrics.Scrape());
  ASSERT_TRUE(after.ok()) << after.status();

  const Labels mlp = {{"model", "fashion_mlp"}, {"version", "3"}};
  EXPECT_EQ(MetricsSnapshot::Delta(*before, *after, "octet_requests_total", mlp), 5);
  EXPECT_EQ(MetricsSnapshot::Delta(*before, *after, "octet_requests_total"), 6);
  EXPECT_EQ(MetricsSnapshot::Delta(*before, *after, "octet_queue_latency_seconds_count", mlp), 2);
  EXPECT_NEAR(MetricsSnapshot::Delta(*before, *after, "octet_queue_latency_seconds_sum", mlp),
              0.004, 1e-12);
  std::map<std::string, double> by_code =
      MetricsSnapshot::DeltaBy(*before, *after, "octet_requests_total", "code", mlp);
  EXPECT_EQ(by_code["OK"], 4);
  EXPECT_EQ(by_code["UNAVAILABLE"], 1);
}

}  // namespace
}  // namespace octet::bench
