#include "server/cpu_slots.h"

#include <algorithm>

namespace octet::server {

CpuSlots::CpuSlots(int slots) : slots_(std::max(1, slots)) {}

int CpuSlots::Clamp(int n) const { return std::clamp(n, 1, slots_); }

void CpuSlots::Acquire(int n) {
  n = Clamp(n);
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  ++waiting_;
  auto turn = [this, ticket, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return serving_ticket_ == ticket && in_use_ + n <= slots_;
  };
  mu_.Await(absl::Condition(&turn));
  --waiting_;
  in_use_ += n;
  ++serving_ticket_;
}

void CpuSlots::Release(int n) {
  absl::MutexLock lock(&mu_);
  in_use_ -= Clamp(n);
}

int CpuSlots::in_use() const {
  absl::MutexLock lock(&mu_);
  return in_use_;
}

int CpuSlots::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace octet::server
