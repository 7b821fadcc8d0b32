#include "deploy/bench/load_runner.h"

#include <atomic>
#include <random>
#include <thread>

#include "absl/status/status.h"

namespace octet::bench {

struct LoadRunner::Call {
  grpc::ClientContext context;
  tensorflow::serving::PredictResponse response;
  tensorflow::serving::GetModelStatusResponse status_response;
  Clock::time_point sent;
};

struct LoadRunner::Phase {
  bool closed_loop = false;
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  int64_t outstanding ABSL_GUARDED_BY(mu) = 0;
  Clock::time_point start, last_answer ABSL_GUARDED_BY(mu);
  PhaseResult result ABSL_GUARDED_BY(mu);
};

LoadRunner::LoadRunner(const Options& options,
                       std::unique_ptr<tensorflow::serving::PredictionService::Stub> stub,
                       tensorflow::serving::PredictRequest request)
    : options_(options), stub_(std::move(stub)), request_(std::move(request)) {}

LoadRunner::LoadRunner(const Options& options,
                       std::unique_ptr<tensorflow::serving::ModelService::Stub> stub,
                       tensorflow::serving::GetModelStatusRequest request)
    : options_(options), status_stub_(std::move(stub)), status_request_(std::move(request)) {}

LoadRunner::~LoadRunner() = default;

void LoadRunner::Send(const std::shared_ptr<Phase>& phase) {
  auto* call = new Call;
  call->sent = Clock::now();
  call->context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoMicroseconds(options_.timeout));
  auto on_answer = [this, phase, call](grpc::Status status) { OnAnswer(phase, call, status); };
  if (stub_ != nullptr) {
    stub_->async()->Predict(&call->context, &request_, &call->response, std::move(on_answer));
  } else {
    status_stub_->async()->GetModelStatus(&call->context, &status_request_, &call->status_response,
                                          std::move(on_answer));
  }
}

void LoadRunner::OnAnswer(const std::shared_ptr<Phase>& phase, Call* call,
                          const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - call->sent).count();
  delete call;
  {
    absl::MutexLock lock(&phase->mu);
    phase->last_answer = std::max(phase->last_answer, now);
    if (status.ok()) {
      ++phase->result.ok;
      phase->result.ok_latencies.push_back(seconds);
    } else {
      ++phase->result
            .errors[absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))];
    }
  }
  // Closed loop: this answer's slot sends the next call until the phase stops.
  if (phase->closed_loop && !phase->stop.load(std::memory_order_acquire)) {
    Send(phase);
    return;
  }
  absl::MutexLock lock(&phase->mu);
  --phase->outstanding;
}

PhaseResult LoadRunner::Finish(Phase& phase) {
  absl::MutexLock lock(&phase.mu);
  phase.mu.Await(absl::Condition(
      +[](int64_t* outstanding) { return *outstanding == 0; }, &phase.outstanding));
  PhaseResult result = std::move(phase.result);
  result.elapsed_seconds =
      std::max(0.0, std::chrono::duration<double>(phase.last_answer - phase.start).count());
  return result;
}

PhaseResult LoadRunner::RunClosedLoop(int64_t concurrency, absl::Duration duration) {
  auto phase = std::make_shared<Phase>();
  phase->closed_loop = true;
  const Clock::time_point start = Clock::now();
  {
    absl::MutexLock lock(&phase->mu);
    phase->outstanding = concurrency;
    phase->start = phase->last_answer = start;
  }
  for (int64_t i = 0; i < concurrency; ++i) Send(phase);
  std::this_thread::sleep_until(start + absl::ToChronoNanoseconds(duration));
  phase->stop.store(true, std::memory_order_release);
  return Finish(*phase);
}

PhaseResult LoadRunner::RunOpenLoop(double requests_per_second, absl::Duration duration,
                                    uint64_t seed) {
  auto phase = std::make_shared<Phase>();
  const Clock::time_point start = Clock::now();
  {
    absl::MutexLock lock(&phase->mu);
    phase->start = phase->last_answer = start;
  }
  const Clock::time_point end = start + absl::ToChronoNanoseconds(duration);
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(requests_per_second);
  Clock::time_point next = start;
  int64_t late = 0;
  while (true) {
    next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    if (next >= end) break;
    std::this_thread::sleep_until(next);
    if (Clock::now() - next > std::chrono::milliseconds(1)) ++late;
    {
      absl::MutexLock lock(&phase->mu);
      ++phase->outstanding;
    }
    Send(phase);
  }
  PhaseResult result = Finish(*phase);
  result.late_sends = late;
  return result;
}

}  // namespace octet::bench
