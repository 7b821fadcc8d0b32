// The QDQ pass: turns QuantizeLinear/DequantizeLinear patterns (as written by ONNX Runtime's
// quantize_static, PyTorch QAT exports and `octet quantize`) into Octet's INT8 operators, so
// quantized tensors flow from layer to layer without being dequantized in between.
#ifndef OCTET_CORE_PASSES_QDQ_H_
#define OCTET_CORE_PASSES_QDQ_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/graph.h"

namespace octet {

// Rewrites, in order:
//  - Q of a constant (QAT weights) -> a quantized initializer.
//  - Q(x) -> s8 consumed only by DQs -> u8 with zero point + 128 (exact; u8 is oneDNN's fast
//    source type).
//  - DQ(x) -> Conv/MatMul/Gemm(DQ(w), bias) [-> Relu/Clip] -> Q  => octet:QConv / octet:QMatMul,
//    also absorbing  -> DQ -> Add(DQ(r)) [-> Relu/Clip] -> Q  (residual sum post-op) and
//    -> DQ -> Relu/Clip -> Q. Without a final Q the layer outputs FP32 (dequantized once).
//  - DQ -> MaxPool/AveragePool/GlobalAveragePool -> Q  => octet:QPool;
//    DQ... -> Concat -> Q => octet:QConcat; DQ, DQ -> Add [-> Relu] -> Q => octet:QAdd;
//    DQ -> Reshape/Flatten/Squeeze/Unsqueeze/Transpose -> Q (same parameters) => the op on
//    the quantized tensor.
//  - DQ and Q nodes left without consumers are removed.
// Anything that does not match stays as it is (runs in FP32 with explicit Q/DQ).
absl::Status FuseQdq(Graph& graph);

// "int8", "fp32", "fp32->int8" (quantize), "int8->fp32" (dequantize) for each node of the graph
// (same order as graph.nodes), for Model::Describe().
std::vector<std::string> NodePrecisions(const Graph& graph);

}  // namespace octet

#endif  // OCTET_CORE_PASSES_QDQ_H_
