// Sends one Predict request over and over and times each answer. Calls use gRPC's completion
// queue API with one thread draining the queue: that thread polls the socket itself, so an answer
// is handled (and, closed loop, the next call sent) without waking another thread, the cheapest
// client gRPC C++ offers (the callback API hands every completion between its own threads).
//
// Closed loop (like perf_analyzer's concurrency mode): `concurrency` calls are outstanding at all
// times; each answer immediately sends the next call. Open loop: calls leave at Poisson arrival
// times (exponential gaps, mean 1/rate) whether or not earlier ones were answered, so queueing at
// the server shows up in the latencies instead of slowing the client down.
//
// A phase stops sending after its duration and then waits for every outstanding call, so the
// server has counted all of a phase's requests (and no others) by the time Run*() returns: the
// deltas of its /metrics counters around a phase match the phase exactly.
#ifndef OCTET_DEPLOY_BENCH_LOAD_RUNNER_H_
#define OCTET_DEPLOY_BENCH_LOAD_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace octet::bench {

struct PhaseResult {
  // First call sent to last answer received, in seconds.
  double elapsed_seconds = 0;
  int64_t ok = 0;
  // Non-OK answers by gRPC code name ("UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
  std::map<std::string, int64_t> errors;
  // Send-to-answer time of each OK call, in seconds.
  std::vector<double> ok_latencies;
  // Open loop: calls sent more than 1 ms after their scheduled arrival time.
  int64_t late_sends = 0;
};

class LoadRunner {
 public:
  struct Options {
    // Deadline of each call, from its send time.
    absl::Duration timeout = absl::Seconds(10);
  };

  // Predict: `request` is sent as is by every call.
  LoadRunner(const Options& options,
             std::unique_ptr<tensorflow::serving::PredictionService::Stub> stub,
             tensorflow::serving::PredictRequest request);
  // The floor of one round trip: GetModelStatus(`request`) instead of Predict, through the same
  // channel, completion queue and bookkeeping; the server does no model work for it.
  LoadRunner(const Options& options, std::unique_ptr<tensorflow::serving::ModelService::Stub> stub,
             tensorflow::serving::GetModelStatusRequest request);
  // Waits for nothing: every phase has ended (Run*() waits for its calls) before it is called.
  ~LoadRunner();
  LoadRunner(const LoadRunner&) = delete;
  LoadRunner& operator=(const LoadRunner&) = delete;

  PhaseResult RunClosedLoop(int64_t concurrency, absl::Duration duration);
  PhaseResult RunOpenLoop(double requests_per_second, absl::Duration duration, uint64_t seed);

 private:
  using Clock = std::chrono::steady_clock;
  struct Call;
  struct Phase;

  // Calls hold the phase too: the last answer may still be unlocking its mutex when Finish()
  // returns.
  void Send(const std::shared_ptr<Phase>& phase);
  void OnAnswer(Call* call);
  PhaseResult Finish(Phase& phase);
  // Body of cq_thread_: handles answers until the queue is shut down.
  void DrainQueue();

  const Options options_;
  // Exactly one of the two stubs is set: it says which RPC the calls make.
  std::unique_ptr<tensorflow::serving::PredictionService::Stub> stub_;
  const tensorflow::serving::PredictRequest request_;
  std::unique_ptr<tensorflow::serving::ModelService::Stub> status_stub_;
  const tensorflow::serving::GetModelStatusRequest status_request_;
  grpc::CompletionQueue cq_;
  std::thread cq_thread_;  // started last, joined first
};

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_LOAD_RUNNER_H_
