// Row-wise concatenation and splitting of tensors along the first (batch) dimension: how a batch
// of requests becomes one model input and how the model's outputs go back to each request.
#ifndef OCTET_SERVER_BATCH_TENSORS_H_
#define OCTET_SERVER_BATCH_TENSORS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace octet::server {

// Rows [row_begin, row_begin + rows) of `tensor` (rank >= 1).
struct RowSlice {
  const Tensor* tensor = nullptr;
  int64_t row_begin = 0;
  int64_t rows = 0;
};

// Bytes of one row (all dimensions but the first).
int64_t RowBytes(const Tensor& tensor);

// One tensor holding the slices' rows in order. All slices must agree on dtype and on every
// dimension but the first. A single slice covering its whole tensor is returned without a copy
// (sharing storage); otherwise the result owns fresh storage.
absl::StatusOr<Tensor> ConcatRows(absl::Span<const RowSlice> slices);

// Copies rows [src_row, src_row + rows) of `src` to rows [dst_row, dst_row + rows) of `dst`.
// dtype and non-batch dimensions must match.
absl::Status CopyRows(const Tensor& src, int64_t src_row, int64_t rows, Tensor& dst,
                      int64_t dst_row);

}  // namespace octet::server

#endif  // OCTET_SERVER_BATCH_TENSORS_H_
