#include "server/batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace octet::server {

BatchRequest::BatchRequest(int64_t rows, absl::Time deadline, std::string batch_key)
    : rows_(rows), deadline_(deadline), batch_key_(std::move(batch_key)) {}

void BatchRequest::PieceDone(const absl::Status& status) {
  absl::Status final_status;
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok()) {
      failed_.store(true, std::memory_order_relaxed);
      if (status_.ok()) status_ = status;
    }
    if (--pending_pieces_ > 0) return;
    final_status = status_;
  }
  Done(std::move(final_status));
}

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(const Options& options,
                                                         BatchCallback callback) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size must be >= 1, got ", options.max_batch_size));
  }
  if (options.max_queue_delay_micros < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_delay_micros must be >= 0, got ", options.max_queue_delay_micros));
  }
  if (options.max_queue_size < options.max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("max_queue_size (", options.max_queue_size,
                                                   " rows) must be >= max_batch_size (",
                                                   options.max_batch_size, " rows)"));
  }
  if (options.num_batch_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_batch_threads must be >= 1, got ", options.num_batch_threads));
  }
  if (options.max_tasks_per_batch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tasks_per_batch must be >= 0, got ", options.max_tasks_per_batch));
  }
  if (options.max_inline_batch_micros < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_inline_batch_micros must be >= 0, got ",
                                                   options.max_inline_batch_micros));
  }
  if (options.run_inline_when_idle && !options.dispatch_when_idle) {
    return absl::InvalidArgumentError(
        "run_inline_when_idle needs dispatch_when_idle (it runs an idle server's request at once)");
  }
  if (!callback) return absl::InvalidArgumentError("the batch callback is empty");
  return std::unique_ptr<Batcher>(new Batcher(options, std::move(callback)));
}

Batcher::Batcher(const Options& options, BatchCallback callback)
    : options_(options),
      callback_(std::move(callback)),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      max_delay_(absl::Microseconds(options.max_queue_delay_micros)) {
  {
    absl::MutexLock lock(&mu_);
    // Popped from the back: worker 0 first, so that one busy thread keeps its caches warm.
    for (int i = options_.num_batch_threads - 1; i >= 0; --i) free_workers_.push_back(i);
  }
  threads_.reserve(options_.num_batch_threads);
  for (int i = 0; i < options_.num_batch_threads; ++i) {
    threads_.emplace_back([this] { ThreadLoop(); });
  }
}

Batcher::~Batcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
  // Inline runs happen on callers' threads: wait for them too.
  absl::MutexLock lock(&mu_);
  auto none_executing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return executing_ == 0; };
  mu_.Await(absl::Condition(&none_executing));
}

absl::Status Batcher::Submit(std::shared_ptr<BatchRequest> request) {
  if (request == nullptr) return absl::InvalidArgumentError("null request");
  const int64_t rows = request->rows();
  if (rows < 1) {
    return absl::InvalidArgumentError(absl::StrCat("a request needs >= 1 row, got ", rows));
  }
  const absl::Time now = clock_->Now();
  if (request->deadline() <= now) {
    return absl::DeadlineExceededError("deadline expired before the request was queued");
  }
  if (request->cancelled()) return absl::CancelledError("request cancelled before queueing");
  const int64_t max = options_.max_batch_size;
  {
    absl::MutexLock lock(&request->mu_);
    request->pending_pieces_ = (rows + max - 1) / max;
  }
  int worker = -1;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the batcher is shutting down");
    if (queued_rows_ + rows > options_.max_queue_size) {
      return absl::UnavailableError(absl::StrCat("queue full: ", queued_rows_,
                                                 " rows queued, limit ", options_.max_queue_size,
                                                 ", request has ", rows));
    }
    // Idle (nothing queued, nothing executing, so every worker is free): a batch thread would
    // form this one-piece batch at once; run it here instead of handing it over and back.
    const bool idle = queue_.empty() && executing_ == 0;
    if (!idle) inline_paused_ = true;  // load: requests meet each other, batches can form
    if (options_.run_inline_when_idle && idle && !inline_paused_ && rows <= max &&
        !free_workers_.empty() &&
        last_batch_time_ <= absl::Microseconds(options_.max_inline_batch_micros)) {
      worker = free_workers_.back();
      free_workers_.pop_back();
      ++executing_;
      ++inline_runs_;
    } else {
      for (int64_t begin = 0; begin < rows; begin += max) {
        queue_.push_back(BatchTask{request, begin, std::min(max, rows - begin), now});
      }
      SetQueuedRowsLocked(queued_rows_ + rows);
      cv_.Signal();
      return absl::OkStatus();
    }
  }
  Batch batch;
  batch.tasks.push_back(BatchTask{request, 0, rows, now});
  batch.rows = rows;
  batch.start_time = now;
  const absl::Status status = RunBatch(worker, batch);
  request->PieceDone(status);
  return absl::OkStatus();
}

absl::Status Batcher::RunBatch(int worker, const Batch& batch) {
  const absl::Time start = clock_->Now();
  const absl::Status status = callback_(worker, batch);
  const absl::Duration took = clock_->Now() - start;
  absl::MutexLock lock(&mu_);
  --executing_;  // before the tasks complete: their callers may submit again at once
  free_workers_.push_back(worker);
  last_batch_time_ = took;
  // A request that ran alone with nothing behind it: the load is gone, inline runs may resume.
  if (batch.tasks.size() == 1 && queue_.empty()) inline_paused_ = false;
  // A thread may be waiting for a free worker, or for the batcher to become idle.
  if (!queue_.empty()) cv_.Signal();
  return status;
}

int64_t Batcher::inline_runs() const {
  absl::MutexLock lock(&mu_);
  return inline_runs_;
}

int64_t Batcher::queued_rows() const {
  absl::MutexLock lock(&mu_);
  return queued_rows_;
}

void Batcher::SetQueuedRowsLocked(int64_t rows) {
  queued_rows_ = rows;
  if (options_.on_queue_depth) options_.on_queue_depth(rows);
}

absl::Time Batcher::SweepLocked(absl::Time now,
                                std::vector<std::pair<BatchTask, absl::Status>>* dropped) {
  auto drop_status = [now](const BatchTask& t) -> absl::Status {
    if (t.request->deadline() <= now) {
      return absl::DeadlineExceededError("deadline exceeded while queued");
    }
    if (t.request->cancelled()) return absl::CancelledError("request cancelled while queued");
    if (t.request->failed()) return absl::AbortedError("another piece of the request failed");
    return absl::OkStatus();
  };
  absl::Time earliest = absl::InfiniteFuture();
  std::deque<BatchTask> kept;
  bool any_dropped = false;
  for (size_t i = 0; i < queue_.size(); ++i) {
    absl::Status status = drop_status(queue_[i]);
    if (status.ok()) {
      earliest = std::min(earliest, queue_[i].request->deadline());
      if (any_dropped) kept.push_back(std::move(queue_[i]));
      continue;
    }
    if (!any_dropped) {
      // First drop: keep everything before it.
      any_dropped = true;
      for (size_t j = 0; j < i; ++j) kept.push_back(std::move(queue_[j]));
    }
    queued_rows_ -= queue_[i].rows;
    dropped->emplace_back(std::move(queue_[i]), std::move(status));
  }
  if (any_dropped) {
    queue_.swap(kept);
    SetQueuedRowsLocked(queued_rows_);
  }
  return earliest;
}

void Batcher::FormBatchLocked(absl::Time now, Batch* batch) {
  const std::string key = queue_.front().request->batch_key();
  const int64_t max = options_.max_batch_size;
  batch->start_time = now;
  batch->rows = 0;
  std::vector<bool> taken(queue_.size(), false);
  size_t prefix = 0;  // length of the run of taken tasks at the front
  bool key_closed = false;
  const size_t max_tasks = options_.max_tasks_per_batch > 0
                               ? static_cast<size_t>(options_.max_tasks_per_batch)
                               : queue_.size();
  for (size_t i = 0; i < queue_.size() && batch->rows < max && batch->tasks.size() < max_tasks;
       ++i) {
    const BatchTask& t = queue_[i];
    if (key_closed || t.request->batch_key() != key) continue;
    if (batch->rows + t.rows > max) {
      key_closed = true;  // keep FIFO order within a key: no overtaking
      continue;
    }
    batch->rows += t.rows;
    batch->tasks.push_back(t);
    taken[i] = true;
    if (prefix == i) ++prefix;
  }
  if (prefix == batch->tasks.size()) {
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(prefix));
  } else {
    std::deque<BatchTask> kept;
    for (size_t i = 0; i < queue_.size(); ++i) {
      if (!taken[i]) kept.push_back(std::move(queue_[i]));
    }
    queue_.swap(kept);
  }
  SetQueuedRowsLocked(queued_rows_ - batch->rows);
}

void Batcher::ThreadLoop() {
  bool exit = false;
  while (!exit) {
    Batch batch;
    int worker = -1;
    std::vector<std::pair<BatchTask, absl::Status>> dropped;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const absl::Time now = clock_->Now();
        const absl::Time earliest_deadline = SweepLocked(now, &dropped);
        if (!dropped.empty()) break;  // complete them outside the lock, then look again
        if (queue_.empty()) {
          if (stopping_) {
            exit = true;
            break;
          }
          clock_->WaitUntil(&mu_, &cv_, absl::InfiniteFuture());
          continue;
        }
        const absl::Time batch_due = queue_.front().enqueue_time + max_delay_;
        const bool idle = options_.dispatch_when_idle && executing_ == 0;
        const bool due =
            stopping_ || queued_rows_ >= options_.max_batch_size || now >= batch_due || idle;
        if (due && !free_workers_.empty()) {
          FormBatchLocked(now, &batch);
          if (!batch.tasks.empty()) {
            ++executing_;
            worker = free_workers_.back();
            free_workers_.pop_back();
          }
          if (!queue_.empty()) cv_.Signal();  // let another idle thread look at the rest
          break;
        }
        // Not due yet, or due while an inline run holds the last free worker (its end signals).
        clock_->WaitUntil(&mu_, &cv_,
                          due ? earliest_deadline : std::min(batch_due, earliest_deadline));
      }
    }
    for (auto& [task, status] : dropped) task.request->PieceDone(status);
    if (!batch.tasks.empty()) {
      const absl::Status status = RunBatch(worker, batch);
      for (const BatchTask& task : batch.tasks) task.request->PieceDone(status);
    }
  }
}

}  // namespace octet::server
