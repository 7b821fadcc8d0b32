// Imports an ONNX ModelProto into Octet's Graph.
#ifndef OCTET_CORE_ONNX_IMPORTER_H_
#define OCTET_CORE_ONNX_IMPORTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/graph.h"

namespace octet {

// Highest default-domain opset Octet understands.
inline constexpr int64_t kMaxOnnxOpset = 17;

// Parses a serialized ONNX model. Constant nodes become initializers. Errors name the node/tensor.
absl::StatusOr<Graph> ImportOnnxModel(const std::string& bytes);

}  // namespace octet

#endif  // OCTET_CORE_ONNX_IMPORTER_H_
