#include "deploy/bench/load_runner.h"

#include <atomic>
#include <random>
#include <thread>

#include "absl/status/status.h"

namespace octet::bench {

struct LoadRunner::Call {
  grpc::ClientContext context;
  std::shared_ptr<Phase> phase;
  Clock::time_point sent;
  grpc::Status status;
  tensorflow::serving::PredictResponse response;
  tensorflow::serving::GetModelStatusResponse status_response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tensorflow::serving::PredictResponse>> reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<tensorflow::serving::GetModelStatusResponse>>
      status_reader;
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
    : options_(options), stub_(std::move(stub)), request_(std::move(request)) {
  cq_thread_ = std::thread([this] { DrainQueue(); });
}

LoadRunner::LoadRunner(const Options& options,
                       std::unique_ptr<tensorflow::serving::ModelService::Stub> stub,
                       tensorflow::serving::GetModelStatusRequest request)
    : options_(options), status_stub_(std::move(stub)), status_request_(std::move(request)) {
  cq_thread_ = std::thread([this] { DrainQueue(); });
}

LoadRunner::~LoadRunner() {
  cq_.Shutdown();
  cq_thread_.join();
}

void LoadRunner::DrainQueue() {
  void* tag;
  bool ok;
  // `ok` is always true for a unary call's Finish; the outcome is in the call's status.
  while (cq_.Next(&tag, &ok)) OnAnswer(static_cast<Call*>(tag));
}

void LoadRunner::Send(const std::shared_ptr<Phase>& phase) {
  auto* call = new Call;
  call->phase = phase;
  call->sent = Clock::now();
  call->context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoMicroseconds(options_.timeout));
  if (stub_ != nullptr) {
    call->reader = stub_->AsyncPredict(&call->context, request_, &cq_);
    call->reader->Finish(&call->response, &call->status, call);
  } else {
    call->status_reader = status_stub_->AsyncGetModelStatus(&call->context, status_request_, &cq_);
    call->status_reader->Finish(&call->status_response, &call->status, call);
  }
}

void LoadRunner::OnAnswer(Call* call) {
  const Clock::time_point now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - call->sent).count();
  const std::shared_ptr<Phase> phase = std::move(call->phase);
  const grpc::Status status = std::move(call->status);
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
