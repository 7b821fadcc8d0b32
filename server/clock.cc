#include "server/clock.h"

#include <algorithm>

namespace octet::server {
namespace {

class WallClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (deadline == absl::InfiniteFuture()) {
      cv->Wait(mu);
    } else {
      cv->WaitWithDeadline(mu, deadline);
    }
  }
};

}  // namespace

Clock* RealClock() {
  static WallClock* const clock = new WallClock();
  return clock;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeClock::WaitUntil(absl::Mutex* mu, absl::CondVar* cv, absl::Time deadline) {
  Waiter waiter{mu, cv, deadline};
  {
    absl::MutexLock lock(&mu_);
    if (now_ >= deadline) return;
    waiters_.push_back(&waiter);
  }
  // Advance() takes `mu` before signalling, and we hold `mu` from registration until Wait()
  // atomically releases it, so a wake-up cannot be lost in between.
  cv->Wait(mu);
  absl::MutexLock lock(&mu_);
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
}

void FakeClock::Advance(absl::Duration d) {
  std::vector<Waiter> to_wake;
  {
    absl::MutexLock lock(&mu_);
    now_ += d;
    for (Waiter* w : waiters_) {
      if (w->deadline <= now_) to_wake.push_back(*w);
    }
  }
  // Signal outside mu_: waiters take mu_ while holding their own mutex.
  for (const Waiter& w : to_wake) {
    absl::MutexLock lock(w.mu);
    w.cv->SignalAll();
  }
}

void FakeClock::BlockUntilWaiters(int count, absl::Time deadline) {
  auto enough = [this, count, deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::count_if(waiters_.begin(), waiters_.end(),
                         [deadline](const Waiter* w) { return w->deadline == deadline; }) >= count;
  };
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&enough));
}

}  // namespace octet::server
