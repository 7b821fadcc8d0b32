#include "deploy/bench/bench_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet::bench {
namespace {

using ::testing::HasSubstr;

BenchOptions Valid() {
  BenchOptions o;
  o.target = "127.0.0.1:8500";
  o.model = "fashion_mlp";
  o.concurrency = {4};
  return o;
}

TEST(BenchOptionsTest, ValidOptionsPass) {
  EXPECT_TRUE(Valid().Validate().ok());
  BenchOptions floor = Valid();
  floor.rpc = "model_status";
  EXPECT_TRUE(floor.Validate().ok());
}

TEST(BenchOptionsTest, EachBadFieldIsNamed) {
  struct Case {
    void (*mutate)(BenchOptions&);
    const char* expected;
  };
  const Case cases[] = {
      {[](BenchOptions& o) { o.target = ""; }, "--target: required"},
      {[](BenchOptions& o) { o.target = "localhost"; }, "--target: expected HOST:PORT"},
      {[](BenchOptions& o) { o.target = "h:99999"; }, "--target: expected HOST:PORT"},
      {[](BenchOptions& o) { o.model = ""; }, "--model: required"},
      {[](BenchOptions& o) { o.version = -1; }, "--version"},
      {[](BenchOptions& o) { o.batch = 0; }, "--batch: must be >= 1"},
      {[](BenchOptions& o) { o.concurrency.clear(); }, "exactly one of --concurrency"},
      {[](BenchOptions& o) { o.request_rate = {10}; }, "exactly one of --concurrency"},
      {[](BenchOptions& o) { o.seconds = 0; }, "--seconds: must be > 0"},
      {[](BenchOptions& o) { o.warmup_seconds = -1; }, "--warmup_seconds"},
      {[](BenchOptions& o) { o.timeout_ms = 0; }, "--timeout_ms"},
      {[](BenchOptions& o) { o.metrics_url = "127.0.0.1:8502/metrics"; }, "--metrics_url"},
      {[](BenchOptions& o) {
         o.inputs = {{"x", "a.npy"}, {"x", "b.npy"}};
       },
       "given twice"},
      {[](BenchOptions& o) {
         o.inputs = {{"x", "a.npy"}};
         o.batch = 8;
       },
       "--batch: applies to random inputs only"},
      {[](BenchOptions& o) { o.rpc = "health"; }, "--rpc: expected predict or model_status"},
      {[](BenchOptions& o) {
         o.rpc = "model_status";
         o.csv = "runs.csv";
       },
       "--csv: rows are Predict runs"},
  };
  for (const Case& c : cases) {
    BenchOptions o = Valid();
    c.mutate(o);
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(s.message(), HasSubstr(c.expected));
  }
}

TEST(BenchOptionsTest, ParsesSweepLists) {
  EXPECT_THAT(*ParseIntList("concurrency", "1,16,64"), ::testing::ElementsAre(1, 16, 64));
  EXPECT_THAT(*ParseRateList("request_rate", "50,200.5"), ::testing::ElementsAre(50, 200.5));
  for (const char* bad : {"", "0", "1,,2", "4x", "-3", "100001"}) {
    absl::StatusOr<std::vector<int64_t>> v = ParseIntList("concurrency", bad);
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_THAT(v.status().message(), HasSubstr("--concurrency")) << bad;
  }
  for (const char* bad : {"0", "-1", "nan", "inf", "abc"}) {
    EXPECT_FALSE(ParseRateList("request_rate", bad).ok()) << bad;
  }
}

TEST(BenchOptionsTest, ParsesInputAssignments) {
  auto kv = ParseInputAssignment("input=/tmp/a=b.npy");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "input");
  EXPECT_EQ(kv->second, "/tmp/a=b.npy");
  for (const char* bad : {"input", "=x.npy", "input="}) {
    EXPECT_FALSE(ParseInputAssignment(bad).ok()) << bad;
  }
}

TEST(BenchOptionsTest, ParsesHttpUrls) {
  auto url = ParseHttpUrl("http://127.0.0.1:8502/metrics");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8502);
  EXPECT_EQ(url->path, "/metrics");
  url = ParseHttpUrl("http://example");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->path, "/");
  for (const char* bad : {"https://h/metrics", "http://:80/", "http://h:0/", "http://h:x/"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace octet::bench
