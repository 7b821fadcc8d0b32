// Batcher: groups concurrent requests into batches and hands each batch to a callback on one of
// its batch threads, in the style of TF Serving's batching library. It never sees a model or a
// tensor: a request is a number of rows (examples along the first dimension), a deadline and a
// completion callback; the callback does the concatenation, execution and splitting.
//
//  - A request with more rows than max_batch_size is split into pieces of at most max_batch_size
//    rows; the pieces are batched independently and the request completes once all are done.
//  - Requests are only batched with requests of the same batch_key (e.g. the same non-batch
//    input dimensions), oldest first.
//  - A queued request whose deadline has passed is dropped with DEADLINE_EXCEEDED and never
//    executed; a cancelled one is dropped with CANCELLED.
//  - A request that would push the queue past max_queue_size rows is refused at once with
//    UNAVAILABLE "queue full".
//  - Optionally (run_inline_when_idle) an idle batcher runs a request on the submitting thread:
//    same batch, same callback, same worker exclusivity, no hand-off to a batch thread.
#ifndef OCTET_SERVER_BATCHER_H_
#define OCTET_SERVER_BATCHER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/clock.h"

namespace octet::server {

// One client request as the batcher sees it. Subclass it to carry the payload; the batch
// callback downcasts the requests it is handed.
class BatchRequest {
 public:
  // `rows` >= 1. `batch_key`: only requests with equal keys are batched together.
  BatchRequest(int64_t rows, absl::Time deadline, std::string batch_key = "");
  virtual ~BatchRequest() = default;
  BatchRequest(const BatchRequest&) = delete;
  BatchRequest& operator=(const BatchRequest&) = delete;

  int64_t rows() const { return rows_; }
  absl::Time deadline() const { return deadline_; }
  const std::string& batch_key() const { return batch_key_; }

  // Thread-safe, idempotent. Pieces still queued are dropped; pieces already running finish.
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 protected:
  // Called exactly once (on a batch thread) after every piece ran or was dropped, with OK or the
  // first error. Not called when Batcher::Submit() returned an error.
  virtual void Done(absl::Status status) = 0;

 private:
  friend class Batcher;
  // Records the outcome of one piece; calls Done() after the last one.
  void PieceDone(const absl::Status& status);
  bool failed() const { return failed_.load(std::memory_order_relaxed); }

  const int64_t rows_;
  const absl::Time deadline_;
  const std::string batch_key_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> failed_{false};
  absl::Mutex mu_;
  int64_t pending_pieces_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// A contiguous range of one request's rows, executed as part of a batch.
struct BatchTask {
  std::shared_ptr<BatchRequest> request;
  int64_t row_begin = 0;  // first row of the request in this piece
  int64_t rows = 0;
  absl::Time enqueue_time;
};

struct Batch {
  std::vector<BatchTask> tasks;  // in queue order; their rows are concatenated in this order
  int64_t rows = 0;              // sum of tasks[i].rows, <= max_batch_size
  absl::Time start_time;         // when the batch was formed (end of queueing)
};

class Batcher {
 public:
  struct Options {
    // Most rows executed in one batch; larger requests are split into pieces of this size. >= 1.
    int64_t max_batch_size = 32;
    // Longest the oldest queued piece waits for more rows before a partial batch is run, in
    // microseconds. 0 = run whatever is queued as soon as a batch thread is free. >= 0.
    int64_t max_queue_delay_micros = 500;
    // Most rows (not requests) queued and not yet executing. Rows, because a 100-row request costs
    // 100 times a 1-row one. A request that does not fit is refused UNAVAILABLE. >= max_batch_size.
    int64_t max_queue_size = 1024;
    // When no batch is executing, form one from whatever is queued at once instead of waiting
    // for the delay (requests arriving while a batch runs still accumulate). false = always wait.
    bool dispatch_when_idle = false;
    // With dispatch_when_idle: when nothing is queued or executing, Submit() runs a request that
    // fits in one batch on the calling thread (the RPC thread) instead of waking a batch thread
    // for it and being woken back: two thread hand-offs fewer per request at low load. The
    // request then completes (Done) before Submit() returns. Under load this would stop batches
    // from forming (an RPC thread busy with one request reads no other), so once a request has
    // to queue, inline runs pause until a batch thread runs a request alone with nothing queued
    // behind it. false = always hand off.
    bool run_inline_when_idle = false;
    // ...but only while the batch that finished last took at most this long in the callback, in
    // microseconds: a slow model must not hold RPC threads, and saves nothing from it. >= 0.
    int64_t max_inline_batch_micros = 1000;
    // Most pieces in one batch; 1 turns batching off (each piece runs alone). 0 = no limit.
    int64_t max_tasks_per_batch = 0;
    // Threads that form batches and run the callback. Also the number of workers: every running
    // callback holds one worker index in [0, num_batch_threads) that no other holds. >= 1.
    int num_batch_threads = 1;
    // Time source; nullptr = RealClock(). Not owned; must outlive the batcher.
    Clock* clock = nullptr;
    // Called with the queued row count whenever it changes, under the batcher's lock: it must be
    // cheap and must not call back into the batcher (meant for a queue-depth gauge). Optional.
    std::function<void(int64_t queued_rows)> on_queue_depth = nullptr;
  };

  // Runs one batch on worker `worker` (no other running callback has the same index), on a batch
  // thread or, inline, on the thread that called Submit(). The returned status becomes the
  // outcome of every task in the batch. Requests complete (Done) after the callback returns.
  using BatchCallback = std::function<absl::Status(int worker, const Batch& batch)>;

  static absl::StatusOr<std::unique_ptr<Batcher>> Create(const Options& options,
                                                         BatchCallback callback);
  // Stops accepting requests, runs everything still queued (without waiting for batches to
  // fill), then joins the batch threads.
  ~Batcher();

  // Queues `request`, or runs it at once on this thread (Options::run_inline_when_idle; Done is
  // then called before Submit returns). On error (UNAVAILABLE queue full or shutting down,
  // DEADLINE_EXCEEDED, INVALID_ARGUMENT) nothing is queued and request->Done() will not be called.
  absl::Status Submit(std::shared_ptr<BatchRequest> request);

  // Requests Submit() ran on the calling thread so far.
  int64_t inline_runs() const;

  int64_t queued_rows() const;
  const Options& options() const { return options_; }

 private:
  Batcher(const Options& options, BatchCallback callback);
  void ThreadLoop();
  // Removes expired, cancelled and failed pieces into `dropped` (with their status) and returns
  // the earliest deadline among those left.
  absl::Time SweepLocked(absl::Time now, std::vector<std::pair<BatchTask, absl::Status>>* dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the oldest piece and following pieces with the same key that fit into `batch`.
  void FormBatchLocked(absl::Time now, Batch* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetQueuedRowsLocked(int64_t rows) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs one batch on `worker` (taken by the caller), then returns the worker.
  absl::Status RunBatch(int worker, const Batch& batch);

  const Options options_;
  const BatchCallback callback_;
  Clock* const clock_;
  const absl::Duration max_delay_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<BatchTask> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_rows_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int executing_ ABSL_GUARDED_BY(mu_) = 0;  // batches inside the callback
  std::vector<int> free_workers_ ABSL_GUARDED_BY(mu_);
  absl::Duration last_batch_time_ ABSL_GUARDED_BY(mu_);  // callback time of the last batch
  int64_t inline_runs_ ABSL_GUARDED_BY(mu_) = 0;
  bool inline_paused_ ABSL_GUARDED_BY(mu_) = false;  // requests had to queue: let batches form
  std::vector<std::thread> threads_;
};

}  // namespace octet::server

#endif  // OCTET_SERVER_BATCHER_H_
