// LoadedVersion: one model version being served: its servable, worker pool and batcher, and the
// batch callback that concatenates requests, runs them on a worker and splits the outputs back.
#ifndef OCTET_SERVER_LOADED_VERSION_H_
#define OCTET_SERVER_LOADED_VERSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "octet/model_config.pb.h"
#include "server/batcher.h"
#include "server/clock.h"
#include "server/cpu_slots.h"
#include "server/metrics.h"
#include "server/servable.h"
#include "server/worker_pool.h"

namespace octet::server {

// A validated Predict request travelling through a version's batcher.
class InferenceRequest : public BatchRequest {
 public:
  // Called once with the outcome; outputs() is valid when the status is OK.
  using DoneCallback = std::function<void(absl::Status status, InferenceRequest& request)>;

  // `inputs` in the model's input order; `rows` is their common first dimension (1 for models
  // without a batch dimension).
  InferenceRequest(std::vector<Tensor> inputs, int64_t rows, absl::Time deadline,
                   std::string batch_key, DoneCallback done);

  const std::vector<Tensor>& inputs() const { return inputs_; }
  // The model's outputs for this request, in model order.
  const std::vector<Tensor>& outputs() const { return outputs_; }

  // Stores rows [batch_row, batch_row + rows) of the batch outputs as this request's rows
  // [request_row, ...). Pieces of one request may store concurrently.
  absl::Status StoreRows(const std::vector<Tensor>& batch_outputs, int64_t batch_row, int64_t rows,
                         int64_t request_row);
  // For unbatched models, and a request that was a batch alone: the outputs are this request's.
  void SetOutputs(std::vector<Tensor> outputs) { outputs_ = std::move(outputs); }

 protected:
  void Done(absl::Status status) override;

 private:
  const std::vector<Tensor> inputs_;
  DoneCallback done_;
  absl::Mutex mu_;
  bool allocated_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Tensor> outputs_;  // allocated once under mu_, then rows written disjointly
};

class LoadedVersion {
 public:
  struct Options {
    std::string model;
    int64_t version = 0;
    config::ModelConfig config;
    // CPUs this process may use (cpu_budget.h). >= 1.
    int cpu_budget = 1;
    // Time source of the batcher; nullptr = RealClock(). Not owned.
    Clock* clock = nullptr;
    // Run-time share of the CPU budget with the other versions: each batch holds one slot per
    // intra-op thread while it runs. nullptr = not shared. Not owned.
    CpuSlots* cpu_slots = nullptr;
  };

  // Builds the pool and batcher and warms every worker up. Fails with the reason (bad config,
  // runner creation or warm-up failure).
  static absl::StatusOr<std::unique_ptr<LoadedVersion>> Create(
      const Options& options, std::shared_ptr<const Servable> servable,
      std::shared_ptr<VersionMetrics> metrics);
  // Runs everything still queued, then releases the workers.
  ~LoadedVersion();

  absl::Status Submit(std::shared_ptr<InferenceRequest> request);

  const std::string& model() const { return options_.model; }
  int64_t version() const { return options_.version; }
  const config::ModelConfig& config() const { return options_.config; }
  const Servable& servable() const { return *servable_; }
  VersionMetrics& metrics() const { return *metrics_; }
  // True when every input and output has a symbolic first dimension that requests can batch on.
  bool batchable() const { return batchable_; }
  // Most rows one request may carry (INVALID_ARGUMENT above).
  int64_t max_request_rows() const { return max_request_rows_; }
  const WorkerPool& pool() const { return *pool_; }
  // How the thread plan was reduced to fit the CPU budget ("" if it was not).
  const std::string& thread_adjustment() const { return thread_adjustment_; }

 private:
  LoadedVersion(const Options& options, std::shared_ptr<const Servable> servable,
                std::shared_ptr<VersionMetrics> metrics);
  absl::Status ExecuteBatch(int worker, const Batch& batch);

  const Options options_;
  const std::shared_ptr<const Servable> servable_;
  const std::shared_ptr<VersionMetrics> metrics_;
  Clock* const clock_;
  bool batchable_ = false;
  int64_t max_request_rows_ = 0;
  std::string thread_adjustment_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Batcher> batcher_;  // destroyed first: it drains into pool_
};

}  // namespace octet::server

#endif  // OCTET_SERVER_LOADED_VERSION_H_
