// The graph side of `octet quantize`: prepares an FP32 graph for quantization, chooses which
// layers and activation tensors to quantize, and rewrites the graph into standard ONNX QDQ form
// once the activation ranges are known. No engine runs here (see Calibrator for that).
#ifndef OCTET_CORE_QUANT_QDQ_REWRITER_H_
#define OCTET_CORE_QUANT_QDQ_REWRITER_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph.h"
#include "core/quant/qparams.h"

namespace octet {

// One activation tensor that gets QuantizeLinear -> DequantizeLinear.
struct QdqTarget {
  std::string tensor;
  std::string node;     // node reported for it (the layer of a fused layer -> Relu)
  std::string op_type;  // its op type, "input" for a graph input
  // Tensor whose calibrated range sets the parameters: itself, or the input of a
  // MaxPool/Reshape/Flatten/... whose output must share its input's parameters.
  std::string range_of;
};

struct QdqPlan {
  std::vector<QdqTarget> targets;        // topological order of the producers
  std::set<std::string> layers;          // Conv/Gemm/MatMul nodes whose weights are quantized
  std::vector<std::string> fp32_layers;  // quantizable layers kept in FP32 (excluded)
  std::map<std::string, std::string> layer_output;  // layer -> tensor it is reported by
};

// Imports the model and runs the passes that keep it standard ONNX (RemoveIdentities,
// FoldBatchNorm), folds Gemm alpha/beta into constant operands, and raises the opset to 13 when
// that cannot change the meaning of any node (else UNIMPLEMENTED saying why).
absl::StatusOr<Graph> PrepareForQuantization(const std::string& fp32_onnx_bytes);

// Every Conv/Gemm/MatMul with constant FP32 weights not in `exclude` is quantized: its input,
// and its output (after a sole Relu/Clip consumer). Pooling, Add, Concat and shape ops whose
// inputs are all quantized get a quantized output too. `exclude` names must be nodes of `g`.
absl::StatusOr<QdqPlan> PlanQuantization(const Graph& g, const std::set<std::string>& exclude);

// The QDQ graph: `plan`'s targets get Q -> DQ with `activations[range_of]` (u8 per tensor; the
// DQ output keeps the tensor's name), the layers' weights become s8 symmetric initializers behind
// a DQ (per output channel if `per_channel`), their biases s32 with scale s_x * s_w[oc].
// `dequantized` (may be null) receives, per target tensor, the DQ output readers now use (the
// tensor's own name, except for graph inputs).
absl::StatusOr<Graph> RewriteToQdq(const Graph& g, const QdqPlan& plan,
                                   const std::map<std::string, QuantParams>& activations,
                                   bool per_channel,
                                   std::map<std::string, std::string>* dequantized = nullptr);

}  // namespace octet

#endif  // OCTET_CORE_QUANT_QDQ_REWRITER_H_
