// SIGTERM on the real octet-server process under load: health turns NOT_SERVING, every request
// the server accepted is answered, later ones are refused cleanly, and the process exits 0 within
// its grace period.
#include <atomic>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server_process.h"

namespace octet::server {
namespace {

using grpc::health::v1::HealthCheckResponse;
using tensorflow::serving::PredictRequest;
using tensorflow::serving::PredictResponse;
using ::testing::HasSubstr;
using testing::ServerProcess;

constexpr int kGraceSeconds = 30;

// One finished client call.
struct Outcome {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  bool correct = false;  // OK and equal to the reference logits
};

// Messages of UNAVAILABLE that mean "never accepted": the server's own refusal while draining, or
// no server to talk to any more.
bool IsCleanRefusal(const std::string& message) {
  for (const char* part : {"shutting down", "failed to connect", "Connection refused",
                           "connections to all backends failing", "GOAWAY", "Socket closed",
                           "Broken pipe", "Connection reset"}) {
    if (message.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(ServerSigtermTest, DrainsAnsweringEveryAcceptedRequestAndExitsZero) {
  const std::filesystem::path dir = testing::FreshTestDir("sigterm");
  // A queue large enough never to refuse for being full: every refusal here is the drain's.
  testing::CopyDemoModel("fashion_cnn", dir / "models",
                         "batching { max_batch_size: 32 max_queue_delay_micros: 1000 "
                         "max_queue_size: 4096 }\nnum_workers: 1\n");
  ServerProcess server;
  ServerProcess::Options options;
  options.model_repository = dir / "models";
  options.health_port = true;
  options.flags = {absl::StrCat("--drain_grace_seconds=", kGraceSeconds)};
  ASSERT_TRUE(server.Start(options));
  std::shared_ptr<grpc::Channel> channel = server.InsecureChannel();
  ASSERT_TRUE(server.WaitServing(channel)) << server.Log();
  auto stub = tensorflow::serving::PredictionService::NewStub(channel);

  // Reference answer of the request every client sends, from the idle server.
  constexpr int64_t kRows = 8;
  const PredictRequest request = testing::DemoRequest("fashion_cnn", kRows, 7);
  std::vector<float> reference;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    PredictResponse response;
    grpc::Status st = stub->Predict(&context, request, &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    reference = testing::Logits(response);
    ASSERT_EQ(reference.size(), static_cast<size_t>(kRows * 10));
  }

  // Health as the kubelet would follow it: a Watch stream on the main port records every status
  // until the server goes away; the plaintext health port answers Check.
  std::vector<HealthCheckResponse::ServingStatus> watched;
  absl::Mutex watched_mu;
  grpc::ClientContext watch_context;
  std::thread watcher([&] {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::health::v1::HealthCheckRequest watch_request;
    auto reader = health->Watch(&watch_context, watch_request);
    HealthCheckResponse update;
    while (reader->Read(&update)) {
      absl::MutexLock lock(&watched_mu);
      watched.push_back(update.status());
    }
    reader->Finish();
  });
  {
    auto health_only =
        grpc::health::v1::Health::NewStub(server.InsecureChannel(server.health_port()));
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest check;
    HealthCheckResponse response;
    ASSERT_TRUE(health_only->Check(&context, check, &response).ok());
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }

  // Closed-loop clients, each on until its first non-OK answer (every one ends: after the drain
  // the process exits and connections are refused).
  constexpr int kClients = 16;
  std::atomic<int> ok{0};
  absl::Mutex outcomes_mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      while (true) {
        Outcome outcome;
        grpc::ClientContext context;
        // Generous: a DEADLINE_EXCEEDED here would be a lost request, not a slow machine.
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(kGraceSeconds + 60)));
        PredictResponse response;
        grpc::Status st = stub->Predict(&context, request, &response);
        outcome.code = st.error_code();
        outcome.message = st.error_message();
        outcome.correct = st.ok() && testing::SameLogits(testing::Logits(response), reference);
        if (st.ok()) ok.fetch_add(1);
        absl::MutexLock lock(&outcomes_mu);
        outcomes.push_back(outcome);
        if (!st.ok()) return;
      }
    });
  }
  // Let the load build up (queued and executing requests) before the signal.
  while (ok.load() < 3 * kClients && !server.Exited()) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_FALSE(server.Exited()) << server.Log();
  const absl::Time sigterm_time = absl::Now();
  server.Signal(SIGTERM);

  const std::optional<int> status = server.WaitExit(absl::Seconds(kGraceSeconds + 30));
  ASSERT_TRUE(status.has_value()) << "still running long after the grace period\n" << server.Log();
  const absl::Duration exit_after = absl::Now() - sigterm_time;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_LT(exit_after, absl::Seconds(kGraceSeconds + 5));
  for (auto& t : clients) t.join();
  watch_context.TryCancel();
  watcher.join();

  int refused = 0, refused_by_drain = 0;
  for (const Outcome& o : outcomes) {
    if (o.code == grpc::StatusCode::OK) {
      EXPECT_TRUE(o.correct) << "an answer differs from the reference";
      continue;
    }
    // Nothing times out or is cancelled: a non-OK answer is a clean refusal, by the draining
    // server ("shutting down") or by a server that is no longer there.
    EXPECT_EQ(o.code, grpc::StatusCode::UNAVAILABLE) << o.message;
    EXPECT_TRUE(IsCleanRefusal(o.message)) << o.message;
    ++refused;
    if (o.message.find("shutting down") != std::string::npos) ++refused_by_drain;
  }
  EXPECT_EQ(refused, kClients);  // each client ended on exactly one refusal
  // The server's own account: requests were in flight (admitted) when the drain began, and every
  // admitted request was answered before the listener closed.
  const std::string log = server.Log();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("answering the ([0-9]+) in flight"))) << log;
  const int in_flight_at_drain = std::stoi(m[1]);
  EXPECT_GT(in_flight_at_drain, 0)
      << "SIGTERM came with nothing in flight; the test proves nothing";
  EXPECT_THAT(log, HasSubstr("drained"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("still in flight after the grace period")));
  std::printf(
      "SIGTERM: %d in flight at the drain, %d OK in total, %d refused (%d by the draining "
      "server), exit after %s\n",
      in_flight_at_drain, ok.load(), refused, refused_by_drain,
      absl::FormatDuration(exit_after).c_str());
  {
    absl::MutexLock lock(&watched_mu);
    ASSERT_FALSE(watched.empty());
    EXPECT_EQ(watched.front(), HealthCheckResponse::SERVING);
    EXPECT_EQ(watched.back(), HealthCheckResponse::NOT_SERVING)
        << "health never reported NOT_SERVING before the server went away";
  }
  // After the exit: connection refused, surfaced as UNAVAILABLE.
  auto after = tensorflow::serving::PredictionService::NewStub(server.InsecureChannel());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  PredictResponse response;
  EXPECT_EQ(after->Predict(&context, request, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace octet::server
