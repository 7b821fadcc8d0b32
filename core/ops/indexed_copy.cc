#include "core/ops/indexed_copy.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace octet {

IndexedCopy::IndexedCopy(size_t element_size, Shape out_shape,
                         std::vector<std::vector<int64_t>> src_offsets, uint64_t fill_bits)
    : element_size_(element_size),
      out_shape_(std::move(out_shape)),
      offsets_(std::move(src_offsets)),
      fill_bits_(fill_bits) {
  if (!offsets_.empty()) {
    const std::vector<int64_t>& last = offsets_.back();
    last_contiguous_ = true;
    for (size_t j = 0; j < last.size(); ++j) {
      if (last[j] == kFill || last[j] != last[0] + static_cast<int64_t>(j)) {
        last_contiguous_ = false;
        break;
      }
    }
  }
}

std::vector<int64_t> IndexedCopy::Strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int k = static_cast<int>(shape.size()) - 2; k >= 0; --k) s[k] = s[k + 1] * shape[k + 1];
  return s;
}

std::vector<int64_t> IndexedCopy::Linear(int64_t n, int64_t stride, int64_t start, int64_t step) {
  std::vector<int64_t> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t j = 0; j < n; ++j) v[j] = (start + j * step) * stride;
  return v;
}

bool IndexedCopy::IsIdentity() const {
  std::vector<int64_t> strides = Strides(out_shape_);
  for (size_t k = 0; k < offsets_.size(); ++k) {
    for (size_t j = 0; j < offsets_[k].size(); ++j) {
      if (offsets_[k][j] != static_cast<int64_t>(j) * strides[k]) return false;
    }
  }
  return true;
}

template <typename T>
void IndexedCopy::RunTyped(const T* src, T* dst, int num_threads) const {
  T fill;
  std::memcpy(&fill, &fill_bits_, sizeof(T));
  const int rank = static_cast<int>(out_shape_.size());
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = out_shape_[rank - 1];
  const int64_t rows = NumElements(out_shape_) / std::max<int64_t>(inner, 1);
  if (inner == 0 || rows == 0) return;
  const std::vector<int64_t>& last = offsets_[rank - 1];
  const bool parallel = num_threads > 1 && rows * inner >= (1 << 16);
#pragma omp parallel num_threads(num_threads) if (parallel)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    // Odometer over the outer rank-1 dimensions, started at row `begin`.
    int64_t coord[16] = {0};
    std::vector<int64_t> big_coord;
    int64_t* c = coord;
    if (rank > 16) {
      big_coord.resize(rank);
      c = big_coord.data();
    }
    for (int64_t r = begin, k = rank - 2; k >= 0; --k) {
      c[k] = r % out_shape_[k];
      r /= out_shape_[k];
    }
    for (int64_t row = begin; row < end; ++row) {
      int64_t base = 0;
      bool fill_row = false;
      for (int k = 0; k < rank - 1; ++k) {
        const int64_t o = offsets_[k][c[k]];
        if (o == kFill) fill_row = true;
        base += o;
      }
      T* out = dst + row * inner;
      if (fill_row) {
        std::fill(out, out + inner, fill);
      } else if (last_contiguous_) {
        std::memcpy(out, src + base + last[0], inner * sizeof(T));
      } else {
        for (int64_t j = 0; j < inner; ++j) out[j] = last[j] == kFill ? fill : src[base + last[j]];
      }
      for (int k = rank - 2; k >= 0; --k) {
        if (++c[k] < out_shape_[k]) break;
        c[k] = 0;
      }
    }
  }
}

void IndexedCopy::Run(const void* src, void* dst, int num_threads) const {
  switch (element_size_) {
    case 1:
      RunTyped(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), num_threads);
      break;
    case 2:
      RunTyped(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), num_threads);
      break;
    case 4:
      RunTyped(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), num_threads);
      break;
    default:
      RunTyped(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), num_threads);
      break;
  }
}

namespace {
template <typename T>
uint64_t Bits(double v) {
  T t;
  if constexpr (std::is_floating_point_v<T>) {
    t = static_cast<T>(v);
  } else {
    // Saturate like a quantized constant would (and avoid UB for out-of-range values).
    if (std::isnan(v)) v = 0;
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) {
      t = std::numeric_limits<T>::lowest();
    } else if (v >= static_cast<double>(std::numeric_limits<T>::max())) {
      t = std::numeric_limits<T>::max();
    } else {
      t = static_cast<T>(v);
    }
  }
  uint64_t bits = 0;
  std::memcpy(&bits, &t, sizeof(T));
  return bits;
}
}  // namespace

uint64_t FillBits(DType dtype, double value) {
  switch (dtype) {
    case DType::kF32:
      return Bits<float>(value);
    case DType::kU8:
      return Bits<uint8_t>(value);
    case DType::kS8:
      return Bits<int8_t>(value);
    case DType::kS32:
      return Bits<int32_t>(value);
    case DType::kS64:
      return Bits<int64_t>(value);
    case DType::kBool:
      return value != 0 ? 1 : 0;
  }
  return 0;
}

absl::StatusOr<std::vector<int64_t>> ConstantInts(BuildContext& ctx, size_t i,
                                                  const std::string& what) {
  const Tensor* t = ctx.constant(i);
  if (t == nullptr) {
    return ctx.Unsupported(
        absl::StrCat("input '", what, "' must be a constant or computable from shapes"));
  }
  if (t->dtype() != DType::kS64 && t->dtype() != DType::kS32) {
    return ctx.Invalid(
        absl::StrCat("input '", what, "' must be int64 or int32, got ", DTypeName(t->dtype())));
  }
  return t->ToInt64Vector();
}

absl::StatusOr<std::vector<float>> ConstantFloats(BuildContext& ctx, size_t i,
                                                  const std::string& what) {
  const Tensor* t = ctx.constant(i);
  if (t == nullptr) {
    return ctx.Unsupported(
        absl::StrCat("input '", what, "' must be a constant or computable from shapes"));
  }
  if (t->dtype() != DType::kF32) {
    return ctx.Invalid(
        absl::StrCat("input '", what, "' must be float, got ", DTypeName(t->dtype())));
  }
  const float* p = t->data_as<float>();
  return std::vector<float>(p, p + t->num_elements());
}

std::unique_ptr<OpKernel> MakeCopyKernel(const void* src, void* dst, size_t bytes) {
  return std::make_unique<LambdaKernel>(
      [src, dst, bytes]() {
        if (bytes > 0 && src != dst) std::memcpy(dst, src, bytes);
        return absl::OkStatus();
      },
      "memcpy");
}

std::unique_ptr<OpKernel> MakeIndexedCopyKernel(IndexedCopy copy, const void* src, void* dst,
                                                int num_threads, std::string impl) {
  return std::make_unique<LambdaKernel>(
      [copy = std::move(copy), src, dst, num_threads]() {
        copy.Run(src, dst, num_threads);
        return absl::OkStatus();
      },
      std::move(impl));
}

}  // namespace octet
