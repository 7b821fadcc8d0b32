// Helpers for the plain-loop paths of the element-wise, binary and reduction operators
// (core/ops/eltwise.cc, binary.cc, reduce.cc): dtype dispatch and a broadcasting row iterator.
#ifndef OCTET_CORE_OPS_ELEM_UTIL_H_
#define OCTET_CORE_OPS_ELEM_UTIL_H_

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "core/op_kernel.h"
#include "core/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

// Calls f(T{}) where T is the storage type of `dtype`. Booleans are stored as uint8_t 0/1, so
// kBool visits uint8_t: callers that need boolean semantics check the dtype themselves.
template <typename F>
decltype(auto) VisitDType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kU8:
    case DType::kBool:
      return f(uint8_t{});
    case DType::kS8:
      return f(int8_t{});
    case DType::kS32:
      return f(int32_t{});
    case DType::kS64:
      return f(int64_t{});
    case DType::kF32:
      break;
  }
  return f(float{});
}

// Elements below which loops stay single-threaded (thread start-up costs more than the work).
inline constexpr int64_t kParallelMinElements = 1 << 15;

// Splits [0, n) into `threads` contiguous chunks and calls fn(begin, end) once per chunk, in
// parallel when the work is big enough.
template <typename Fn>
void ParallelChunks(int64_t n, int64_t work, int threads, Fn fn) {
  const int t = work >= kParallelMinElements ? static_cast<int>(std::min<int64_t>(threads, n)) : 1;
  if (t <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(t)
  {
    const int64_t id = omp_get_thread_num(), nt = omp_get_num_threads();
    fn(n * id / nt, n * (id + 1) / nt);
  }
}

// Row iterator over a broadcast output (numpy rules). Dimensions that broadcast the same way for
// every input are merged, then the output is walked as `outer` rows of `inner` contiguous
// elements; within a row each input advances by 0 (broadcast) or 1 element. Row start offsets
// are advanced with an odometer, so there is no division per element (only one per thread).
class BroadcastLoop {
 public:
  static constexpr int kMaxInputs = 3;
  static constexpr int kMaxRank = 16;

  // `ins` are the inputs' shapes, each already broadcastable to `out` (checked by the caller);
  // shorter shapes are aligned to the right. False if the merged rank exceeds kMaxRank.
  bool Init(const Shape& out, const std::vector<Shape>& ins) {
    n_ = static_cast<int>(ins.size());
    const int rank = static_cast<int>(out.size());
    // Row-major strides of every input over the output's dimensions (0 where broadcast).
    std::vector<std::vector<int64_t>> st(n_, std::vector<int64_t>(rank, 0));
    for (int k = 0; k < n_; ++k) {
      const int r = static_cast<int>(ins[k].size());
      int64_t s = 1;
      for (int d = rank - 1; d >= 0; --d) {
        const int src = d - (rank - r);
        if (src < 0) break;
        st[k][d] = ins[k][src] == 1 ? 0 : s;
        s *= ins[k][src];
      }
    }
    // Merge dimension d into d+1 when, for every input, stride[d] == stride[d+1] * out[d+1].
    std::vector<int64_t> dims;
    std::vector<std::vector<int64_t>> strides(n_);
    for (int d = 0; d < rank; ++d) {
      if (out[d] == 1) continue;  // size-1 output dims contribute nothing
      bool merge = !dims.empty();
      for (int k = 0; k < n_ && merge; ++k) {
        merge = strides[k].back() == st[k][d] * out[d];
      }
      if (merge) {
        dims.back() *= out[d];
        for (int k = 0; k < n_; ++k) strides[k].back() = st[k][d];
      } else {
        dims.push_back(out[d]);
        for (int k = 0; k < n_; ++k) strides[k].push_back(st[k][d]);
      }
    }
    if (dims.empty()) {
      dims.push_back(1);
      for (int k = 0; k < n_; ++k) strides[k].push_back(0);
    }
    if (static_cast<int>(dims.size()) > kMaxRank + 1) return false;
    rank_ = static_cast<int>(dims.size()) - 1;  // outer dims
    inner_ = dims.back();
    outer_ = 1;
    for (int d = 0; d < rank_; ++d) {
      dims_[d] = dims[d];
      outer_ *= dims[d];
    }
    for (int k = 0; k < n_; ++k) {
      inner_stride_[k] = strides[k].back() == 0 ? 0 : 1;
      for (int d = 0; d < rank_; ++d) strides_[k][d] = strides[k][d];
    }
    return true;
  }

  int64_t inner() const { return inner_; }
  int64_t outer() const { return outer_; }
  int64_t inner_stride(int k) const { return inner_stride_[k]; }

  // Calls fn(out_offset, in_offsets, count) for runs of `count` contiguous output elements that
  // cover the output; input k's elements are at in_offsets[k] + i * inner_stride(k).
  template <typename Fn>
  void ForEachRun(int threads, Fn fn) const {
    // Long rows are split into blocks so a single row can still use every thread.
    constexpr int64_t kBlock = 1 << 14;
    const int64_t block = std::min(inner_, kBlock);
    const int64_t nblk = block == 0 ? 0 : (inner_ + block - 1) / block;
    const int64_t items = outer_ * nblk;
    ParallelChunks(items, outer_ * inner_, threads, [&](int64_t begin, int64_t end) {
      if (begin >= end) return;
      std::array<int64_t, kMaxRank> count{};
      std::array<int64_t, kMaxInputs> off{};
      int64_t row = begin / nblk, blk = begin % nblk;
      for (int d = rank_ - 1; d >= 0; --d) {
        const int64_t c = row % dims_[d];
        row /= dims_[d];
        count[d] = c;
        for (int k = 0; k < n_; ++k) off[k] += c * strides_[k][d];
      }
      row = begin / nblk;
      std::array<int64_t, kMaxInputs> in{};
      for (int64_t it = begin; it < end; ++it) {
        const int64_t start = blk * block;
        const int64_t len = std::min(block, inner_ - start);
        for (int k = 0; k < n_; ++k) in[k] = off[k] + start * inner_stride_[k];
        fn(row * inner_ + start, in.data(), len);
        if (++blk == nblk) {
          blk = 0;
          ++row;
          for (int d = rank_ - 1; d >= 0; --d) {
            for (int k = 0; k < n_; ++k) off[k] += strides_[k][d];
            if (++count[d] < dims_[d]) break;
            for (int k = 0; k < n_; ++k) off[k] -= strides_[k][d] * dims_[d];
            count[d] = 0;
          }
        }
      }
    });
  }

 private:
  int n_ = 0;
  int rank_ = 0;
  int64_t inner_ = 1, outer_ = 1;
  std::array<int64_t, kMaxRank> dims_{};
  std::array<std::array<int64_t, kMaxRank>, kMaxInputs> strides_{};
  std::array<int64_t, kMaxInputs> inner_stride_{};
};

// out[i] = f(a[i*sa], b[i*sb]) for i < n with sa, sb in {0, 1}; each case gets its own loop so
// the compiler can vectorize it.
template <typename O, typename A, typename B, typename F>
inline void BinaryRun(O* o, const A* a, int64_t sa, const B* b, int64_t sb, int64_t n, F f) {
  if (sa != 0 && sb != 0) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (sa != 0) {
    const B bv = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (sb != 0) {
    const A av = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    const O v = f(*a, *b);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

// Numpy (multidirectional) broadcast of `shapes`; false if they are incompatible.
inline bool BroadcastShapes(const std::vector<Shape>& shapes, Shape* out) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  out->assign(rank, 1);
  for (const Shape& s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = (*out)[rank - s.size() + i];
      const int64_t d = s[i];
      if (d == o || d == 1) continue;
      if (o != 1) return false;
      o = d;
    }
  }
  return true;
}

// A oneDNN eltwise kernel computing output 0 = alg(input 0) on FP32 in the input's own layout
// (the output gets the same layout). nullptr when oneDNN has no such primitive here, so the caller
// can fall back to a loop. Defined in eltwise.cc.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildDnnlEltwise(BuildContext& ctx, dnnl::algorithm alg,
                                                           float alpha, float beta);

}  // namespace octet

#endif  // OCTET_CORE_OPS_ELEM_UTIL_H_
