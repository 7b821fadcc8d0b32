#include "server/worker_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace octet::server {

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(
    const Options& options, std::shared_ptr<const Servable> servable) {
  if (servable == nullptr) return absl::InvalidArgumentError("no servable");
  if (options.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_workers must be >= 1, got ", options.num_workers));
  }
  if (options.threads_per_worker < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads_per_worker must be >= 1, got ", options.threads_per_worker));
  }
  if (options.max_cached_plans < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_cached_plans must be >= 1, got ", options.max_cached_plans));
  }
  if (options.cpu_budget > 0 &&
      options.num_workers * options.threads_per_worker > options.cpu_budget) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.num_workers, " workers x ", options.threads_per_worker,
                     " threads oversubscribe the CPU budget of ", options.cpu_budget, " CPUs"));
  }
  std::unique_ptr<WorkerPool> pool(new WorkerPool(options, std::move(servable)));
  RunnerOptions runner_options;
  runner_options.num_threads = options.threads_per_worker;
  runner_options.max_cached_plans = options.max_cached_plans;
  for (int i = 0; i < options.num_workers; ++i) {
    absl::StatusOr<std::unique_ptr<Runner>> runner = pool->servable_->CreateRunner(runner_options);
    if (!runner.ok()) {
      return absl::Status(runner.status().code(),
                          absl::StrCat("worker ", i, ": ", runner.status().message()));
    }
    pool->runners_.push_back(std::move(runner).value());
  }
  return pool;
}

absl::StatusOr<std::vector<Tensor>> WorkerPool::Run(int worker, absl::Span<const Tensor> inputs) {
  if (worker < 0 || worker >= num_workers()) {
    return absl::InternalError(absl::StrCat("no worker ", worker));
  }
  return runners_[static_cast<size_t>(worker)]->Run(inputs);
}

absl::Status WorkerPool::WarmUp(int64_t rows) {
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : servable_->inputs()) {
    Shape shape = spec.dims;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] >= 0) continue;
      if (d != 0) return absl::OkStatus();  // unknown non-batch size: nothing sensible to run
      shape[d] = rows;
    }
    inputs.push_back(Tensor::Zeros(spec.dtype, shape));
  }
  for (int i = 0; i < num_workers(); ++i) {
    absl::StatusOr<std::vector<Tensor>> out = Run(i, inputs);
    if (!out.ok()) {
      return absl::Status(out.status().code(),
                          absl::StrCat("warm-up failed: ", out.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace octet::server
