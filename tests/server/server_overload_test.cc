// The real octet-server process at three times its capacity for 20 s: the excess is refused
// UNAVAILABLE ("queue full"), nothing hangs or is lost, resident memory stays bounded by the
// queue, and the server serves normally as soon as the load stops. Capacity is measured by the
// test itself first, so the load is 3x whatever this machine can do right now.
#include <algorithm>
#include <atomic>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server_process.h"
#include "server_test_util.h"

namespace octet::server {
namespace {

using tensorflow::serving::PredictRequest;
using tensorflow::serving::PredictResponse;
using testing::ServerProcess;

constexpr int64_t kRows = 8;            // rows per request
constexpr int64_t kMaxBatchSize = 32;   // rows
constexpr int64_t kMaxQueueSize = 128;  // rows
constexpr int64_t kRowBytes = 784 * 4;  // one float image
constexpr absl::Duration kProbe = absl::Seconds(3);
constexpr absl::Duration kOverload = absl::Seconds(20);
constexpr double kLoadFactor = 3.0;
constexpr int kMaxOutstanding = 4096;       // protects the client, not the server
constexpr int kMaxConcurrentStreams = 128;  // --max_concurrent_streams (one client connection)
// Memory the server may add over its warm baseline: the queue and the batch being executed, each
// held in a few copies (request message, validated tensor, batch input, outputs); the requests
// admitted by the transport but not yet refused (at most kMaxConcurrentStreams, as received bytes
// and parsed message); and gRPC buffers and allocator slack, which do not grow with the number of
// refused requests.
constexpr int64_t kCopies = 4;
constexpr int64_t kTransportSlack = 64ll << 20;

// Value of one sample line of the Prometheus text format (-1 if absent).
double MetricValue(const std::string& text, const std::string& series) {
  const size_t at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

struct Counts {
  std::atomic<int64_t> ok{0}, unavailable{0}, queue_full{0}, deadline{0}, other{0}, wrong{0};
  std::atomic<int64_t> outstanding{0};
  absl::Mutex mu;
  std::string other_message ABSL_GUARDED_BY(mu);
};

class Client {
 public:
  explicit Client(std::shared_ptr<grpc::Channel> channel)
      : stub_(tensorflow::serving::PredictionService::NewStub(std::move(channel))) {}

  grpc::Status Call(const PredictRequest& request, PredictResponse* response,
                    absl::Duration timeout = absl::Seconds(60)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return stub_->Predict(&context, request, response);
  }

  // Sends without waiting; `done` runs on a gRPC thread with the outcome.
  void Send(const PredictRequest& request, const std::vector<float>* want, Counts* counts) {
    struct Pending {
      grpc::ClientContext context;
      PredictResponse response;
    };
    auto* pending = new Pending;
    pending->context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    counts->outstanding.fetch_add(1);
    stub_->async()->Predict(
        &pending->context, &request, &pending->response, [pending, want, counts](grpc::Status st) {
          if (st.ok()) {
            counts->ok.fetch_add(1);
            if (!testing::SameLogits(testing::Logits(pending->response), *want)) {
              counts->wrong.fetch_add(1);
            }
          } else if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
            counts->unavailable.fetch_add(1);
            if (st.error_message().find("queue full") != std::string::npos) {
              counts->queue_full.fetch_add(1);
            }
          } else if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
            counts->deadline.fetch_add(1);
          } else {
            counts->other.fetch_add(1);
            absl::MutexLock lock(&counts->mu);
            counts->other_message = st.error_message();
          }
          delete pending;
          counts->outstanding.fetch_sub(1);
        });
  }

 private:
  std::unique_ptr<tensorflow::serving::PredictionService::Stub> stub_;
};

absl::Duration Median(std::vector<absl::Duration> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(ServerOverloadTest, ThreeTimesCapacityIsRefusedWithBoundedMemoryAndRecoversAtOnce) {
  const std::filesystem::path dir = testing::FreshTestDir("overload");
  testing::CopyDemoModel("fashion_cnn", dir / "models",
                         absl::StrCat("batching { max_batch_size: ", kMaxBatchSize,
                                      " max_queue_delay_micros: 1000 max_queue_size: ",
                                      kMaxQueueSize, " }\nnum_workers: 1\n"));
  ServerProcess server;
  ServerProcess::Options options;
  options.model_repository = dir / "models";
  options.metrics = true;
  options.flags = {absl::StrCat("--max_concurrent_streams=", kMaxConcurrentStreams)};
  ASSERT_TRUE(server.Start(options));
  std::shared_ptr<grpc::Channel> channel = server.InsecureChannel();
  ASSERT_TRUE(server.WaitServing(channel)) << server.Log();
  Client client(channel);

  // Four distinct requests and their answers from the idle server.
  constexpr int kDistinct = 4;
  std::vector<PredictRequest> requests;
  std::vector<std::vector<float>> answers;
  int64_t client_ok = 0;
  for (int i = 0; i < kDistinct; ++i) {
    requests.push_back(testing::DemoRequest("fashion_cnn", kRows, 100 + i));
    PredictResponse response;
    grpc::Status st = client.Call(requests.back(), &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    answers.push_back(testing::Logits(response));
    ASSERT_EQ(answers.back().size(), static_cast<size_t>(kRows * 10));
    ++client_ok;
  }
  auto sequential_latencies = [&](int n) {
    std::vector<absl::Duration> latencies;
    for (int i = 0; i < n; ++i) {
      PredictResponse response;
      const absl::Time start = absl::Now();
      grpc::Status st = client.Call(requests[i % kDistinct], &response);
      latencies.push_back(absl::Now() - start);
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_TRUE(testing::SameLogits(testing::Logits(response), answers[i % kDistinct]));
      if (st.ok()) ++client_ok;
    }
    return latencies;
  };
  const absl::Duration idle_latency = Median(sequential_latencies(20));

  // Capacity: served requests per second with enough closed-loop clients to keep the batcher
  // busy (8 x 8 rows = 64 rows in flight, within the 128-row queue: nothing is refused here).
  std::atomic<int64_t> probe_ok{0}, probe_failed{0};
  {
    const absl::Time end = absl::Now() + kProbe;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        while (absl::Now() < end) {
          PredictResponse response;
          if (client.Call(requests[t % kDistinct], &response).ok()) {
            probe_ok.fetch_add(1);
          } else {
            probe_failed.fetch_add(1);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  ASSERT_EQ(probe_failed.load(), 0);
  ASSERT_GT(probe_ok.load(), 0);
  client_ok += probe_ok.load();
  const double capacity = static_cast<double>(probe_ok.load()) / absl::ToDoubleSeconds(kProbe);
  const int64_t baseline_rss = server.RssBytes();
  ASSERT_GT(baseline_rss, 0);
  const int64_t bound = baseline_rss + kCopies * (kMaxQueueSize + kMaxBatchSize) * kRowBytes +
                        2 * kMaxConcurrentStreams * kRows * kRowBytes + kTransportSlack;

  // Resident memory, sampled through the overload and the recovery.
  std::atomic<bool> sampling{true};
  std::atomic<int64_t> peak_rss{baseline_rss};
  std::thread sampler([&] {
    while (sampling.load()) {
      const int64_t rss = server.RssBytes();
      if (rss > peak_rss.load()) peak_rss.store(rss);
      absl::SleepFor(absl::Milliseconds(50));
    }
  });

  // Open loop at kLoadFactor x capacity: requests leave on schedule whether or not earlier ones
  // were answered. When the client thread itself falls behind by over 50 ms (a starved machine),
  // the missed slots are skipped rather than sent in a burst.
  Counts counts;
  int64_t sent = 0, skipped = 0, throttled = 0;
  {
    const absl::Duration interval = absl::Seconds(1) / (kLoadFactor * capacity);
    const absl::Time start = absl::Now();
    const absl::Time end = start + kOverload;
    absl::Time next = start;
    for (absl::Time now = start; now < end; now = absl::Now()) {
      if (now < next) {
        absl::SleepFor(std::min(next - now, absl::Milliseconds(2)));
        continue;
      }
      if (now - next > absl::Milliseconds(50)) {
        skipped += static_cast<int64_t>((now - next) / interval);
        next = now;
      }
      if (counts.outstanding.load() >= kMaxOutstanding) {
        ++throttled;
      } else {
        const int which = static_cast<int>(sent % kDistinct);
        client.Send(requests[which], &answers[which], &counts);
        ++sent;
      }
      next += interval;
    }
  }
  // Every request gets an answer: wait for the last ones (each has a 30 s deadline).
  const absl::Time wait_end = absl::Now() + absl::Seconds(90);
  while (counts.outstanding.load() > 0 && absl::Now() < wait_end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(counts.outstanding.load(), 0) << "requests never answered";

  std::printf(
      "overload: capacity %.0f req/s (%lld rows each), idle latency %s; sent %lld at %.0fx "
      "(%lld slots skipped, %lld throttled): %lld OK, %lld UNAVAILABLE (%lld queue full), %lld "
      "DEADLINE_EXCEEDED; RSS baseline %.1f MiB, peak %.1f MiB, bound %.1f MiB; refused payload "
      "%.1f MiB\n",
      capacity, static_cast<long long>(kRows), absl::FormatDuration(idle_latency).c_str(),
      static_cast<long long>(sent), kLoadFactor, static_cast<long long>(skipped),
      static_cast<long long>(throttled), static_cast<long long>(counts.ok.load()),
      static_cast<long long>(counts.unavailable.load()),
      static_cast<long long>(counts.queue_full.load()),
      static_cast<long long>(counts.deadline.load()), baseline_rss / 1048576.0,
      peak_rss.load() / 1048576.0, bound / 1048576.0,
      counts.unavailable.load() * kRows * kRowBytes / 1048576.0);

  // Every request: OK with the right answer, or refused / expired; never anything else.
  EXPECT_EQ(counts.ok + counts.unavailable + counts.deadline + counts.other, sent);
  {
    absl::MutexLock lock(&counts.mu);
    EXPECT_EQ(counts.other.load(), 0) << counts.other_message;
  }
  EXPECT_EQ(counts.wrong.load(), 0);
  EXPECT_GT(counts.ok.load(), 0);
  // The excess was refused for the queue being full (not for anything else).
  EXPECT_GT(counts.queue_full.load(), 0);
  EXPECT_EQ(counts.queue_full.load(), counts.unavailable.load());

  // Recovery: the queue is empty and the next requests are served with idle latency (a loose
  // bound: a backlog would cost seconds).
  const std::string metrics = testing::HttpGet(server.metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(metrics, "octet_queue_depth{model=\"fashion_cnn\",version=\"1\"}"), 0);
  EXPECT_EQ(MetricValue(metrics, "octet_inflight_requests{model=\"fashion_cnn\",version=\"1\"}"),
            0);
  const absl::Duration recovered_latency = Median(sequential_latencies(20));
  EXPECT_LE(recovered_latency, 10 * idle_latency + absl::Milliseconds(250))
      << "idle " << idle_latency << ", after the overload " << recovered_latency;
  sampling.store(false);
  sampler.join();
  EXPECT_LE(peak_rss.load(), bound) << "resident memory grew with the load";

  // The server counted what the client saw.
  const std::string after = testing::HttpGet(server.metrics_port(), "/metrics");
  if (counts.deadline.load() == 0) {
    EXPECT_EQ(
        MetricValue(after, "octet_requests_total{code=\"OK\",model=\"fashion_cnn\",version=\"1\"}"),
        static_cast<double>(client_ok + counts.ok.load()));
    EXPECT_EQ(MetricValue(
                  after,
                  "octet_requests_total{code=\"UNAVAILABLE\",model=\"fashion_cnn\",version=\"1\"}"),
              static_cast<double>(counts.unavailable.load()));
  }
  server.Signal(SIGTERM);
  const std::optional<int> status = server.WaitExit(absl::Seconds(60));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

}  // namespace
}  // namespace octet::server
