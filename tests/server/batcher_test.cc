// Batcher tests. Time is a FakeClock: a test waits (FakeClock::BlockUntilWaiters) until the batch
// thread has decided to sleep until a given instant, checks nothing ran, then advances time.
#include "server/batcher.h"

#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/batch_tensors.h"

namespace octet::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TestRequest : public BatchRequest {
 public:
  TestRequest(int64_t rows, absl::Time deadline = absl::InfiniteFuture(), std::string key = "")
      : BatchRequest(rows, deadline, std::move(key)) {}
  absl::Status Wait() {
    done_.WaitForNotification();
    return status_;
  }
  bool done() const { return done_.HasBeenNotified(); }
  int done_calls() const { return done_calls_.load(); }

 protected:
  void Done(absl::Status status) override {
    status_ = std::move(status);
    done_calls_.fetch_add(1);
    done_.Notify();
  }

 private:
  absl::Status status_;
  std::atomic<int> done_calls_{0};
  absl::Notification done_;
};

// Records every batch it is handed: (request, row_begin, rows) per task.
struct Recorder {
  struct Piece {
    const BatchRequest* request;
    int64_t row_begin;
    int64_t rows;
  };
  absl::Mutex mu;
  std::vector<std::vector<Piece>> batches ABSL_GUARDED_BY(mu);
  absl::Status result = absl::OkStatus();

  Batcher::BatchCallback Callback() {
    return [this](int, const Batch& batch) {
      std::vector<Piece> pieces;
      int64_t rows = 0;
      for (const BatchTask& t : batch.tasks) {
        pieces.push_back({t.request.get(), t.row_begin, t.rows});
        rows += t.rows;
      }
      EXPECT_EQ(rows, batch.rows);
      absl::MutexLock lock(&mu);
      batches.push_back(std::move(pieces));
      return result;
    };
  }
  size_t num_batches() {
    absl::MutexLock lock(&mu);
    return batches.size();
  }
  std::vector<int64_t> batch_rows() {
    absl::MutexLock lock(&mu);
    std::vector<int64_t> out;
    for (const auto& b : batches) {
      int64_t n = 0;
      for (const Piece& p : b) n += p.rows;
      out.push_back(n);
    }
    return out;
  }
};

class BatcherTest : public ::testing::Test {
 protected:
  std::unique_ptr<Batcher> Make(int64_t max_batch, int64_t delay_micros, int64_t max_queue = 64,
                                int threads = 1) {
    Batcher::Options options;
    options.max_batch_size = max_batch;
    options.max_queue_delay_micros = delay_micros;
    options.max_queue_size = max_queue;
    options.num_batch_threads = threads;
    options.clock = &clock_;
    auto batcher = Batcher::Create(options, recorder_.Callback());
    EXPECT_TRUE(batcher.ok()) << batcher.status();
    return std::move(batcher).value();
  }
  // The batch thread is idle, waiting for work.
  void WaitIdle(int threads = 1) { clock_.BlockUntilWaiters(threads, absl::InfiniteFuture()); }

  FakeClock clock_;
  Recorder recorder_;
};

TEST_F(BatcherTest, CreateValidatesOptions) {
  Batcher::Options ok;
  auto cb = recorder_.Callback();
  EXPECT_TRUE(Batcher::Create(ok, cb).ok());
  Batcher::Options o = ok;
  o.max_batch_size = 0;
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("max_batch_size"));
  o = ok;
  o.max_queue_delay_micros = -1;
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("max_queue_delay_micros"));
  o = ok;
  o.max_queue_size = o.max_batch_size - 1;
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("max_queue_size"));
  o = ok;
  o.num_batch_threads = 0;
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("num_batch_threads"));
  EXPECT_EQ(Batcher::Create(ok, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BatcherTest, FullBatchRunsWithoutWaitingForTheDelay) {
  auto batcher = Make(/*max_batch=*/4, /*delay=*/1'000'000);
  std::vector<std::shared_ptr<TestRequest>> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(std::make_shared<TestRequest>(1));
    ASSERT_TRUE(batcher->Submit(requests.back()).ok());
  }
  for (auto& r : requests) EXPECT_TRUE(r->Wait().ok());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(4));
}

TEST_F(BatcherTest, PartialBatchWaitsForTheQueueDelay) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/1000);
  const absl::Time t0 = clock_.Now();
  auto a = std::make_shared<TestRequest>(2);
  auto b = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  clock_.Advance(absl::Microseconds(400));
  ASSERT_TRUE(batcher->Submit(b).ok());
  // The thread sleeps until the oldest request has waited the full delay.
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(1000));
  EXPECT_EQ(recorder_.num_batches(), 0u);
  EXPECT_EQ(batcher->queued_rows(), 5);
  clock_.Advance(absl::Microseconds(599));
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(1000));
  EXPECT_EQ(recorder_.num_batches(), 0u);
  clock_.Advance(absl::Microseconds(1));
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_TRUE(b->Wait().ok());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(5));
  EXPECT_EQ(batcher->queued_rows(), 0);
}

TEST_F(BatcherTest, ZeroDelayRunsWhatIsQueued) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/0);
  auto a = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(3));
}

TEST_F(BatcherTest, IdleBatcherDispatchesAtOnceWhenAsked) {
  Batcher::Options options;
  options.max_batch_size = 8;
  options.max_queue_delay_micros = 1'000'000;
  options.dispatch_when_idle = true;
  options.clock = &clock_;
  auto batcher = Batcher::Create(options, recorder_.Callback());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  // Nothing is executing: the partial batch runs without the clock moving.
  auto a = std::make_shared<TestRequest>(3);
  ASSERT_TRUE((*batcher)->Submit(a).ok());
  EXPECT_TRUE(a->Wait().ok());
  auto b = std::make_shared<TestRequest>(2);
  ASSERT_TRUE((*batcher)->Submit(b).ok());
  EXPECT_TRUE(b->Wait().ok());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(3, 2));
}

// Inline runs (run_inline_when_idle): the batcher and a callback that can hold a batch.
class InlineBatcherTest : public ::testing::Test {
 protected:
  struct Call {
    std::thread::id thread;
    int worker;
    int64_t rows;
  };

  std::unique_ptr<Batcher> Make(int64_t max_batch = 8, int64_t max_queue = 64, int threads = 1) {
    Batcher::Options options;
    options.max_batch_size = max_batch;
    options.max_queue_delay_micros = 1'000'000;
    options.max_queue_size = max_queue;
    options.num_batch_threads = threads;
    options.dispatch_when_idle = true;
    options.run_inline_when_idle = true;
    options.max_inline_batch_micros = 1000;
    options.clock = &clock_;
    auto batcher = Batcher::Create(
        options, [this](int worker, const Batch& batch) { return Run(worker, batch); });
    EXPECT_TRUE(batcher.ok()) << batcher.status();
    return std::move(batcher).value();
  }

  absl::Status Run(int worker, const Batch& batch) {
    std::shared_ptr<absl::Notification> hold;
    absl::Duration takes;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back({std::this_thread::get_id(), worker, batch.rows});
      if (!busy_.insert(worker).second) ++overlaps_;  // a worker used by two threads at once
      ++running_;
      hold = std::move(hold_next_);
      takes = next_takes_;
      next_takes_ = absl::ZeroDuration();
    }
    if (hold != nullptr) hold->WaitForNotification();
    if (takes > absl::ZeroDuration()) clock_.Advance(takes);  // what the batch "took"
    absl::MutexLock lock(&mu_);
    busy_.erase(worker);
    --running_;
    return absl::OkStatus();
  }
  // The next batch blocks in the callback until the returned notification is notified.
  std::shared_ptr<absl::Notification> HoldNextBatch() {
    absl::MutexLock lock(&mu_);
    hold_next_ = std::make_shared<absl::Notification>();
    return hold_next_;
  }
  void WaitRunning(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == n; };
    mu_.Await(absl::Condition(&reached));
  }
  std::vector<Call> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  FakeClock clock_;
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::set<int> busy_ ABSL_GUARDED_BY(mu_);
  int overlaps_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<absl::Notification> hold_next_ ABSL_GUARDED_BY(mu_);
  absl::Duration next_takes_ ABSL_GUARDED_BY(mu_);
};

TEST_F(InlineBatcherTest, CreateNeedsDispatchWhenIdleAndAValidLimit) {
  Batcher::Options o;
  o.run_inline_when_idle = true;
  auto cb = [](int, const Batch&) { return absl::OkStatus(); };
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("dispatch_when_idle"));
  o.dispatch_when_idle = true;
  o.max_inline_batch_micros = -1;
  EXPECT_THAT(Batcher::Create(o, cb).status().message(), HasSubstr("max_inline_batch_micros"));
}

TEST_F(InlineBatcherTest, IdleRequestRunsOnTheSubmittingThreadBeforeSubmitReturns) {
  auto batcher = Make();
  auto a = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  EXPECT_TRUE(a->done());  // no clock advance, no other thread: it ran inside Submit
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_EQ(a->done_calls(), 1);
  ASSERT_EQ(calls().size(), 1u);
  EXPECT_EQ(calls()[0].thread, std::this_thread::get_id());
  EXPECT_EQ(calls()[0].worker, 0);
  EXPECT_EQ(calls()[0].rows, 3);
  EXPECT_EQ(batcher->inline_runs(), 1);
}

TEST_F(InlineBatcherTest, ExpiredOrCancelledRequestIsRefusedNotRun) {
  auto batcher = Make();
  auto expired = std::make_shared<TestRequest>(1, clock_.Now());
  EXPECT_EQ(batcher->Submit(expired).code(), absl::StatusCode::kDeadlineExceeded);
  auto cancelled = std::make_shared<TestRequest>(1);
  cancelled->Cancel();
  EXPECT_EQ(batcher->Submit(cancelled).code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(expired->done());
  EXPECT_FALSE(cancelled->done());
  EXPECT_TRUE(calls().empty());
  EXPECT_EQ(batcher->inline_runs(), 0);
}

TEST_F(InlineBatcherTest, BusyBatcherQueuesAndBatchesWhatArrivesMeanwhile) {
  auto batcher = Make(/*max_batch=*/8, /*max_queue=*/8);
  auto release = HoldNextBatch();
  auto first = std::make_shared<TestRequest>(1);
  std::thread submitter([&] { EXPECT_TRUE(batcher->Submit(first).ok()); });
  WaitRunning(1);  // `first` is executing inline on `submitter`
  // Busy: these queue (nothing else may use the only worker) and a full queue refuses.
  auto b = std::make_shared<TestRequest>(3);
  auto c = std::make_shared<TestRequest>(5);
  auto d = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(b).ok());
  ASSERT_TRUE(batcher->Submit(c).ok());
  EXPECT_EQ(batcher->Submit(d).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(b->done());
  release->Notify();
  submitter.join();
  EXPECT_TRUE(first->Wait().ok());
  EXPECT_TRUE(b->Wait().ok());
  EXPECT_TRUE(c->Wait().ok());
  std::vector<Call> all = calls();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].rows, 8);  // b and c in one batch, on the batch thread
  EXPECT_NE(all[1].thread, std::this_thread::get_id());
  EXPECT_EQ(batcher->inline_runs(), 1);
  // Requests had to queue: the next idle request still goes to the batch thread so that batches
  // can form under load; running alone with nothing behind it lets inline runs resume.
  auto e = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(e).ok());
  EXPECT_TRUE(e->Wait().ok());
  EXPECT_EQ(batcher->inline_runs(), 1);
  auto f = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(f).ok());
  EXPECT_TRUE(f->done());
  EXPECT_EQ(batcher->inline_runs(), 2);
  all = calls();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_NE(all[2].thread, std::this_thread::get_id());
  EXPECT_EQ(all[3].thread, std::this_thread::get_id());
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(overlaps_, 0);
}

TEST_F(InlineBatcherTest, OversizeRequestIsSplitByTheBatchThreads) {
  auto batcher = Make(/*max_batch=*/4);
  auto big = std::make_shared<TestRequest>(10);
  ASSERT_TRUE(batcher->Submit(big).ok());
  EXPECT_TRUE(big->Wait().ok());
  EXPECT_EQ(big->done_calls(), 1);
  EXPECT_EQ(batcher->inline_runs(), 0);
  for (const Call& call : calls()) EXPECT_NE(call.thread, std::this_thread::get_id());
}

TEST_F(InlineBatcherTest, SlowBatchStopsInlineRuns) {
  auto batcher = Make();
  {
    absl::MutexLock lock(&mu_);
    next_takes_ = absl::Microseconds(1001);  // over max_inline_batch_micros
  }
  auto slow = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(slow).ok());
  EXPECT_TRUE(slow->done());
  auto next = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(next).ok());  // handed to the batch thread, idle: runs at once
  EXPECT_TRUE(next->Wait().ok());
  EXPECT_EQ(batcher->inline_runs(), 1);
  ASSERT_EQ(calls().size(), 2u);
  EXPECT_NE(calls()[1].thread, std::this_thread::get_id());
  // A fast batch on the batch thread makes the batcher run inline again.
  auto fast = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(fast).ok());
  EXPECT_TRUE(fast->done());
  EXPECT_EQ(batcher->inline_runs(), 2);
}

TEST_F(InlineBatcherTest, TwoWorkersAreNeverSharedUnderConcurrentLoad) {
  auto batcher = Make(/*max_batch=*/4, /*max_queue=*/100000, /*threads=*/2);
  constexpr int kClients = 8;
  constexpr int kRequests = 200;
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kRequests; ++i) {
        auto r = std::make_shared<TestRequest>(1 + (c + i) % 3);
        if (!batcher->Submit(r).ok() || !r->Wait().ok() || r->done_calls() != 1) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(overlaps_, 0);
  for (const Call& call : calls_) {
    EXPECT_GE(call.worker, 0);
    EXPECT_LT(call.worker, 2);
  }
}

TEST_F(BatcherTest, QueueFullIsUnavailableAndCountsRows) {
  auto batcher = Make(/*max_batch=*/4, /*delay=*/1'000'000, /*max_queue=*/4);
  auto a = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  auto b = std::make_shared<TestRequest>(2);
  absl::Status st = batcher->Submit(b);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("queue full"));
  auto c = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(c).ok());  // exactly fills the queue and the batch
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_TRUE(c->Wait().ok());
  EXPECT_FALSE(b->done());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(4));
}

TEST_F(BatcherTest, ExpiredRequestIsNeverExecuted) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/1000);
  const absl::Time t0 = clock_.Now();
  auto doomed = std::make_shared<TestRequest>(1, t0 + absl::Microseconds(100));
  auto patient = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(doomed).ok());
  ASSERT_TRUE(batcher->Submit(patient).ok());
  // The thread wakes at the earliest deadline, before the batch is due.
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(100));
  clock_.Advance(absl::Microseconds(100));
  EXPECT_EQ(doomed->Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(recorder_.num_batches(), 0u);
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(1000));
  clock_.Advance(absl::Microseconds(900));
  EXPECT_TRUE(patient->Wait().ok());
  absl::MutexLock lock(&recorder_.mu);
  ASSERT_EQ(recorder_.batches.size(), 1u);
  ASSERT_EQ(recorder_.batches[0].size(), 1u);
  EXPECT_EQ(recorder_.batches[0][0].request, patient.get());
}

TEST_F(BatcherTest, AlreadyExpiredRequestIsRefused) {
  auto batcher = Make(8, 1000);
  auto r = std::make_shared<TestRequest>(1, clock_.Now());
  EXPECT_EQ(batcher->Submit(r).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(r->done());
}

TEST_F(BatcherTest, CancelledRequestIsDroppedWithoutExecution) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/1000);
  const absl::Time t0 = clock_.Now();
  auto r = std::make_shared<TestRequest>(2);
  ASSERT_TRUE(batcher->Submit(r).ok());
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(1000));
  r->Cancel();
  clock_.Advance(absl::Microseconds(1000));
  EXPECT_EQ(r->Wait().code(), absl::StatusCode::kCancelled);
  WaitIdle();
  EXPECT_EQ(recorder_.num_batches(), 0u);
  EXPECT_EQ(batcher->queued_rows(), 0);
}

TEST_F(BatcherTest, OversizeRequestIsSplitAndCompletesOnce) {
  auto batcher = Make(/*max_batch=*/4, /*delay=*/0);
  auto big = std::make_shared<TestRequest>(10);
  ASSERT_TRUE(batcher->Submit(big).ok());
  EXPECT_TRUE(big->Wait().ok());
  WaitIdle();
  EXPECT_EQ(big->done_calls(), 1);
  absl::MutexLock lock(&recorder_.mu);
  std::vector<std::pair<int64_t, int64_t>> pieces;
  for (const auto& b : recorder_.batches) {
    for (const auto& p : b) pieces.emplace_back(p.row_begin, p.rows);
  }
  EXPECT_THAT(pieces,
              ElementsAre(std::pair<int64_t, int64_t>{0, 4}, std::pair<int64_t, int64_t>{4, 4},
                          std::pair<int64_t, int64_t>{8, 2}));
}

TEST_F(BatcherTest, BatchesNeverMixKeys) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/1000);
  const absl::Time t0 = clock_.Now();
  auto a1 = std::make_shared<TestRequest>(1, absl::InfiniteFuture(), "a");
  auto b1 = std::make_shared<TestRequest>(1, absl::InfiniteFuture(), "b");
  auto a2 = std::make_shared<TestRequest>(1, absl::InfiniteFuture(), "a");
  for (auto& r : {a1, b1, a2}) ASSERT_TRUE(batcher->Submit(r).ok());
  clock_.BlockUntilWaiters(1, t0 + absl::Microseconds(1000));
  clock_.Advance(absl::Microseconds(1000));
  for (auto& r : {a1, b1, a2}) EXPECT_TRUE(r->Wait().ok());
  absl::MutexLock lock(&recorder_.mu);
  ASSERT_EQ(recorder_.batches.size(), 2u);
  ASSERT_EQ(recorder_.batches[0].size(), 2u);
  EXPECT_EQ(recorder_.batches[0][0].request, a1.get());
  EXPECT_EQ(recorder_.batches[0][1].request, a2.get());
  ASSERT_EQ(recorder_.batches[1].size(), 1u);
  EXPECT_EQ(recorder_.batches[1][0].request, b1.get());
}

TEST_F(BatcherTest, CallbackErrorFailsEveryRequestInTheBatch) {
  recorder_.result = absl::InternalError("boom");
  auto batcher = Make(/*max_batch=*/2, /*delay=*/1'000'000);
  auto a = std::make_shared<TestRequest>(1);
  auto b = std::make_shared<TestRequest>(1);
  ASSERT_TRUE(batcher->Submit(a).ok());
  ASSERT_TRUE(batcher->Submit(b).ok());
  EXPECT_EQ(a->Wait().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(b->Wait().code(), absl::StatusCode::kInternal);
}

TEST_F(BatcherTest, DestructionRunsQueuedWorkAndThenRefuses) {
  auto batcher = Make(/*max_batch=*/8, /*delay=*/1'000'000);
  auto a = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  batcher.reset();  // no clock advance: shutdown flushes the partial batch
  EXPECT_TRUE(a->Wait().ok());
  EXPECT_THAT(recorder_.batch_rows(), ElementsAre(3));
}

TEST_F(BatcherTest, QueueDepthObserverSeesEveryChange) {
  std::vector<int64_t> depths;
  Batcher::Options options;
  options.max_batch_size = 4;
  options.max_queue_delay_micros = 1'000'000;
  options.clock = &clock_;
  options.on_queue_depth = [&depths](int64_t rows) { depths.push_back(rows); };
  auto batcher = Batcher::Create(options, recorder_.Callback()).value();
  auto a = std::make_shared<TestRequest>(1);
  auto b = std::make_shared<TestRequest>(3);
  ASSERT_TRUE(batcher->Submit(a).ok());
  ASSERT_TRUE(batcher->Submit(b).ok());
  EXPECT_TRUE(b->Wait().ok());
  batcher.reset();
  EXPECT_THAT(depths, ElementsAre(1, 4, 0));
}

// A request that carries a tensor and gets back its rows times two, through ConcatRows/CopyRows
// exactly as the server does it. Many threads, random sizes: every request must get its own rows.
class TensorRequest : public TestRequest {
 public:
  explicit TensorRequest(Tensor input)
      : TestRequest(input.dim(0)),
        input(std::move(input)),
        output(Tensor::Zeros(DType::kF32, this->input.shape())) {}
  Tensor input;
  Tensor output;
};

TEST(BatcherConcurrencyTest, ConcatenatesAndSplitsBackWithoutCrossTalk) {
  std::atomic<int> multi_request_batches{0};
  auto callback = [&](int, const Batch& batch) -> absl::Status {
    std::vector<RowSlice> slices;
    for (const BatchTask& t : batch.tasks) {
      slices.push_back({&static_cast<TensorRequest*>(t.request.get())->input, t.row_begin, t.rows});
    }
    if (batch.tasks.size() > 1) multi_request_batches.fetch_add(1);
    absl::StatusOr<Tensor> in = ConcatRows(slices);
    if (!in.ok()) return in.status();
    Tensor out = Tensor::Zeros(DType::kF32, in->shape());
    for (int64_t i = 0; i < in->num_elements(); ++i) {
      out.data_as<float>()[i] = 2.0f * in->data_as<float>()[i];
    }
    int64_t offset = 0;
    for (const BatchTask& t : batch.tasks) {
      auto* r = static_cast<TensorRequest*>(t.request.get());
      if (absl::Status s = CopyRows(out, offset, t.rows, r->output, t.row_begin); !s.ok()) return s;
      offset += t.rows;
    }
    return absl::OkStatus();
  };
  Batcher::Options options;
  options.max_batch_size = 8;
  options.max_queue_delay_micros = 2000;
  options.max_queue_size = 100000;
  options.num_batch_threads = 2;
  auto batcher = Batcher::Create(options, callback).value();

  constexpr int kClients = 16;
  constexpr int kRequestsPerClient = 50;
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kRequestsPerClient; ++i) {
        const int64_t rows = 1 + (c * 7 + i * 3) % 11;  // 1..11, some over max_batch_size
        std::vector<float> values(static_cast<size_t>(rows * 3));
        for (size_t k = 0; k < values.size(); ++k) values[k] = float(c * 100000 + i * 100 + k);
        auto r = std::make_shared<TensorRequest>(Tensor::FromFloats({rows, 3}, values));
        if (!batcher->Submit(r).ok() || !r->Wait().ok()) {
          failures.fetch_add(1);
          continue;
        }
        for (size_t k = 0; k < values.size(); ++k) {
          if (r->output.data_as<float>()[k] != 2.0f * values[k]) {
            failures.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(multi_request_batches.load(), 0);
}

}  // namespace
}  // namespace octet::server
