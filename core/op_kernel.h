// The contract between the plan builder and operator implementations.
//
// For every node the builder calls the op's Build function once per input-shape signature. Build
// infers output shapes (this is Octet's shape inference), creates oneDNN primitives and reorders
// weights, and returns a kernel whose Run() only executes. All bindings (buffers, primitives) are
// fixed at build time, so Run allocates nothing.
#ifndef OCTET_CORE_OP_KERNEL_H_
#define OCTET_CORE_OP_KERNEL_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/graph.h"
#include "core/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

class WeightCache;

// One value (tensor) inside a plan. `buffer` is owned by the plan (or is a shared constant) and is
// stable for the plan's life. For oneDNN types `md` says how the buffer is laid out; it may be a
// blocked layout chosen by a primitive. s64/bool values are always plain and have an empty md.
struct PlanValue {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  dnnl::memory::desc md;
  Tensor buffer;
  bool is_constant = false;
  // A dnnl::memory over `buffer` with `md`, created on first use.
  dnnl::memory Memory(const dnnl::engine& engine);

 private:
  dnnl::memory mem_;
};

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  virtual absl::Status Run(dnnl::stream& stream) = 0;
  // Implementation detail for `octet inspect` (e.g. "jit:avx512_core", "ref").
  virtual std::string Describe() const { return ""; }
};

// Runs a prepared oneDNN primitive with fixed arguments.
class PrimitiveKernel : public OpKernel {
 public:
  PrimitiveKernel(dnnl::primitive prim, std::unordered_map<int, dnnl::memory> args,
                  std::string impl)
      : prim_(std::move(prim)), args_(std::move(args)), impl_(std::move(impl)) {}
  absl::Status Run(dnnl::stream& stream) override {
    prim_.execute(stream, args_);
    return absl::OkStatus();
  }
  std::string Describe() const override { return impl_; }

 private:
  dnnl::primitive prim_;
  std::unordered_map<int, dnnl::memory> args_;
  std::string impl_;
};

// A kernel built from a lambda (reference implementations of cheap or shape ops).
class LambdaKernel : public OpKernel {
 public:
  LambdaKernel(std::function<absl::Status()> fn, std::string impl)
      : fn_(std::move(fn)), impl_(std::move(impl)) {}
  absl::Status Run(dnnl::stream&) override { return fn_(); }
  std::string Describe() const override { return impl_; }

 private:
  std::function<absl::Status()> fn_;
  std::string impl_;
};

// What an op's Build sees. Implemented by the plan builder.
class BuildContext {
 public:
  virtual ~BuildContext() = default;
  virtual const Node& node() const = 0;
  virtual int64_t opset() const = 0;
  virtual const dnnl::engine& engine() const = 0;
  virtual WeightCache& weights() = 0;
  // The plan holds `t` for its lifetime. Kernels call it with the storage of every WeightCache
  // entry they use, so that WeightCache::DropUnused knows which entries are live.
  virtual void KeepAlive(Tensor t) = 0;
  virtual int num_threads() const = 0;

  size_t num_inputs() const { return node().inputs.size(); }
  bool has_input(size_t i) const { return node().HasInput(i); }
  // The input in plain (row-major) layout; a reorder is inserted if the producer chose another.
  virtual PlanValue& input(size_t i) = 0;
  // The input in whatever layout its producer chose (for layout-aware oneDNN kernels).
  virtual PlanValue& input_any_layout(size_t i) = 0;
  // The input converted to exactly `md` (same logical shape and dtype).
  virtual absl::StatusOr<PlanValue*> input_as(size_t i, const dnnl::memory::desc& md) = 0;
  // Non-null when the input's value is known while building (initializers, folded values).
  virtual const Tensor* constant(size_t i) = 0;

  // Declares output i with a buffer the kernel writes. `md` null = plain layout.
  virtual PlanValue& DefineOutput(size_t i, DType dtype, Shape shape,
                                  const dnnl::memory::desc* md = nullptr) = 0;
  // Declares output i as written in place over `donor` (an input value or a converted copy of
  // one, with the output's dtype, shape and layout) when no later step reads the donor; returns
  // nullptr otherwise, and the caller defines a separate output.
  virtual PlanValue* DefineOutputInPlace(size_t i, PlanValue* donor) = 0;
  // Declares output i as known now (shape arithmetic); no kernel work at run time.
  virtual void SetConstantOutput(size_t i, Tensor value) = 0;
  // The nodes that read output i of the current node, and whether it is a graph output (lets a
  // producer write the layout its consumers want instead of paying a reorder).
  virtual std::vector<const Node*> Consumers(size_t i, bool* is_graph_output) const = 0;

  // Error helpers: messages start with the node's label.
  absl::Status Invalid(const std::string& why) const;
  absl::Status Unsupported(const std::string& why) const;
};

struct OpSchema {
  std::string op_type;
  std::string domain;  // "" = default ONNX domain
  // Checks attributes and input counts at model load (before shapes are known).
  std::function<absl::Status(const Node&, int64_t opset)> validate;
  // Builds the kernel. Returns nullptr when every output was set constant.
  std::function<absl::StatusOr<std::unique_ptr<OpKernel>>(BuildContext&)> build;
};

// The set of ops the engine implements. Immutable once built.
class OpRegistry {
 public:
  void Register(OpSchema schema);
  const OpSchema* Find(const std::string& domain, const std::string& op_type) const;
  std::vector<std::string> OpTypes() const;
  // All of Octet's ops.
  static const OpRegistry& Default();

 private:
  std::map<std::pair<std::string, std::string>, OpSchema> ops_;
};

// Registration functions, one per family of ops (core/ops/*.cc).
void RegisterConvOps(OpRegistry& r);
void RegisterGemmOps(OpRegistry& r);
void RegisterPoolOps(OpRegistry& r);
void RegisterNormOps(OpRegistry& r);
void RegisterEltwiseOps(OpRegistry& r);
void RegisterBinaryOps(OpRegistry& r);
void RegisterShapeOps(OpRegistry& r);
void RegisterTensorOps(OpRegistry& r);
void RegisterReduceOps(OpRegistry& r);
void RegisterQuantOps(OpRegistry& r);

}  // namespace octet

#endif  // OCTET_CORE_OP_KERNEL_H_
