// Writes Octet's Graph back as an ONNX ModelProto: the inverse of ImportOnnxModel for graphs
// that only hold standard ONNX nodes (before FusePostOps/FuseQdq rewrite them into Octet's own
// operators). Used by the quantizer to write QDQ models and calibration graphs.
#ifndef OCTET_CORE_ONNX_WRITER_H_
#define OCTET_CORE_ONNX_WRITER_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/graph.h"
#include "onnx/onnx_pb.h"

namespace octet {

// The graph as a ModelProto (opset imports from graph.opset / graph.ms_opset). Fails with
// UNIMPLEMENTED on nodes that ONNX cannot express: fused post-ops, the "octet" domain, subgraph
// attributes (which the importer does not keep).
absl::StatusOr<onnx::ModelProto> GraphToModelProto(const Graph& graph);

// GraphToModelProto, serialized.
absl::StatusOr<std::string> SerializeGraph(const Graph& graph);

}  // namespace octet

#endif  // OCTET_CORE_ONNX_WRITER_H_
