// Model: an imported, optimized ONNX graph with its weights prepared once at load, and the
// ExecutionContext through which callers run it. A Model is immutable and shared by any number
// of contexts; each context owns its plans (primitives + activation buffers) and is used by one
// thread at a time.
#ifndef OCTET_CORE_MODEL_H_
#define OCTET_CORE_MODEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace octet {

class Graph;
class ExecutionPlan;

// Describes one graph input or output. Dimensions that are symbolic in the ONNX file
// (batch, image size, sequence length) are -1 here and named in `dim_names`.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> dims;           // -1 = bound from the actual input at run time
  std::vector<std::string> dim_names;  // "" for static dimensions
};

struct LoadOptions {
  // Run the graph passes (fusion, folding). Off only to debug the passes themselves.
  bool optimize = true;
};

struct ContextOptions {
  // OpenMP threads the context's primitives use (intra-op parallelism). >= 1.
  int num_threads = 1;
  // Number of distinct input shapes whose plans are kept; the least recently used is evicted.
  int max_cached_plans = 16;
  // A new plan whose first run takes less than this (microseconds) with num_threads > 1 threads
  // is also built for one thread, both are timed (median of 7 runs each) and the faster is kept.
  // Waking the other OpenMP threads for every primitive costs tens of microseconds on shared
  // vCPUs, more than short primitives gain from them (mobilenet_v2 INT8 batch 1 runs ~15%
  // faster on one thread than on two). 0 = always use num_threads.
  int64_t tune_threads_below_micros = 10000;
  // Clock for those timings, in nanoseconds; null = std::chrono::steady_clock. Tests inject one.
  std::function<int64_t()> clock_nanos = nullptr;
};

class ExecutionContext;

class Model : public std::enable_shared_from_this<Model> {
 public:
  static absl::StatusOr<std::shared_ptr<const Model>> LoadFromFile(const std::string& path,
                                                                   const LoadOptions& options = {});
  static absl::StatusOr<std::shared_ptr<const Model>> LoadFromBytes(
      const std::string& bytes, const LoadOptions& options = {});
  ~Model();

  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  // Bytes of the weights as held after load, and what they would take in FP32.
  int64_t weight_bytes() const;
  int64_t fp32_weight_bytes() const;
  // Human-readable description of the optimized graph (one line per node, with precision).
  std::string Describe() const;
  const Graph& graph() const { return *graph_; }

  absl::StatusOr<std::unique_ptr<ExecutionContext>> CreateContext(
      const ContextOptions& options = {}) const;

 private:
  Model();
  std::unique_ptr<Graph> graph_;
  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
  // Engine and prepared weights, shared with every context.
  struct Shared;
  std::shared_ptr<Shared> shared_;
  // Inputs that set op parameters (Reshape shape, Resize scales...): plans specialize on them.
  std::vector<size_t> parameter_inputs_;
  friend class ExecutionContext;
};

class ExecutionContext {
 public:
  ~ExecutionContext();
  // Runs the model. `inputs` are in the order of Model::inputs(). Returns the outputs in the order
  // of Model::outputs(), in freshly allocated tensors. Input shapes and dtypes are validated;
  // errors are INVALID_ARGUMENT naming the input.
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs);
  // The plan for these input shapes (built and cached if needed), for inspection.
  absl::StatusOr<const ExecutionPlan*> PlanFor(absl::Span<const Shape> input_shapes);
  const Model& model() const { return *model_; }

 private:
  friend class Model;
  ExecutionContext(std::shared_ptr<const Model> model, const ContextOptions& options);
  absl::Status ValidateInputs(absl::Span<const Tensor> inputs) const;
  absl::StatusOr<ExecutionPlan*> GetPlan(absl::Span<const Shape> shapes,
                                         absl::Span<const Tensor> inputs);
  // `wide` (built for num_threads) or a one-thread build of it, whichever runs `inputs` faster
  // (see ContextOptions::tune_threads_below_micros). Zero inputs of `shapes` when `inputs` is
  // empty.
  std::unique_ptr<ExecutionPlan> PickThreadCount(std::unique_ptr<ExecutionPlan> wide,
                                                 absl::Span<const Shape> shapes,
                                                 absl::Span<const Tensor> inputs,
                                                 absl::Span<const Tensor> bound);
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet

#endif  // OCTET_CORE_MODEL_H_
