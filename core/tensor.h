// Tensor: a typed, shaped, dense (C-order) block of memory that is either owned (64-byte aligned,
// shared between copies) or borrowed from a caller.
#ifndef OCTET_CORE_TENSOR_H_
#define OCTET_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet {

enum class DType : uint8_t { kF32, kU8, kS8, kS32, kS64, kBool };

// Bytes per element.
size_t DTypeSize(DType dtype);
// "f32", "u8", "s8", "s32", "s64", "bool".
const char* DTypeName(DType dtype);
absl::StatusOr<DType> DTypeFromName(absl::string_view name);

using Shape = std::vector<int64_t>;

// Product of the dimensions (1 for a scalar).
int64_t NumElements(const Shape& shape);
// "[1,3,224,224]".
std::string ShapeToString(const Shape& shape);

inline constexpr size_t kTensorAlignment = 64;

class Tensor {
 public:
  // An empty f32 scalar-less tensor with no storage; valid() is false.
  Tensor() = default;

  // Allocates zero-initialized, 64-byte aligned storage.
  static Tensor Zeros(DType dtype, Shape shape);
  // Wraps memory the caller keeps alive for the tensor's lifetime.
  static Tensor Borrow(DType dtype, Shape shape, void* data);
  // Copies `bytes` (which must be dtype size x elements) into new owned storage.
  static absl::StatusOr<Tensor> FromBytes(DType dtype, Shape shape, const void* bytes, size_t size);
  // Convenience for tests and constant folding.
  static Tensor FromFloats(Shape shape, const std::vector<float>& values);
  static Tensor FromInt64s(Shape shape, const std::vector<int64_t>& values);

  bool valid() const { return data_ != nullptr || NumElements(shape_) == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t byte_size() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype_); }
  bool owns_data() const { return storage_ != nullptr; }
  // Tensors sharing this one's storage, itself included (0 when borrowed).
  long use_count() const { return storage_.use_count(); }

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <typename T>
  T* data_as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data_);
  }

  // A deep copy with owned storage.
  Tensor Clone() const;
  // Same storage, new shape with the same element count.
  absl::StatusOr<Tensor> Reshaped(Shape shape) const;

  // Reads element i converted to double / int64 (slow; for constant folding, tests, printing).
  double GetAsDouble(int64_t i) const;
  int64_t GetAsInt64(int64_t i) const;
  // All elements as int64 (for shape-like constant tensors).
  std::vector<int64_t> ToInt64Vector() const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<void> storage_;  // null when borrowed
  void* data_ = nullptr;
};

}  // namespace octet

#endif  // OCTET_CORE_TENSOR_H_
