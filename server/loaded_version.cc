#include "server/loaded_version.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/batch_tensors.h"
#include "server/cpu_budget.h"

namespace octet::server {
namespace {

bool HasBatchDimension(const std::vector<TensorSpec>& specs) {
  return std::all_of(specs.begin(), specs.end(),
                     [](const TensorSpec& s) { return !s.dims.empty() && s.dims[0] < 0; });
}

absl::Status CheckBatchRows(const std::vector<Tensor>& outputs, int64_t rows) {
  for (const Tensor& out : outputs) {
    if (out.rank() < 1 || out.dim(0) != rows) {
      return absl::InternalError(absl::StrCat("model output ", ShapeToString(out.shape()),
                                              " does not have the ", rows, " rows of its batch"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

InferenceRequest::InferenceRequest(std::vector<Tensor> inputs, int64_t rows, absl::Time deadline,
                                   std::string batch_key, DoneCallback done)
    : BatchRequest(rows, deadline, std::move(batch_key)),
      inputs_(std::move(inputs)),
      done_(std::move(done)) {}

absl::Status InferenceRequest::StoreRows(const std::vector<Tensor>& batch_outputs,
                                         int64_t batch_row, int64_t rows, int64_t request_row) {
  {
    absl::MutexLock lock(&mu_);
    if (!allocated_) {
      outputs_.clear();
      for (const Tensor& out : batch_outputs) {
        if (out.rank() < 1) return absl::InternalError("model output has no batch dimension");
        Shape shape = out.shape();
        shape[0] = this->rows();
        outputs_.push_back(Tensor::Zeros(out.dtype(), shape));
      }
      allocated_ = true;
    }
  }
  if (batch_outputs.size() != outputs_.size()) {
    return absl::InternalError("the model returned a different number of outputs per batch");
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    absl::Status st = CopyRows(batch_outputs[i], batch_row, rows, outputs_[i], request_row);
    if (!st.ok()) {
      return absl::InternalError(absl::StrCat("splitting output ", i, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

void InferenceRequest::Done(absl::Status status) {
  DoneCallback done = std::move(done_);
  if (done) done(std::move(status), *this);
}

absl::StatusOr<std::unique_ptr<LoadedVersion>> LoadedVersion::Create(
    const Options& options, std::shared_ptr<const Servable> servable,
    std::shared_ptr<VersionMetrics> metrics) {
  if (servable == nullptr || metrics == nullptr) {
    return absl::InvalidArgumentError("LoadedVersion needs a servable and metrics");
  }
  std::unique_ptr<LoadedVersion> v(
      new LoadedVersion(options, std::move(servable), std::move(metrics)));
  const config::BatchingConfig& batching = options.config.batching();
  v->batchable_ =
      HasBatchDimension(v->servable_->inputs()) && HasBatchDimension(v->servable_->outputs());

  Batcher::Options batcher_options;
  batcher_options.max_queue_delay_micros = batching.max_queue_delay_micros();
  batcher_options.max_queue_size = batching.max_queue_size();
  batcher_options.max_batch_size = v->batchable_ ? batching.max_batch_size() : 1;
  batcher_options.dispatch_when_idle = batching.dispatch_when_idle();
  batcher_options.run_inline_when_idle =
      batching.dispatch_when_idle() && batching.run_inline_when_idle();
  if (!batching.enabled()) {
    // Batching off: each piece runs alone and nothing waits; large requests are still split.
    batcher_options.max_queue_delay_micros = 0;
    batcher_options.max_tasks_per_batch = 1;
  }
  v->max_request_rows_ =
      batching.max_request_rows() > 0 ? batching.max_request_rows() : batching.max_queue_size();
  if (!v->batchable_) v->max_request_rows_ = 1;
  if (v->max_request_rows_ > batching.max_queue_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batching.max_request_rows (", v->max_request_rows_, ") exceeds batching.max_queue_size (",
        batching.max_queue_size(), "): such requests could never be queued"));
  }

  const ThreadPlan plan = PlanThreads(options.config.num_workers(),
                                      options.config.threads_per_worker(), options.cpu_budget);
  v->thread_adjustment_ = plan.adjustment;
  WorkerPool::Options pool_options;
  pool_options.num_workers = plan.workers;
  pool_options.threads_per_worker = plan.threads_per_worker;
  pool_options.cpu_budget = options.cpu_budget;
  // One plan per batch size that can occur, so batching does not thrash the plan cache.
  pool_options.max_cached_plans =
      static_cast<int>(std::min<int64_t>(batcher_options.max_batch_size, 64) + 2);
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(pool_options, v->servable_);
  if (!pool.ok()) return pool.status();
  v->pool_ = std::move(pool).value();
  if (absl::Status st = v->pool_->WarmUp(1); !st.ok()) return st;

  batcher_options.num_batch_threads = plan.workers;
  batcher_options.clock = v->clock_;
  VersionMetrics* m = v->metrics_.get();
  batcher_options.on_queue_depth = [m](int64_t rows) {
    m->queue_depth.Set(static_cast<double>(rows));
  };
  LoadedVersion* self = v.get();
  absl::StatusOr<std::unique_ptr<Batcher>> batcher = Batcher::Create(
      batcher_options,
      [self](int worker, const Batch& batch) { return self->ExecuteBatch(worker, batch); });
  if (!batcher.ok()) {
    return absl::Status(batcher.status().code(),
                        absl::StrCat("batching config: ", batcher.status().message()));
  }
  v->batcher_ = std::move(batcher).value();
  return v;
}

LoadedVersion::LoadedVersion(const Options& options, std::shared_ptr<const Servable> servable,
                             std::shared_ptr<VersionMetrics> metrics)
    : options_(options),
      servable_(std::move(servable)),
      metrics_(std::move(metrics)),
      clock_(options.clock != nullptr ? options.clock : RealClock()) {}

LoadedVersion::~LoadedVersion() {
  batcher_.reset();
  pool_.reset();
}

absl::Status LoadedVersion::Submit(std::shared_ptr<InferenceRequest> request) {
  return batcher_->Submit(std::move(request));
}

absl::Status LoadedVersion::ExecuteBatch(int worker, const Batch& batch) {
  // Waiting for CPUs busy with other models' batches counts as queueing, not compute.
  CpuSlots::Lease lease(options_.cpu_slots, pool_->threads_per_worker());
  const absl::Time start = clock_->Now();
  for (const BatchTask& task : batch.tasks) {
    metrics_->queue_latency.Observe(absl::ToDoubleSeconds(start - task.enqueue_time));
  }
  absl::Status status;
  if (!batchable_) {
    // One request per batch, run as is.
    auto* request = static_cast<InferenceRequest*>(batch.tasks[0].request.get());
    absl::StatusOr<std::vector<Tensor>> outputs = pool_->Run(worker, request->inputs());
    if (outputs.ok()) {
      request->SetOutputs(std::move(outputs).value());
    } else {
      status = outputs.status();
    }
  } else if (batch.tasks.size() == 1 && batch.tasks[0].row_begin == 0 &&
             batch.tasks[0].rows == batch.tasks[0].request->rows()) {
    // A whole request alone (the usual case at low load): its tensors are the batch, so no
    // concatenation and no split, and the outputs are handed over instead of copied.
    auto* request = static_cast<InferenceRequest*>(batch.tasks[0].request.get());
    absl::StatusOr<std::vector<Tensor>> outputs = pool_->Run(worker, request->inputs());
    status = outputs.ok() ? CheckBatchRows(*outputs, batch.rows) : outputs.status();
    if (status.ok()) request->SetOutputs(std::move(outputs).value());
  } else {
    const size_t num_inputs = servable_->inputs().size();
    std::vector<Tensor> inputs;
    inputs.reserve(num_inputs);
    std::vector<RowSlice> slices(batch.tasks.size());
    for (size_t i = 0; i < num_inputs && status.ok(); ++i) {
      for (size_t t = 0; t < batch.tasks.size(); ++t) {
        const auto* request = static_cast<const InferenceRequest*>(batch.tasks[t].request.get());
        slices[t] = RowSlice{&request->inputs()[i], batch.tasks[t].row_begin, batch.tasks[t].rows};
      }
      absl::StatusOr<Tensor> joined = ConcatRows(slices);
      if (joined.ok()) {
        inputs.push_back(std::move(joined).value());
      } else {
        status = absl::InternalError(absl::StrCat("batching input ", servable_->inputs()[i].name,
                                                  ": ", joined.status().message()));
      }
    }
    absl::StatusOr<std::vector<Tensor>> outputs =
        status.ok() ? pool_->Run(worker, inputs) : absl::StatusOr<std::vector<Tensor>>(status);
    if (!outputs.ok()) {
      status = outputs.status();
    } else {
      status = CheckBatchRows(*outputs, batch.rows);
      int64_t offset = 0;
      for (const BatchTask& task : batch.tasks) {
        if (!status.ok()) break;
        auto* request = static_cast<InferenceRequest*>(task.request.get());
        status = request->StoreRows(*outputs, offset, task.rows, task.row_begin);
        offset += task.rows;
      }
    }
  }
  const double seconds = absl::ToDoubleSeconds(clock_->Now() - start);
  metrics_->compute_latency.Observe(seconds);
  metrics_->batch_size.Observe(static_cast<double>(batch.rows));
  metrics_->compute_cpu_seconds.Increment(seconds * pool_->threads_per_worker());
  if (status.ok()) metrics_->inferences.Increment(static_cast<double>(batch.rows));
  return status;
}

}  // namespace octet::server
