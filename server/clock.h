// Clock: the time source of the batcher and the model repository, injected so that tests control
// time exactly (FakeClock) instead of sleeping.
#ifndef OCTET_SERVER_CLOCK_H_
#define OCTET_SERVER_CLOCK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace octet::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Blocks on `cv` (with `mu` held, released while waiting) until `cv` is signalled or Now()
  // reaches `deadline`. Spurious wake-ups are allowed: callers re-check their condition.
  virtual void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

// The wall clock. Stateless, so one shared instance is safe.
Clock* RealClock();

// A clock that only moves when told to. Threads waiting in WaitUntil wake when Advance() passes
// their deadline. A waiter's mutex and condvar must outlive any concurrent Advance().
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(1)) : now_(start) {}

  absl::Time Now() const override;
  void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  void Advance(absl::Duration d);
  // Blocks until at least `count` threads are inside WaitUntil with exactly this deadline
  // (absl::InfiniteFuture() for threads idle until signalled). Lets tests know a background
  // thread has reached a decision without sleeping.
  void BlockUntilWaiters(int count, absl::Time deadline);

 private:
  struct Waiter {
    absl::Mutex* mu;
    absl::CondVar* cv;
    absl::Time deadline;
  };
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace octet::server

#endif  // OCTET_SERVER_CLOCK_H_
