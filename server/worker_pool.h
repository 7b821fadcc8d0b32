// WorkerPool: the execution side of one model version. Worker i owns runner i (its own execution
// context and intra-op threads) and is driven by batch thread i of the version's Batcher, so a
// runner is never used by two threads at once. workers x threads_per_worker is checked against
// the process's CPU budget (cpu_budget.h): oversubscribed OpenMP teams destroy throughput.
#ifndef OCTET_SERVER_WORKER_POOL_H_
#define OCTET_SERVER_WORKER_POOL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/servable.h"

namespace octet::server {

class WorkerPool {
 public:
  struct Options {
    // Workers, each with its own runner. >= 1.
    int num_workers = 1;
    // Intra-op threads per worker. >= 1.
    int threads_per_worker = 1;
    // CPUs this process may use; Create() refuses workers x threads above it. 0 = unchecked.
    int cpu_budget = 0;
    // Execution plans cached per runner (one per distinct batch size). >= 1.
    int max_cached_plans = 16;
  };

  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(
      const Options& options, std::shared_ptr<const Servable> servable);

  // Runs `inputs` on worker `worker`. Each worker must be used by one thread at a time.
  absl::StatusOr<std::vector<Tensor>> Run(int worker, absl::Span<const Tensor> inputs);

  // Runs every worker once on zero inputs of `rows` rows so that first requests do not pay for
  // plan creation. Skipped (OK) when an input has a symbolic dimension other than the first.
  absl::Status WarmUp(int64_t rows = 1);

  int num_workers() const { return static_cast<int>(runners_.size()); }
  int threads_per_worker() const { return options_.threads_per_worker; }
  const Servable& servable() const { return *servable_; }

 private:
  WorkerPool(const Options& options, std::shared_ptr<const Servable> servable)
      : options_(options), servable_(std::move(servable)) {}

  const Options options_;
  const std::shared_ptr<const Servable> servable_;
  std::vector<std::unique_ptr<Runner>> runners_;
};

}  // namespace octet::server

#endif  // OCTET_SERVER_WORKER_POOL_H_
