#include "server/batch_tensors.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace octet::server {
namespace {

bool SameRowShape(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.rank() != b.rank()) return false;
  for (int i = 1; i < a.rank(); ++i) {
    if (a.dim(i) != b.dim(i)) return false;
  }
  return true;
}

absl::Status CheckRange(const Tensor& t, int64_t row_begin, int64_t rows) {
  if (t.rank() < 1) return absl::InvalidArgumentError("a scalar has no batch dimension");
  if (row_begin < 0 || rows < 0 || row_begin + rows > t.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat("rows [", row_begin, ", ", row_begin + rows,
                                                   ") out of range for ",
                                                   ShapeToString(t.shape())));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t RowBytes(const Tensor& tensor) {
  int64_t n = static_cast<int64_t>(DTypeSize(tensor.dtype()));
  for (int i = 1; i < tensor.rank(); ++i) n *= tensor.dim(i);
  return n;
}

absl::StatusOr<Tensor> ConcatRows(absl::Span<const RowSlice> slices) {
  if (slices.empty()) return absl::InvalidArgumentError("nothing to concatenate");
  const Tensor& first = *slices[0].tensor;
  int64_t total_rows = 0;
  for (const RowSlice& s : slices) {
    if (s.tensor == nullptr) return absl::InvalidArgumentError("null tensor in slice");
    if (absl::Status st = CheckRange(*s.tensor, s.row_begin, s.rows); !st.ok()) return st;
    if (!SameRowShape(first, *s.tensor)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot concatenate ", DTypeName(s.tensor->dtype()), ShapeToString(s.tensor->shape()),
          " with ", DTypeName(first.dtype()), ShapeToString(first.shape())));
    }
    total_rows += s.rows;
  }
  if (slices.size() == 1 && slices[0].row_begin == 0 && slices[0].rows == first.dim(0)) {
    return first;
  }
  Shape shape = first.shape();
  shape[0] = total_rows;
  Tensor out = Tensor::Zeros(first.dtype(), shape);
  const int64_t row_bytes = RowBytes(first);
  char* dst = static_cast<char*>(out.data());
  for (const RowSlice& s : slices) {
    const size_t n = static_cast<size_t>(s.rows * row_bytes);
    if (n > 0) {
      std::memcpy(dst, static_cast<const char*>(s.tensor->data()) + s.row_begin * row_bytes, n);
    }
    dst += n;
  }
  return out;
}

absl::Status CopyRows(const Tensor& src, int64_t src_row, int64_t rows, Tensor& dst,
                      int64_t dst_row) {
  if (!SameRowShape(src, dst)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row shape mismatch: ", DTypeName(src.dtype()), ShapeToString(src.shape()),
                     " vs ", DTypeName(dst.dtype()), ShapeToString(dst.shape())));
  }
  if (absl::Status st = CheckRange(src, src_row, rows); !st.ok()) return st;
  if (absl::Status st = CheckRange(dst, dst_row, rows); !st.ok()) return st;
  const int64_t row_bytes = RowBytes(src);
  if (rows * row_bytes > 0) {
    std::memcpy(static_cast<char*>(dst.data()) + dst_row * row_bytes,
                static_cast<const char*>(src.data()) + src_row * row_bytes,
                static_cast<size_t>(rows * row_bytes));
  }
  return absl::OkStatus();
}

}  // namespace octet::server
