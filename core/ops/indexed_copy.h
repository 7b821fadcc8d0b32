// IndexedCopy: the one data-movement routine behind Transpose, Slice, Expand, Tile, Pad,
// DepthToSpace/SpaceToDepth and nearest Resize. Each of those ops is "output element at
// coordinate (j0, ..., jn) = input element at sum_k offset_k[j_k]" (or a fill value), so the op
// only has to build one small table per output dimension at plan-build time; Run() walks the
// output in order, allocates nothing and does not care about the element type.
#ifndef OCTET_CORE_OPS_INDEXED_COPY_H_
#define OCTET_CORE_OPS_INDEXED_COPY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/op_kernel.h"
#include "core/tensor.h"

namespace octet {

class IndexedCopy {
 public:
  // Marks an output coordinate whose elements take the fill value (constant padding,
  // tf_crop_and_resize extrapolation).
  static constexpr int64_t kFill = -1;

  // `out_shape` is the (possibly higher-rank view of the) output, written densely in row-major
  // order. `src_offsets[k][j]` is the input element offset contributed by output coordinate j of
  // dimension k, or kFill. `fill_bits` holds the fill value's bytes (little end first).
  IndexedCopy(size_t element_size, Shape out_shape, std::vector<std::vector<int64_t>> src_offsets,
              uint64_t fill_bits = 0);

  // Row-major strides (in elements) of a dense tensor.
  static std::vector<int64_t> Strides(const Shape& shape);
  // offsets[j] = j * stride for j < n.
  static std::vector<int64_t> Linear(int64_t n, int64_t stride, int64_t start = 0,
                                     int64_t step = 1);

  // True when the copy is the identity (output = input, same order).
  bool IsIdentity() const;
  void Run(const void* src, void* dst, int num_threads) const;

 private:
  template <typename T>
  void RunTyped(const T* src, T* dst, int num_threads) const;

  size_t element_size_;
  Shape out_shape_;
  std::vector<std::vector<int64_t>> offsets_;
  uint64_t fill_bits_;
  bool last_contiguous_ = false;  // innermost dimension reads consecutive input elements
};

// The fill value `value` converted to `dtype`, as the bit pattern IndexedCopy expects.
uint64_t FillBits(DType dtype, double value);

// Helpers shared by the data-movement ops (shape_ops.cc, tensor_ops.cc, resize.cc).

// Input i as integers; it must be known at build time (initializer or folded shape arithmetic).
// `what` names the input in the error ("shape", "starts", ...).
absl::StatusOr<std::vector<int64_t>> ConstantInts(BuildContext& ctx, size_t i,
                                                  const std::string& what);
// Same for float inputs (Resize scales/roi).
absl::StatusOr<std::vector<float>> ConstantFloats(BuildContext& ctx, size_t i,
                                                  const std::string& what);
// A kernel that copies `bytes` from src to dst (Reshape/Flatten/Squeeze/Unsqueeze/Identity).
std::unique_ptr<OpKernel> MakeCopyKernel(const void* src, void* dst, size_t bytes);
// A kernel that runs `copy` from src to dst.
std::unique_ptr<OpKernel> MakeIndexedCopyKernel(IndexedCopy copy, const void* src, void* dst,
                                                int num_threads, std::string impl);

}  // namespace octet

#endif  // OCTET_CORE_OPS_INDEXED_COPY_H_
