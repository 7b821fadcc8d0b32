#include "core/onnx_tensor.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet {
namespace {

using onnx::TensorProto;

std::string Label(const TensorProto& proto) {
  return proto.name().empty() ? std::string("unnamed tensor")
                              : absl::StrCat("tensor '", proto.name(), "'");
}

absl::Status Error(const TensorProto& proto, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Label(proto), ": ", what));
}

// IEEE half -> float; exact for every input, including subnormals, infinities and NaN.
float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {
      // Subnormal half: renormalize into a float's wider exponent range.
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// How the elements of an ONNX type are stored and which Octet dtype receives them.
struct Layout {
  DType dtype;
  size_t raw_size;  // bytes per element in raw_data
  enum Field { kFloat, kInt32, kInt64, kDouble } field;
};

absl::StatusOr<Layout> LayoutFor(const TensorProto& proto, const TensorProtoOptions& options) {
  switch (proto.data_type()) {
    case TensorProto::FLOAT:
      return Layout{DType::kF32, 4, Layout::kFloat};
    case TensorProto::UINT8:
      return Layout{DType::kU8, 1, Layout::kInt32};
    case TensorProto::INT8:
      return Layout{DType::kS8, 1, Layout::kInt32};
    case TensorProto::INT32:
      return Layout{DType::kS32, 4, Layout::kInt32};
    case TensorProto::INT64:
      return Layout{DType::kS64, 8, Layout::kInt64};
    case TensorProto::BOOL:
      return Layout{DType::kBool, 1, Layout::kInt32};
    case TensorProto::FLOAT16:
      if (options.float16_to_f32) return Layout{DType::kF32, 2, Layout::kInt32};
      return Error(proto, "element type FLOAT16 is not supported (Octet computes in f32 and int8)");
    case TensorProto::DOUBLE:
      if (options.double_to_f32) return Layout{DType::kF32, 8, Layout::kDouble};
      return Error(proto, "element type DOUBLE is not supported (Octet computes in f32 and int8)");
    default:
      return Error(proto, absl::StrCat("element type ", OnnxDataTypeName(proto.data_type()),
                                       " is not supported (supported: FLOAT, UINT8, INT8, INT32, "
                                       "INT64, BOOL)"));
  }
}

const char* FieldName(Layout::Field field) {
  switch (field) {
    case Layout::kFloat:
      return "float_data";
    case Layout::kInt32:
      return "int32_data";
    case Layout::kInt64:
      return "int64_data";
    case Layout::kDouble:
      return "double_data";
  }
  return "?";
}

int FieldSize(const TensorProto& proto, Layout::Field field) {
  switch (field) {
    case Layout::kFloat:
      return proto.float_data_size();
    case Layout::kInt32:
      return proto.int32_data_size();
    case Layout::kInt64:
      return proto.int64_data_size();
    case Layout::kDouble:
      return proto.double_data_size();
  }
  return 0;
}

// Converts raw little-endian bytes (x86 is little endian, so same-size types are a memcpy).
void ConvertRaw(const TensorProto& proto, const Layout& layout, Tensor* out) {
  const std::string& raw = proto.raw_data();
  int64_t n = out->num_elements();
  if (proto.data_type() == TensorProto::FLOAT16) {
    float* dst = out->data_as<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, raw.data() + 2 * i, 2);
      dst[i] = HalfToFloat(h);
    }
  } else if (proto.data_type() == TensorProto::DOUBLE) {
    float* dst = out->data_as<float>();
    for (int64_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, raw.data() + 8 * i, 8);
      dst[i] = static_cast<float>(d);
    }
  } else if (n > 0) {
    std::memcpy(out->data(), raw.data(), static_cast<size_t>(n) * layout.raw_size);
  }
  if (layout.dtype == DType::kBool) {
    uint8_t* p = out->data_as<uint8_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] != 0;
  }
}

// Converts the typed field; int32_data carries the narrower integer types and FLOAT16 bits.
absl::Status ConvertTyped(const TensorProto& proto, const Layout& layout, Tensor* out) {
  int64_t n = out->num_elements();
  switch (layout.field) {
    case Layout::kFloat:
      for (int64_t i = 0; i < n; ++i) out->data_as<float>()[i] = proto.float_data(i);
      return absl::OkStatus();
    case Layout::kInt64:
      for (int64_t i = 0; i < n; ++i) out->data_as<int64_t>()[i] = proto.int64_data(i);
      return absl::OkStatus();
    case Layout::kDouble:
      for (int64_t i = 0; i < n; ++i) {
        out->data_as<float>()[i] = static_cast<float>(proto.double_data(i));
      }
      return absl::OkStatus();
    case Layout::kInt32:
      break;
  }
  for (int64_t i = 0; i < n; ++i) {
    int32_t v = proto.int32_data(i);
    switch (proto.data_type()) {
      case TensorProto::INT32:
        out->data_as<int32_t>()[i] = v;
        break;
      case TensorProto::BOOL:
        out->data_as<uint8_t>()[i] = v != 0;
        break;
      case TensorProto::FLOAT16:
        out->data_as<float>()[i] = HalfToFloat(static_cast<uint16_t>(v & 0xffff));
        break;
      case TensorProto::INT8:
        if (v < -128 || v > 127) {
          return Error(proto,
                       absl::StrCat("int32_data[", i, "] = ", v, " is out of range for INT8"));
        }
        out->data_as<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      case TensorProto::UINT8:
        if (v < 0 || v > 255) {
          return Error(proto,
                       absl::StrCat("int32_data[", i, "] = ", v, " is out of range for UINT8"));
        }
        out->data_as<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
      default:
        return Error(proto, "internal: unexpected type in int32_data");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DType> DTypeFromOnnx(int data_type) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return DType::kF32;
    case TensorProto::UINT8:
      return DType::kU8;
    case TensorProto::INT8:
      return DType::kS8;
    case TensorProto::INT32:
      return DType::kS32;
    case TensorProto::INT64:
      return DType::kS64;
    case TensorProto::BOOL:
      return DType::kBool;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("element type ", OnnxDataTypeName(data_type), " is not supported"));
  }
}

int OnnxFromDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return TensorProto::FLOAT;
    case DType::kU8:
      return TensorProto::UINT8;
    case DType::kS8:
      return TensorProto::INT8;
    case DType::kS32:
      return TensorProto::INT32;
    case DType::kS64:
      return TensorProto::INT64;
    case DType::kBool:
      return TensorProto::BOOL;
  }
  return TensorProto::UNDEFINED;
}

std::string OnnxDataTypeName(int32_t data_type) {
  if (!onnx::TensorProto_DataType_IsValid(data_type))
    return absl::StrCat("UNKNOWN(", data_type, ")");
  return onnx::TensorProto_DataType_Name(static_cast<TensorProto::DataType>(data_type));
}

absl::StatusOr<Tensor> TensorFromProto(const TensorProto& proto,
                                       const TensorProtoOptions& options) {
  if (proto.data_location() == TensorProto::EXTERNAL || proto.external_data_size() > 0) {
    return Error(proto,
                 "stores its data externally (data_location EXTERNAL), which Octet does "
                 "not load; embed the weights in the .onnx file");
  }
  if (proto.has_segment()) return Error(proto, "segmented tensors are not supported");
  absl::StatusOr<Layout> layout = LayoutFor(proto, options);
  if (!layout.ok()) return layout.status();

  Shape shape(proto.dims().begin(), proto.dims().end());
  uint64_t count = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return Error(proto, absl::StrCat("negative dimension in ", ShapeToString(shape)));
    empty |= d == 0;
  }
  for (int64_t d : shape) {
    if (empty) break;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count) ||
        count > (uint64_t{1} << 56)) {
      return Error(proto, absl::StrCat("shape ", ShapeToString(shape), " is too large"));
    }
  }
  if (empty) count = 0;

  // Exactly one place may hold the values: raw_data or the type's own typed field.
  int typed_fields = (proto.float_data_size() > 0) + (proto.int32_data_size() > 0) +
                     (proto.int64_data_size() > 0) + (proto.double_data_size() > 0) +
                     (proto.uint64_data_size() > 0) + (proto.string_data_size() > 0);
  const bool has_raw = proto.has_raw_data();
  if (has_raw && typed_fields > 0) return Error(proto, "has both raw_data and a typed data field");
  if (has_raw) {
    if (proto.raw_data().size() != count * layout->raw_size) {
      return Error(proto, absl::StrCat("raw_data has ", proto.raw_data().size(), " bytes, ",
                                       OnnxDataTypeName(proto.data_type()), ShapeToString(shape),
                                       " needs ", count * layout->raw_size));
    }
  } else if (typed_fields > 0) {
    int64_t have = FieldSize(proto, layout->field);
    if (typed_fields > 1 || have == 0) {
      return Error(proto,
                   absl::StrCat(OnnxDataTypeName(proto.data_type()),
                                " values must be in raw_data or ", FieldName(layout->field)));
    }
    if (static_cast<uint64_t>(have) != count) {
      return Error(proto, absl::StrCat(FieldName(layout->field), " has ", have, " values, shape ",
                                       ShapeToString(shape), " needs ", count));
    }
  } else if (count > 0) {
    return Error(proto, absl::StrCat("has no data (shape ", ShapeToString(shape), ")"));
  }

  Tensor out = Tensor::Zeros(layout->dtype, std::move(shape));
  if (has_raw) {
    ConvertRaw(proto, *layout, &out);
  } else if (count > 0) {
    absl::Status s = ConvertTyped(proto, *layout, &out);
    if (!s.ok()) return s;
  }
  return out;
}

TensorProto TensorToProto(const Tensor& tensor, const std::string& name) {
  TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(OnnxFromDType(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto.add_dims(d);
  if (tensor.byte_size() > 0) {
    proto.set_raw_data(static_cast<const char*>(tensor.data()), tensor.byte_size());
  } else {
    proto.set_raw_data("");  // present but empty: an empty tensor, not a missing one
  }
  return proto;
}

absl::StatusOr<TensorProto> ReadTensorProto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  TensorProto proto;
  if (!proto.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid serialized onnx.TensorProto"));
  }
  return proto;
}

absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path,
                                           const TensorProtoOptions& options) {
  absl::StatusOr<TensorProto> proto = ReadTensorProto(path);
  if (!proto.ok()) return proto.status();
  absl::StatusOr<Tensor> tensor = TensorFromProto(*proto, options);
  if (!tensor.ok()) {
    return absl::Status(tensor.status().code(),
                        absl::StrCat(path, ": ", tensor.status().message()));
  }
  return tensor;
}

}  // namespace octet
