#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octet {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kS32:
      return 4;
    case DType::kU8:
    case DType::kS8:
    case DType::kBool:
      return 1;
    case DType::kS64:
      return 8;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kU8:
      return "u8";
    case DType::kS8:
      return "s8";
    case DType::kS32:
      return "s32";
    case DType::kS64:
      return "s64";
    case DType::kBool:
      return "bool";
  }
  return "?";
}

absl::StatusOr<DType> DTypeFromName(absl::string_view name) {
  for (DType d : {DType::kF32, DType::kU8, DType::kS8, DType::kS32, DType::kS64, DType::kBool}) {
    if (name == DTypeName(d)) return d;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  // Round up so aligned_alloc's size requirement holds; always allocate at least one line so
  // zero-element tensors still have a valid pointer.
  size_t bytes = t.byte_size();
  size_t alloc = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (alloc == 0) alloc = kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, alloc);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, alloc);
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::Borrow(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

absl::StatusOr<Tensor> Tensor::FromBytes(DType dtype, Shape shape, const void* bytes,
                                         size_t size) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension in shape ",
                                                              ShapeToString(shape)));
  }
  Tensor t = Zeros(dtype, std::move(shape));
  if (size != t.byte_size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", t.byte_size(), " bytes for ",
                                                   DTypeName(dtype), ShapeToString(t.shape()),
                                                   ", got ", size));
  }
  if (size > 0) std::memcpy(t.data_, bytes, size);
  return t;
}

Tensor Tensor::FromFloats(Shape shape, const std::vector<float>& values) {
  Tensor t = Zeros(DType::kF32, std::move(shape));
  std::memcpy(t.data_, values.data(), std::min(values.size() * 4, t.byte_size()));
  return t;
}

Tensor Tensor::FromInt64s(Shape shape, const std::vector<int64_t>& values) {
  Tensor t = Zeros(DType::kS64, std::move(shape));
  std::memcpy(t.data_, values.data(), std::min(values.size() * 8, t.byte_size()));
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Zeros(dtype_, shape_);
  if (byte_size() > 0) std::memcpy(t.data_, data_, byte_size());
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(shape_),
                                                   " to ", ShapeToString(shape)));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::GetAsDouble(int64_t i) const {
  switch (dtype_) {
    case DType::kF32:
      return data_as<float>()[i];
    case DType::kU8:
      return data_as<uint8_t>()[i];
    case DType::kS8:
      return data_as<int8_t>()[i];
    case DType::kS32:
      return data_as<int32_t>()[i];
    case DType::kS64:
      return static_cast<double>(data_as<int64_t>()[i]);
    case DType::kBool:
      return data_as<uint8_t>()[i] ? 1.0 : 0.0;
  }
  return 0;
}

int64_t Tensor::GetAsInt64(int64_t i) const {
  switch (dtype_) {
    case DType::kF32:
      return static_cast<int64_t>(data_as<float>()[i]);
    case DType::kU8:
      return data_as<uint8_t>()[i];
    case DType::kS8:
      return data_as<int8_t>()[i];
    case DType::kS32:
      return data_as<int32_t>()[i];
    case DType::kS64:
      return data_as<int64_t>()[i];
    case DType::kBool:
      return data_as<uint8_t>()[i] ? 1 : 0;
  }
  return 0;
}

std::vector<int64_t> Tensor::ToInt64Vector() const {
  std::vector<int64_t> v(static_cast<size_t>(num_elements()));
  for (int64_t i = 0; i < num_elements(); ++i) v[i] = GetAsInt64(i);
  return v;
}

}  // namespace octet
