// Graph passes run once at load: they simplify and fuse the imported graph before any plan is
// built. Each pass preserves the graph's outputs exactly (up to float rounding of folded math).
#ifndef OCTET_CORE_PASSES_H_
#define OCTET_CORE_PASSES_H_

#include "absl/status/status.h"
#include "core/graph.h"

namespace octet {

// Identity and inference-mode Dropout become renames.
absl::Status RemoveIdentities(Graph& graph);
// BatchNormalization after Conv/ConvTranspose/Gemm with constant weights is folded into them.
absl::Status FoldBatchNorm(Graph& graph);
// Relu/LeakyRelu/Clip/Sigmoid/Tanh/HardSigmoid/HardSwish after Conv/Gemm/MatMul, and a residual
// Add, become post-ops of the producing layer.
absl::Status FusePostOps(Graph& graph);
// All of the above, in order.
absl::Status OptimizeGraph(Graph& graph);

}  // namespace octet

#endif  // OCTET_CORE_PASSES_H_
