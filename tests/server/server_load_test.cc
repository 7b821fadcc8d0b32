// The server under concurrent load with the fake model: batching without cross-talk, hot reload
// with zero failed requests, SIGTERM-style draining, overload, deadlines. Runs are held at the
// fake model's gate where a test needs the queue in a known state; nothing sleeps to wait.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server_test_util.h"

namespace octet::server {
namespace {

using tensorflow::serving::PredictRequest;
using tensorflow::serving::PredictResponse;
using ::testing::HasSubstr;

class ServerLoadTest : public testing::ServerFixture {};

TEST_F(ServerLoadTest, ConcurrentClientsGetTheirOwnAnswersAndBatchesForm) {
  AddModel("m", "batching { max_batch_size: 16 max_queue_delay_micros: 2000 }", 1);
  StartServer();
  constexpr int kClients = 64;
  constexpr int kRequests = 20;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kRequests; ++i) {
        const int64_t rows = 1 + (c + i) % 5;
        const float seed = 1000.0f * c + 37.0f * i;
        PredictResponse response;
        grpc::Status st =
            Predict(MakeRequest("m", rows, seed, /*typed=*/(c + i) % 2 == 0), &response);
        if (!st.ok()) {
          failed.fetch_add(1);
        } else if (!IsExpectedAnswer(response, rows, seed, 1)) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  // A multi-row batch means requests were concatenated (each single request has <= 5 rows, so
  // > 5 rows proves several requests shared one execution).
  EXPECT_GT(stats_.max_batch_rows.load(), 5);
  const std::string metrics = server_->metrics().Scrape();
  EXPECT_THAT(metrics, HasSubstr("octet_requests_total{code=\"OK\",model=\"m\",version=\"1\"} " +
                                 std::to_string(kClients * kRequests)));
}

TEST_F(ServerLoadTest, InlineRunsGiveTheSameAnswersAsBatchedOnes) {
  AddModel("m", "batching { max_batch_size: 4 run_inline_when_idle: true }", 1);
  StartServer();
  // One client at a time: every request that fits a batch runs on the RPC thread; the 7-row one
  // is split across batch threads. All answers are the model's.
  for (int64_t rows : {1, 3, 7, 2}) {
    const float seed = 11.0f * static_cast<float>(rows);
    PredictResponse response;
    grpc::Status st = Predict(MakeRequest("m", rows, seed), &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(IsExpectedAnswer(response, rows, seed, 1)) << rows << " rows";
  }
}

TEST_F(ServerLoadTest, HotReloadUnderLoadFailsNothingAndRefusesACorruptVersion) {
  AddModel("m", "batching { max_queue_delay_micros: 100 }", 1);
  StartServer();
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, wrong{0}, from_v2{0}, total{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load(); ++i) {
        PredictResponse response;
        const float seed = float(c * 100 + i % 100);
        grpc::Status st = Predict(MakeRequest("m", 2, seed), &response);
        total.fetch_add(1);
        if (!st.ok()) {
          failed.fetch_add(1);
          continue;
        }
        const int64_t v = response.model_spec().version().value();
        if (!IsExpectedAnswer(response, 2, seed, v)) wrong.fetch_add(1);
        if (v == 2) from_v2.fetch_add(1);
      }
    });
  }
  auto wait_for_traffic = [&](std::atomic<int>& counter, int at_least) {
    const int target = counter.load() + at_least;
    while (counter.load() < target && failed.load() == 0) std::this_thread::yield();
  };
  wait_for_traffic(total, 200);
  AddVersion("m", 2);
  server_->repository().Poll();
  wait_for_traffic(from_v2, 200);
  AddVersion("m", 3, "corrupt");
  server_->repository().Poll();
  wait_for_traffic(from_v2, 200);
  stop.store(true);
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(server_->repository().Get("m", std::nullopt).value()->version(), 2);
  server_->repository().Poll();  // version 1 is idle now and gets unloaded
  auto status = server_->repository().GetStatus("m", std::nullopt).value();
  ASSERT_EQ(status.size(), 3u);
  EXPECT_EQ(status[0].state, tensorflow::serving::ModelVersionStatus::END);
  EXPECT_TRUE(status[0].status.ok());
  EXPECT_EQ(status[1].state, tensorflow::serving::ModelVersionStatus::AVAILABLE);
  EXPECT_EQ(status[2].state, tensorflow::serving::ModelVersionStatus::END);
  EXPECT_FALSE(status[2].status.ok());
}

// Sends `n` requests asynchronously; collects their statuses.
struct AsyncBatch {
  explicit AsyncBatch(int n) : contexts(n), responses(n), statuses(n), done(n) {}
  std::vector<grpc::ClientContext> contexts;
  std::vector<PredictResponse> responses;
  std::vector<grpc::Status> statuses;
  std::vector<absl::Notification> done;
  void Send(tensorflow::serving::PredictionService::Stub* stub, const PredictRequest& request,
            int i) {
    stub->async()->Predict(&contexts[i], &request, &responses[i], [this, i](grpc::Status s) {
      statuses[i] = std::move(s);
      done[i].Notify();
    });
  }
  void WaitAll() {
    for (auto& d : done) d.WaitForNotification();
  }
};

TEST_F(ServerLoadTest, DrainAnswersEveryAcceptedRequestAndRefusesNewOnes) {
  AddModel("m",
           "num_workers: 1 batching { max_batch_size: 2 max_queue_delay_micros: 0 "
           "max_queue_size: 64 }",
           1);
  StartServer();
  stats_.CloseGate();
  const PredictRequest request = MakeRequest("m", 1, 3.0f);
  AsyncBatch accepted(6);
  for (int i = 0; i < 6; ++i) accepted.Send(predict_.get(), request, i);
  stats_.WaitForRunsAtGate(1);  // one batch executing, the rest queued
  while (server_->metrics().Scrape().find("octet_inflight_requests{model=\"m\",version=\"1\"} 6") ==
         std::string::npos) {
    std::this_thread::yield();  // all six admitted
  }
  std::thread drainer([&] { EXPECT_TRUE(server_->Drain(absl::Seconds(20))); });
  while (Health("") == grpc::health::v1::HealthCheckResponse::SERVING) std::this_thread::yield();
  PredictResponse refused;
  grpc::Status st = Predict(request, &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("shutting down"));
  stats_.OpenGate();
  accepted.WaitAll();
  drainer.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(accepted.statuses[i].ok()) << i << ": " << accepted.statuses[i].error_message();
    EXPECT_TRUE(IsExpectedAnswer(accepted.responses[i], 1, 3.0f, 1));
  }
}

TEST_F(ServerLoadTest, OverloadIsUnavailableAndRecoversAtOnce) {
  AddModel("m",
           "num_workers: 1 batching { max_batch_size: 4 max_queue_delay_micros: 0 "
           "max_queue_size: 8 }",
           1);
  StartServer();
  stats_.CloseGate();
  const PredictRequest four = MakeRequest("m", 4, 1.0f);
  AsyncBatch first(1);
  first.Send(predict_.get(), four, 0);
  stats_.WaitForRunsAtGate(1);  // 4 rows executing, queue empty
  AsyncBatch queued(2);
  queued.Send(predict_.get(), four, 0);
  queued.Send(predict_.get(), four, 1);
  while (server_->metrics().Scrape().find("octet_queue_depth{model=\"m\",version=\"1\"} 8") ==
         std::string::npos) {
    std::this_thread::yield();
  }
  PredictResponse response;
  grpc::Status st = Predict(MakeRequest("m", 1, 0.0f), &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("queue full"));
  stats_.OpenGate();
  first.WaitAll();
  queued.WaitAll();
  EXPECT_TRUE(first.statuses[0].ok());
  EXPECT_TRUE(queued.statuses[0].ok());
  EXPECT_TRUE(queued.statuses[1].ok());
  ASSERT_TRUE(Predict(MakeRequest("m", 1, 0.0f), &response).ok());
  EXPECT_THAT(server_->metrics().Scrape(),
              HasSubstr("octet_requests_total{code=\"UNAVAILABLE\",model=\"m\",version=\"1\"} 1"));
}

TEST_F(ServerLoadTest, ExpiredQueuedRequestIsNeverExecuted) {
  // Inline runs: the blocker holds the worker on its RPC thread while the batch thread stays free
  // to drop the queued request at the server's deadline, which the test waits for.
  AddModel("m",
           "num_workers: 1 batching { max_batch_size: 1 max_queue_delay_micros: 0 "
           "run_inline_when_idle: true }",
           1);
  StartServer();
  const int warm_up_runs = stats_.runs.load();
  stats_.CloseGate();
  AsyncBatch blocker(1);
  blocker.Send(predict_.get(), MakeRequest("m", 1, 0.0f), 0);
  stats_.WaitForRunsAtGate(1);
  PredictResponse response;
  grpc::Status st = Predict(MakeRequest("m", 1, 0.0f), &response, absl::Milliseconds(100));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's deadline travels as a timeout and ends a little after the client's: wait until
  // the server has dropped the request itself, or the freed worker could still run it.
  while (server_->metrics().Scrape().find(
             "octet_requests_total{code=\"DEADLINE_EXCEEDED\",model=\"m\",version=\"1\"} 1") ==
         std::string::npos) {
    std::this_thread::yield();
  }
  stats_.OpenGate();
  blocker.WaitAll();
  EXPECT_TRUE(blocker.statuses[0].ok());
  ASSERT_TRUE(Predict(MakeRequest("m", 1, 0.0f), &response).ok());
  // The blocker and the last request ran; the expired one never did.
  EXPECT_EQ(stats_.runs.load(), warm_up_runs + 2);
}

TEST_F(ServerLoadTest, ModelsShareTheCpuBudgetAtRunTime) {
  // Each model alone fits the 2-CPU budget (1 worker x 2 threads); both at once would need 4.
  AddModel("a", "num_workers: 1 threads_per_worker: 2 batching { max_queue_delay_micros: 0 }", 1);
  AddModel("b", "num_workers: 1 threads_per_worker: 2 batching { max_queue_delay_micros: 0 }", 1);
  StartServer();
  ASSERT_EQ(server_->cpu_budget(), 2);
  stats_.CloseGate();
  AsyncBatch first(1);
  first.Send(predict_.get(), MakeRequest("a", 1, 1.0f), 0);
  stats_.WaitForRunsAtGate(1);  // a's batch runs, holding both CPUs
  AsyncBatch second(1);
  second.Send(predict_.get(), MakeRequest("b", 1, 2.0f), 0);
  // b's batch waits for CPUs instead of running next to a's.
  while (server_->cpu_slots().waiting() < 1) std::this_thread::yield();
  EXPECT_EQ(server_->cpu_slots().in_use(), 2);
  {
    absl::MutexLock lock(&stats_.mu);
    EXPECT_EQ(stats_.waiting_at_gate, 1);
  }
  stats_.OpenGate();
  first.WaitAll();
  second.WaitAll();
  ASSERT_TRUE(first.statuses[0].ok()) << first.statuses[0].error_message();
  ASSERT_TRUE(second.statuses[0].ok()) << second.statuses[0].error_message();
  EXPECT_TRUE(IsExpectedAnswer(first.responses[0], 1, 1.0f, 1));
  EXPECT_TRUE(IsExpectedAnswer(second.responses[0], 1, 2.0f, 1));
  EXPECT_EQ(server_->cpu_slots().in_use(), 0);
}

TEST_F(ServerLoadTest, NarrowModelsRunSideBySideWithinTheBudget) {
  // 1 thread each: both fit in the 2-CPU budget at once, so both batches run together.
  AddModel("a", "num_workers: 1 threads_per_worker: 1 batching { max_queue_delay_micros: 0 }", 1);
  AddModel("b", "num_workers: 1 threads_per_worker: 1 batching { max_queue_delay_micros: 0 }", 1);
  StartServer();
  stats_.CloseGate();
  AsyncBatch calls(2);
  calls.Send(predict_.get(), MakeRequest("a", 1, 1.0f), 0);
  calls.Send(predict_.get(), MakeRequest("b", 1, 2.0f), 1);
  stats_.WaitForRunsAtGate(2);
  EXPECT_EQ(server_->cpu_slots().in_use(), 2);
  stats_.OpenGate();
  calls.WaitAll();
  EXPECT_TRUE(calls.statuses[0].ok());
  EXPECT_TRUE(calls.statuses[1].ok());
}

}  // namespace
}  // namespace octet::server
