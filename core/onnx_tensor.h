// Conversion between ONNX TensorProto messages and Octet tensors.
//
// Supported element types: FLOAT, UINT8, INT8, INT32, INT64 and BOOL, stored either in raw_data
// (little endian) or in the typed field the ONNX spec assigns to the type (float_data; int32_data
// for INT32/INT8/UINT8/BOOL/FLOAT16; int64_data; double_data). FLOAT16 and DOUBLE can be
// converted to f32 on request (TensorProtoOptions). Everything else (strings, other integer widths,
// bfloat16, complex, segmented or external-data tensors) is refused with INVALID_ARGUMENT naming
// the tensor.
#ifndef OCTET_CORE_ONNX_TENSOR_H_
#define OCTET_CORE_ONNX_TENSOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {

struct TensorProtoOptions {
  // Widen FLOAT16 tensors to f32. Exact (every half value is a float), but the tensor's type
  // changes, so only callers that treat the values as f32 anyway should turn this on.
  bool float16_to_f32 = false;
  // Narrow DOUBLE tensors to f32, rounding to nearest. Lossy; off by default.
  bool double_to_f32 = false;
};

// The Octet dtype holding ONNX element type `data_type` (a TensorProto::DataType value), or
// INVALID_ARGUMENT naming the type.
absl::StatusOr<DType> DTypeFromOnnx(int data_type);
// The ONNX element type (TensorProto::DataType) of `dtype`.
int OnnxFromDType(DType dtype);
// "FLOAT", "INT8", ... for any ONNX element type; "UNKNOWN(n)" for values outside the enum.
std::string OnnxDataTypeName(int32_t data_type);

// Converts `proto` to a tensor with owned storage.
absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto,
                                       const TensorProtoOptions& options = {});

// Converts `tensor` to a TensorProto named `name`, with the data in raw_data.
onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name);

// Reads a serialized TensorProto (such as the input_0.pb / output_0.pb files of ONNX's backend
// test data) and converts it. Errors name the file.
absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path,
                                           const TensorProtoOptions& options = {});

// Reads a serialized TensorProto without converting it (to look at name and type first).
absl::StatusOr<onnx::TensorProto> ReadTensorProto(const std::string& path);

}  // namespace octet

#endif  // OCTET_CORE_ONNX_TENSOR_H_
