// Conversions between onnx::TensorProto and octet::Tensor.
#ifndef OCTET_CORE_ONNX_TENSOR_H_
#define OCTET_CORE_ONNX_TENSOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {

// Maps an ONNX TensorProto data type to Octet's dtype (DOUBLE/FLOAT16 and others are refused).
absl::StatusOr<DType> DTypeFromOnnx(int onnx_type);
int OnnxFromDType(DType dtype);

// Reads raw_data or the typed fields. External data is refused. Errors name the tensor.
absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto);
onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name);
// Reads a serialized TensorProto file (ONNX test data `input_0.pb`).
absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path);

}  // namespace octet

#endif  // OCTET_CORE_ONNX_TENSOR_H_
