// ExecutionPlan: a graph compiled for one set of input shapes. Values that can be known while
// building (initializers, shape arithmetic) are folded to constants; every other node becomes a
// step holding a prepared kernel. Buffers are allocated once; Run copies inputs in, executes the
// steps and copies outputs out.
#ifndef OCTET_CORE_PLAN_H_
#define OCTET_CORE_PLAN_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/graph.h"
#include "core/op_kernel.h"
#include "core/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

class WeightCache;

struct PlanOptions {
  const dnnl::engine* engine = nullptr;  // required
  WeightCache* weights = nullptr;        // required; shared by the model's plans
  int num_threads = 1;                   // threads the kernels may use
};

class ExecutionPlan {
 public:
  struct Step {
    std::string node_name;  // "" for reorders the builder inserted
    std::string op_type;    // ONNX op, or "Reorder"
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::string impl;  // kernel's Describe()
    std::unique_ptr<OpKernel> kernel;
  };

  // `input_shapes` follows graph.inputs order. `bound_values` (same order, or empty) holds the
  // values of parameter inputs (see ParameterInputs; other entries are empty tensors): the plan
  // treats them as constants, so
  // Reshape/Slice/... parameters fed from graph inputs work; the plan is then only valid for
  // those values (ExecutionContext keys its plan cache on them).
  static absl::StatusOr<std::unique_ptr<ExecutionPlan>> Build(
      const Graph& graph, absl::Span<const Shape> input_shapes, const PlanOptions& options,
      absl::Span<const Tensor> bound_values = {});

  // Graph inputs (indices into graph.inputs) that feed an op's parameter slot (Reshape's shape,
  // Slice's starts, Resize's scales, ...) directly. Plans are specialized on their values.
  static std::vector<size_t> ParameterInputs(const Graph& graph);
  // Larger tensors are never specialized on.
  static constexpr int64_t kMaxParameterElements = 64;

  // Inputs must match the shapes the plan was built for (checked).
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs, dnnl::stream& stream);

  const std::vector<Step>& steps() const { return steps_; }
  // OpenMP threads the plan's primitives were created for; set omp_set_num_threads to this
  // before Run (oneDNN fixes a primitive's thread count when it is created).
  int num_threads() const { return num_threads_; }
  // One line per step: op, node, inputs -> outputs with dtype/shape, implementation.
  std::string Describe() const;
  // Bytes of activation storage this plan owns (after liveness-based reuse).
  int64_t activation_bytes() const;
  const PlanValue* FindValue(const std::string& name) const;

 private:
  friend class PlanBuilder;
  ExecutionPlan() = default;
  std::deque<PlanValue> values_;  // deque: stable addresses while growing
  std::vector<PlanValue*> inputs_;
  std::vector<PlanValue*> outputs_;
  std::vector<Step> steps_;
  std::vector<Tensor> arena_;  // activation storage blocks, shared by values with disjoint lives
  std::vector<Tensor> kept_;   // WeightCache entries the kernels use
  int num_threads_ = 1;
};

}  // namespace octet

#endif  // OCTET_CORE_PLAN_H_
