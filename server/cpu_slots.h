// CpuSlots: the process's CPU budget, shared at run time by every loaded model version.
//
// Each version plans workers x threads within the whole budget (cpu_budget.h), so several models
// busy at once would run more threads than there are CPUs, and oversubscribed OpenMP teams stall
// each other at every barrier. Instead, a batch takes one slot per intra-op thread of its worker
// before it runs and returns them after: the threads running at once never exceed the budget,
// one busy model still gets every CPU, and busy models take turns batch by batch. Waiters are
// served in arrival order, so a wide worker is not starved by narrow ones.
#ifndef OCTET_SERVER_CPU_SLOTS_H_
#define OCTET_SERVER_CPU_SLOTS_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace octet::server {

class CpuSlots {
 public:
  // `slots` >= 1 (values below are raised to 1).
  explicit CpuSlots(int slots);

  // Blocks until `n` slots (clamped to [1, slots()]) are free and every earlier caller has been
  // served, then takes them.
  void Acquire(int n);
  // Returns what Acquire(n) took (same n).
  void Release(int n);

  int slots() const { return slots_; }
  int in_use() const;
  // Callers blocked in Acquire().
  int waiting() const;

  // Holds `n` slots for its lifetime; a null `slots` holds nothing.
  class Lease {
   public:
    Lease(CpuSlots* slots, int n) : slots_(slots), n_(n) {
      if (slots_ != nullptr) slots_->Acquire(n_);
    }
    ~Lease() {
      if (slots_ != nullptr) slots_->Release(n_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    CpuSlots* const slots_;
    const int n_;
  };

 private:
  int Clamp(int n) const;

  const int slots_;
  mutable absl::Mutex mu_;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;     // handed to the next caller
  uint64_t serving_ticket_ ABSL_GUARDED_BY(mu_) = 0;  // the caller whose turn it is
};

}  // namespace octet::server

#endif  // OCTET_SERVER_CPU_SLOTS_H_
