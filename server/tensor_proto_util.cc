#include "server/tensor_proto_util.h"

#include <cstring>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octet::server {
namespace {

using tensorflow::DataType;
using tensorflow::TensorProto;

// Number of values in each typed field (to report fields that do not belong to the dtype).
struct TypedCounts {
  const char* field;
  int count;
};

std::vector<TypedCounts> AllTypedCounts(const TensorProto& p) {
  return {{"half_val", p.half_val_size()},         {"float_val", p.float_val_size()},
          {"double_val", p.double_val_size()},     {"int_val", p.int_val_size()},
          {"string_val", p.string_val_size()},     {"scomplex_val", p.scomplex_val_size()},
          {"int64_val", p.int64_val_size()},       {"bool_val", p.bool_val_size()},
          {"dcomplex_val", p.dcomplex_val_size()}, {"uint32_val", p.uint32_val_size()},
          {"uint64_val", p.uint64_val_size()}};
}

// The *_val field that carries `dtype`.
const char* TypedFieldFor(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float_val";
    case DType::kS64:
      return "int64_val";
    case DType::kBool:
      return "bool_val";
    case DType::kU8:
    case DType::kS8:
    case DType::kS32:
      return "int_val";
  }
  return "";
}

template <typename Out, typename In>
absl::Status CopyInts(const In& values, Tensor& out, absl::string_view name, int64_t lo, int64_t hi,
                      DataType dtype) {
  Out* dst = out.data_as<Out>();
  for (int i = 0; i < values.size(); ++i) {
    const int64_t v = values.Get(i);
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(absl::StrCat("input ", QuoteName(name), ": element ", i,
                                                     " = ", v, " is out of range for ",
                                                     DataTypeName(dtype)));
    }
    dst[i] = static_cast<Out>(v);
  }
  return absl::OkStatus();
}

}  // namespace

tensorflow::DataType ToDataType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return tensorflow::DT_FLOAT;
    case DType::kU8:
      return tensorflow::DT_UINT8;
    case DType::kS8:
      return tensorflow::DT_INT8;
    case DType::kS32:
      return tensorflow::DT_INT32;
    case DType::kS64:
      return tensorflow::DT_INT64;
    case DType::kBool:
      return tensorflow::DT_BOOL;
  }
  return tensorflow::DT_INVALID;
}

std::optional<DType> FromDataType(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      return DType::kF32;
    case tensorflow::DT_UINT8:
      return DType::kU8;
    case tensorflow::DT_INT8:
      return DType::kS8;
    case tensorflow::DT_INT32:
      return DType::kS32;
    case tensorflow::DT_INT64:
      return DType::kS64;
    case tensorflow::DT_BOOL:
      return DType::kBool;
    default:
      return std::nullopt;
  }
}

std::string DataTypeName(tensorflow::DataType dtype) {
  if (tensorflow::DataType_IsValid(dtype)) return tensorflow::DataType_Name(dtype);
  return absl::StrCat("dtype ", static_cast<int>(dtype));
}

std::string QuoteName(absl::string_view name) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (absl::ascii_isprint(c) && c != '\'' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (name.size() > kMax) out += "...";
  out += "'";
  return out;
}

absl::StatusOr<Tensor> TensorFromProto(const TensorProto& proto, absl::string_view name) {
  const std::string prefix = absl::StrCat("input ", QuoteName(name), ": ");
  std::optional<DType> dtype = FromDataType(proto.dtype());
  if (!dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "dtype ", DataTypeName(proto.dtype()),
        " is not supported (DT_FLOAT, DT_UINT8, DT_INT8, DT_INT32, DT_INT64, DT_BOOL are)"));
  }
  if (proto.tensor_shape().unknown_rank()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "the shape has unknown rank"));
  }
  Shape shape;
  int64_t elements = 1;
  for (const auto& dim : proto.tensor_shape().dim()) {
    if (dim.size() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "dimension ", shape.size(), " has negative size ", dim.size()));
    }
    // Overflow guard: no tensor that fits a message has more than 2^40 elements.
    if (dim.size() > 0 && elements > (int64_t{1} << 40) / dim.size()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "the shape is too large"));
    }
    elements *= dim.size();
    shape.push_back(dim.size());
  }
  const char* typed_field = TypedFieldFor(*dtype);
  int typed_count = 0;
  for (const TypedCounts& c : AllTypedCounts(proto)) {
    if (c.count == 0) continue;
    if (std::strcmp(c.field, typed_field) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "has ", c.field, " values but dtype ",
                                                     DataTypeName(proto.dtype()), " uses ",
                                                     typed_field, " or tensor_content"));
    }
    typed_count = c.count;
  }
  const size_t element_size = DTypeSize(*dtype);
  const std::string& content = proto.tensor_content();
  if (!content.empty() && typed_count > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "both tensor_content and ", typed_field, " are set"));
  }
  if (!content.empty() || typed_count == 0) {
    const uint64_t needed = static_cast<uint64_t>(elements) * element_size;
    if (content.size() != needed) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, "tensor_content has ", content.size(), " bytes but shape ", ShapeToString(shape),
          " of ", DataTypeName(proto.dtype()), " needs ", needed));
    }
    if (*dtype == DType::kBool) {
      for (size_t i = 0; i < content.size(); ++i) {
        if (static_cast<unsigned char>(content[i]) > 1) {
          return absl::InvalidArgumentError(
              absl::StrCat(prefix, "element ", i, " is not a valid DT_BOOL byte (0 or 1)"));
        }
      }
    }
    return Tensor::FromBytes(*dtype, shape, content.data(), content.size());
  }
  if (typed_count != elements) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, typed_count, " ", typed_field,
                                                   " values but shape ", ShapeToString(shape),
                                                   " needs ", elements));
  }
  Tensor out = Tensor::Zeros(*dtype, shape);
  switch (*dtype) {
    case DType::kF32:
      std::memcpy(out.data(), proto.float_val().data(), elements * sizeof(float));
      break;
    case DType::kS64:
      std::memcpy(out.data(), proto.int64_val().data(), elements * sizeof(int64_t));
      break;
    case DType::kBool: {
      bool* dst = out.data_as<bool>();
      for (int64_t i = 0; i < elements; ++i) dst[i] = proto.bool_val(static_cast<int>(i));
      break;
    }
    case DType::kS32:
      std::memcpy(out.data(), proto.int_val().data(), elements * sizeof(int32_t));
      break;
    case DType::kU8:
      if (absl::Status st = CopyInts<uint8_t>(proto.int_val(), out, name, 0, 255, proto.dtype());
          !st.ok()) {
        return st;
      }
      break;
    case DType::kS8:
      if (absl::Status st = CopyInts<int8_t>(proto.int_val(), out, name, -128, 127, proto.dtype());
          !st.ok()) {
        return st;
      }
      break;
  }
  return out;
}

void TensorToProto(const Tensor& tensor, tensorflow::TensorProto* proto) {
  proto->set_dtype(ToDataType(tensor.dtype()));
  auto* shape = proto->mutable_tensor_shape();
  shape->clear_dim();
  for (int64_t d : tensor.shape()) shape->add_dim()->set_size(d);
  if (tensor.byte_size() == 0) {
    proto->clear_tensor_content();
  } else {
    proto->set_tensor_content(static_cast<const char*>(tensor.data()), tensor.byte_size());
  }
}

}  // namespace octet::server
