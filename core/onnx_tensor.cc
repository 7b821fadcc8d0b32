#include "core/onnx_tensor.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet {

absl::StatusOr<DType> DTypeFromOnnx(int onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
      return DType::kF32;
    case onnx::TensorProto::UINT8:
      return DType::kU8;
    case onnx::TensorProto::INT8:
      return DType::kS8;
    case onnx::TensorProto::INT32:
      return DType::kS32;
    case onnx::TensorProto::INT64:
      return DType::kS64;
    case onnx::TensorProto::BOOL:
      return DType::kBool;
    default:
      break;
  }
  const char* name = onnx::TensorProto::DataType_IsValid(onnx_type)
                         ? onnx::TensorProto::DataType_Name(
                               static_cast<onnx::TensorProto::DataType>(onnx_type))
                               .c_str()
                         : "invalid";
  return absl::UnimplementedError(absl::StrCat("data type ", name, " (", onnx_type,
                                               ") is not supported (f32, u8, s8, s32, s64, bool)"));
}

int OnnxFromDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return onnx::TensorProto::FLOAT;
    case DType::kU8:
      return onnx::TensorProto::UINT8;
    case DType::kS8:
      return onnx::TensorProto::INT8;
    case DType::kS32:
      return onnx::TensorProto::INT32;
    case DType::kS64:
      return onnx::TensorProto::INT64;
    case DType::kBool:
      return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto) {
  auto fail = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "': ", why));
  };
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0) {
    return fail("external data is not supported; embed the weights in the .onnx file");
  }
  auto dtype = DTypeFromOnnx(proto.data_type());
  if (!dtype.ok()) return fail(std::string(dtype.status().message()));
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) {
    if (d < 0) return fail(absl::StrCat("negative dimension ", d));
  }
  const int64_t n = NumElements(shape);
  if (proto.has_raw_data()) {
    auto t = Tensor::FromBytes(*dtype, shape, proto.raw_data().data(), proto.raw_data().size());
    if (!t.ok()) return fail(std::string(t.status().message()));
    return t;
  }
  Tensor t = Tensor::Zeros(*dtype, shape);
  auto check = [&](int64_t have) -> absl::Status {
    if (have != n) {
      return fail(absl::StrCat("has ", have, " values for shape ", ShapeToString(shape)));
    }
    return absl::OkStatus();
  };
  switch (*dtype) {
    case DType::kF32: {
      if (auto s = check(proto.float_data_size()); !s.ok()) return s;
      std::memcpy(t.data(), proto.float_data().data(), n * sizeof(float));
      break;
    }
    case DType::kS64: {
      if (auto s = check(proto.int64_data_size()); !s.ok()) return s;
      std::memcpy(t.data(), proto.int64_data().data(), n * sizeof(int64_t));
      break;
    }
    case DType::kS32:
    case DType::kU8:
    case DType::kS8:
    case DType::kBool: {
      // ONNX stores these small integer types widened in int32_data.
      if (auto s = check(proto.int32_data_size()); !s.ok()) return s;
      for (int64_t i = 0; i < n; ++i) {
        int32_t v = proto.int32_data(i);
        switch (*dtype) {
          case DType::kS32:
            t.data_as<int32_t>()[i] = v;
            break;
          case DType::kU8:
            t.data_as<uint8_t>()[i] = static_cast<uint8_t>(v);
            break;
          case DType::kS8:
            t.data_as<int8_t>()[i] = static_cast<int8_t>(v);
            break;
          default:
            t.data_as<uint8_t>()[i] = v != 0;
        }
      }
      break;
    }
  }
  return t;
}

onnx::TensorProto TensorToProto(const Tensor& tensor, const std::string& name) {
  onnx::TensorProto p;
  p.set_name(name);
  p.set_data_type(OnnxFromDType(tensor.dtype()));
  for (int64_t d : tensor.shape()) p.add_dims(d);
  p.set_raw_data(tensor.data(), tensor.byte_size());
  return p;
}

absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  onnx::TensorProto proto;
  if (!proto.ParseFromString(ss.str())) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a serialized TensorProto"));
  }
  return TensorFromProto(proto);
}

}  // namespace octet
