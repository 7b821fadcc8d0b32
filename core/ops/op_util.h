// Helpers shared by the operator implementations.
#ifndef OCTET_CORE_OPS_OP_UTIL_H_
#define OCTET_CORE_OPS_OP_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/graph.h"
#include "core/op_kernel.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

// Spatial geometry of a sliding-window op (Conv, ConvTranspose, pooling), resolved from ONNX's
// kernel_shape/strides/dilations/pads/auto_pad for one input size.
struct WindowGeometry {
  std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end, out;
};

// For Conv/pooling (not ConvTranspose). `in` are the spatial input sizes. ceil_mode for pooling.
absl::StatusOr<WindowGeometry> ResolveWindow(const Node& node, const std::vector<int64_t>& in,
                                             const std::vector<int64_t>& kernel, bool ceil_mode);

// Appends the node's fused post-ops (activations, residual sum) to `ops`. `sum_scale` scales the
// residual (1 in FP32).
void AppendPostOps(const std::vector<PostOp>& post_ops, dnnl::post_ops& ops,
                   float sum_scale = 1.0f);
// True if the node has a fused residual sum (its input 3).
bool HasSumPostOp(const Node& node);

// Registers an op with a validation function and a builder.
void AddOp(OpRegistry& r, const std::string& op_type,
           std::function<absl::StatusOr<std::unique_ptr<OpKernel>>(BuildContext&)> build,
           std::function<absl::Status(const Node&, int64_t)> validate = nullptr,
           const std::string& domain = "");

// Fails unless every attribute of `node` is in `allowed`; names the first unsupported one.
absl::Status CheckAttributes(const Node& node, const std::vector<std::string>& allowed);

// Normalizes a possibly negative axis for a tensor of `rank`.
absl::StatusOr<int64_t> NormalizeAxis(const BuildContext& ctx, int64_t axis, int64_t rank);

// A reorder that owns its destination buffer.
class OwningReorderKernel : public OpKernel {
 public:
  OwningReorderKernel(dnnl::memory from, dnnl::memory to, Tensor storage)
      : reorder_(from, to), from_(from), to_(to), storage_(std::move(storage)) {}
  absl::Status Run(dnnl::stream& stream) override {
    reorder_.execute(stream, from_, to_);
    return absl::OkStatus();
  }

 private:
  dnnl::reorder reorder_;
  dnnl::memory from_, to_;
  Tensor storage_;
};

// Runs several kernels in order as one step (weight reorders, residual copy, main primitive).
class SequenceKernel : public OpKernel {
 public:
  explicit SequenceKernel(std::string impl) : impl_(std::move(impl)) {}
  void Add(std::unique_ptr<OpKernel> k) { kernels_.push_back(std::move(k)); }
  absl::Status Run(dnnl::stream& stream) override {
    for (auto& k : kernels_) {
      if (auto s = k->Run(stream); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  std::string Describe() const override { return impl_; }

 private:
  std::vector<std::unique_ptr<OpKernel>> kernels_;
  std::string impl_;
};

// Weights (input `index`, laid out as `user_md`) in the primitive's layout `target_md`. Constant
// weights are prepared once per model in the WeightCache and shared by every plan and context;
// runtime weights get a reorder kernel appended to `pre_steps`.
absl::StatusOr<dnnl::memory> PrepareWeights(BuildContext& ctx, size_t index,
                                            const dnnl::memory::desc& user_md,
                                            const dnnl::memory::desc& target_md,
                                            std::vector<std::unique_ptr<OpKernel>>* pre_steps);

}  // namespace octet

#endif  // OCTET_CORE_OPS_OP_UTIL_H_
