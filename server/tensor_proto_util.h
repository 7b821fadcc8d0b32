// Conversions between tensorflow.TensorProto (the wire) and octet::Tensor.
#ifndef OCTET_SERVER_TENSOR_PROTO_UTIL_H_
#define OCTET_SERVER_TENSOR_PROTO_UTIL_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"
#include "core/tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"

namespace octet::server {

tensorflow::DataType ToDataType(DType dtype);
// Only the dtypes Octet serves: DT_FLOAT, DT_UINT8, DT_INT8, DT_INT32, DT_INT64, DT_BOOL.
std::optional<DType> FromDataType(tensorflow::DataType dtype);
// "DT_FLOAT", or the number for values outside the enum.
std::string DataTypeName(tensorflow::DataType dtype);

// A client-supplied name made safe to quote in an error message: at most 64 characters,
// non-printable bytes escaped.
std::string QuoteName(absl::string_view name);

// Decodes `proto` into an owned tensor. Checks the dtype is served, the shape is known and
// non-negative, exactly one of tensor_content / the dtype's *_val field holds exactly the
// shape's element count, no other *_val field is set, and 8-bit values fit their type. Errors
// are INVALID_ARGUMENT starting with "input '<name>': ".
absl::StatusOr<Tensor> TensorFromProto(const tensorflow::TensorProto& proto,
                                       absl::string_view name);

// Encodes `tensor` with its bytes in tensor_content (what TF Serving returns).
void TensorToProto(const Tensor& tensor, tensorflow::TensorProto* proto);

}  // namespace octet::server

#endif  // OCTET_SERVER_TENSOR_PROTO_UTIL_H_
