// Element-wise operators of two or more inputs with numpy (multidirectional) broadcasting:
// arithmetic, comparison, logic, Where, PRelu and the variadic Max/Min/Sum/Mean.
//
// FP32 Add/Sub/Mul/Div/Max/Min/Sum/Mean run on oneDNN binary when one operand already has the
// output's shape: that operand stays in its producer's layout (blocked layouts flow through), an
// operand of the same shape is converted to it, and a broadcast operand is given in plain layout.
// Everything else runs plain loops over precomputed broadcast strides.
//
// Integer semantics (defined here, ONNX leaves some open): Add/Sub/Mul wrap around; Div truncates
// toward zero like C (the ONNX reference casts the true quotient); x / 0 and x % 0 give 0 instead of
// trapping; INT_MIN / -1 wraps to INT_MIN.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/elem_util.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using dnnl::memory;

enum class Op {
  kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kSum, kMean, kMod,
  kEqual, kLess, kGreater, kLessOrEqual, kGreaterOrEqual, kAnd, kOr, kXor, kWhere, kPRelu
};

bool IsComparison(Op op) {
  return op == Op::kEqual || op == Op::kLess || op == Op::kGreater || op == Op::kLessOrEqual ||
         op == Op::kGreaterOrEqual;
}
bool IsLogic(Op op) { return op == Op::kAnd || op == Op::kOr || op == Op::kXor; }
bool IsVariadic(Op op) {
  return op == Op::kMax || op == Op::kMin || op == Op::kSum || op == Op::kMean;
}
// Ops that had the `broadcast`/`axis` attributes before opset 7.
bool HasLegacyBroadcast(Op op) {
  return op == Op::kAdd || op == Op::kSub || op == Op::kMul || op == Op::kDiv || op == Op::kPow ||
         op == Op::kAnd || op == Op::kOr || op == Op::kXor || op == Op::kEqual ||
         op == Op::kLess || op == Op::kGreater;
}

// ---- Scalar functions ------------------------------------------------------------------------

template <typename T>
using Unsigned = std::make_unsigned_t<T>;

template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<Unsigned<T>>(a) + static_cast<Unsigned<T>>(b));
  } else {
    return a + b;
  }
}
template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<Unsigned<T>>(a) - static_cast<Unsigned<T>>(b));
  } else {
    return a - b;
  }
}
template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<Unsigned<T>>(a) * static_cast<Unsigned<T>>(b));
  } else {
    return a * b;
  }
}
template <typename T>
T SafeDiv(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return WrapSub<T>(0, a);
    }
  }
  return a / b;
}
// Integer remainder: C's (sign of the dividend) when `fmod`, else Python's (sign of the divisor).
template <typename T>
T IntMod(T a, T b, bool fmod) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return 0;
  }
  T r = static_cast<T>(a % b);
  if constexpr (std::is_signed_v<T>) {
    if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
  }
  return r;
}
template <typename T>
T Maximum(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  }
  return a < b ? b : a;
}
template <typename T>
T Minimum(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  }
  return b < a ? b : a;
}
// double -> integer without undefined behaviour for NaN or out-of-range values.
template <typename T>
T SaturateCast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return 0;
    if (v <= static_cast<double>(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}
template <typename TB, typename TE>
TB Power(TB base, TE e) {
  if constexpr (std::is_integral_v<TB> && std::is_integral_v<TE>) {
    if constexpr (std::is_signed_v<TE>) {
      if (e < 0) {
        if (base == 1) return 1;
        if constexpr (std::is_signed_v<TB>) {
          if (base == -1) return (e % 2 == 0) ? 1 : static_cast<TB>(-1);
        }
        return 0;  // |base| > 1: the true result truncates to 0 (0^-n is undefined; 0 here)
      }
    }
    TB result = 1, b = base;
    for (auto n = static_cast<uint64_t>(e); n != 0; n >>= 1) {
      if (n & 1) result = WrapMul(result, b);
      b = WrapMul(b, b);
    }
    return result;
  } else if constexpr (std::is_same_v<TB, float> && std::is_same_v<TE, float>) {
    return std::pow(base, e);
  } else {
    return SaturateCast<TB>(std::pow(static_cast<double>(base), static_cast<double>(e)));
  }
}

// ---- Loop kernels ----------------------------------------------------------------------------

// One broadcast step out = f(a, b) over a BroadcastLoop.
template <typename O, typename A, typename B, typename F>
std::function<void()> MakeStep(const BroadcastLoop& loop, void* out, const void* a, const void* b,
                               int threads, F f) {
  return [loop, o = static_cast<O*>(out), pa = static_cast<const A*>(a),
          pb = static_cast<const B*>(b), threads, f]() {
    const int64_t sa = loop.inner_stride(0), sb = loop.inner_stride(1);
    loop.ForEachRun(threads, [&](int64_t oo, const int64_t* in, int64_t n) {
      BinaryRun(o + oo, pa + in[0], sa, pb + in[1], sb, n, f);
    });
  };
}

// Step for an op whose operands have the same type T (everything but Pow and Where).
template <typename T>
std::function<void()> MakeTypedStep(Op op, bool fmod, const BroadcastLoop& l, void* o,
                                    const void* a, const void* b, int nt) {
  using U8 = uint8_t;
  switch (op) {
    case Op::kAdd:
    case Op::kSum:
    case Op::kMean:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return WrapAdd(x, y); });
    case Op::kSub:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return WrapSub(x, y); });
    case Op::kMul:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return WrapMul(x, y); });
    case Op::kDiv:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return SafeDiv(x, y); });
    case Op::kMax:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return Maximum(x, y); });
    case Op::kMin:
      return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return Minimum(x, y); });
    case Op::kMod:
      if constexpr (std::is_floating_point_v<T>) {
        return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T y) { return std::fmod(x, y); });
      } else {
        return MakeStep<T, T, T>(l, o, a, b, nt,
                                 [fmod](T x, T y) { return IntMod(x, y, fmod); });
      }
    case Op::kPRelu:
      if constexpr (std::is_unsigned_v<T>) {
        return MakeStep<T, T, T>(l, o, a, b, nt, [](T x, T) { return x; });
      } else {
        return MakeStep<T, T, T>(l, o, a, b, nt,
                                 [](T x, T s) { return x < 0 ? WrapMul(x, s) : x; });
      }
    case Op::kEqual:
      return MakeStep<U8, T, T>(l, o, a, b, nt, [](T x, T y) { return U8(x == y); });
    case Op::kLess:
      return MakeStep<U8, T, T>(l, o, a, b, nt, [](T x, T y) { return U8(x < y); });
    case Op::kGreater:
      return MakeStep<U8, T, T>(l, o, a, b, nt, [](T x, T y) { return U8(x > y); });
    case Op::kLessOrEqual:
      return MakeStep<U8, T, T>(l, o, a, b, nt, [](T x, T y) { return U8(x <= y); });
    case Op::kGreaterOrEqual:
      return MakeStep<U8, T, T>(l, o, a, b, nt, [](T x, T y) { return U8(x >= y); });
    case Op::kAnd:
      return MakeStep<U8, U8, U8>(l, o, a, b, nt, [](U8 x, U8 y) { return U8(x != 0 && y != 0); });
    case Op::kOr:
      return MakeStep<U8, U8, U8>(l, o, a, b, nt, [](U8 x, U8 y) { return U8(x != 0 || y != 0); });
    case Op::kXor:
      return MakeStep<U8, U8, U8>(l, o, a, b, nt, [](U8 x, U8 y) { return U8((x != 0) != (y != 0)); });
    case Op::kPow:
    case Op::kWhere:
      break;
  }
  return nullptr;
}

// out = cond ? x : y, all broadcast.
template <typename T>
std::function<void()> MakeWhereStep(const BroadcastLoop& loop, void* out, const void* c,
                                    const void* x, const void* y, int threads) {
  return [loop, o = static_cast<T*>(out), pc = static_cast<const uint8_t*>(c),
          px = static_cast<const T*>(x), py = static_cast<const T*>(y), threads]() {
    const int64_t sc = loop.inner_stride(0), sx = loop.inner_stride(1), sy = loop.inner_stride(2);
    loop.ForEachRun(threads, [&](int64_t oo, const int64_t* in, int64_t n) {
      const uint8_t* cc = pc + in[0];
      const T* xx = px + in[1];
      const T* yy = py + in[2];
      T* out_row = o + oo;
      for (int64_t i = 0; i < n; ++i) out_row[i] = cc[i * sc] != 0 ? xx[i * sx] : yy[i * sy];
    });
  };
}

// ---- Build -----------------------------------------------------------------------------------

dnnl::algorithm DnnlAlgorithm(Op op) {
  switch (op) {
    case Op::kAdd:
    case Op::kSum:
    case Op::kMean:
      return dnnl::algorithm::binary_add;
    case Op::kSub:
      return dnnl::algorithm::binary_sub;
    case Op::kMul:
      return dnnl::algorithm::binary_mul;
    case Op::kDiv:
      return dnnl::algorithm::binary_div;
    case Op::kMax:
      return dnnl::algorithm::binary_max;
    case Op::kMin:
      return dnnl::algorithm::binary_min;
    default:
      return dnnl::algorithm::undef;
  }
}

// Row-major descriptor of `shape` padded on the left with 1s to `rank` (rank 0 becomes {1}).
memory::desc PaddedPlainDesc(const Shape& shape, size_t rank) {
  Shape padded(rank - shape.size(), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  if (padded.empty()) padded.push_back(1);
  return memory::desc(ToDims(padded), memory::data_type::f32, PlainTag(padded.size()));
}

// The oneDNN path: out = in[first] (op) in[others...], chained in place on the output. Returns
// nullptr (no error) when oneDNN cannot do it, so the caller falls back to loops.
absl::StatusOr<std::unique_ptr<OpKernel>> TryBuildDnnl(BuildContext& ctx, Op op,
                                                       const std::vector<Shape>& shapes,
                                                       const Shape& out_shape) {
  const dnnl::algorithm alg = DnnlAlgorithm(op);
  if (alg == dnnl::algorithm::undef || NumElements(out_shape) == 0) return nullptr;
  const size_t n = shapes.size();
  // The first operand must have the output's shape (oneDNN broadcasts src1 only). Sub and Div
  // are not commutative, so only input 0 can be first for them.
  size_t first = n;
  for (size_t i = 0; i < n && first == n; ++i) {
    if (shapes[i] == out_shape && (i == 0 || op != Op::kSub) && (i == 0 || op != Op::kDiv)) {
      first = i;
    }
  }
  if (first == n) return nullptr;
  const size_t rank = out_shape.size();
  const dnnl::engine& eng = ctx.engine();
  for (bool any_layout : {true, false}) {
    PlanValue& src0 = any_layout ? ctx.input_any_layout(first) : ctx.input(first);
    if (!any_layout && IsPlain(ctx.input_any_layout(first).md)) break;  // already tried plain
    const memory::desc layout = src0.md;
    std::vector<dnnl::primitive> prims;
    std::vector<std::pair<size_t, memory::desc>> operands;  // input index, its descriptor
    dnnl::primitive scale;  // Mean: x (1/n), in place (a separate primitive, not a post-op:
                            // oneDNN 2.6's reference kernels mishandle eltwise post-ops)
    std::string impl;
    try {
      for (size_t i = 0; i < n; ++i) {
        if (i == first) continue;
        memory::desc md = shapes[i] == out_shape ? layout : PaddedPlainDesc(shapes[i], rank);
        dnnl::binary::desc d(alg, layout, md, layout);
        dnnl::binary::primitive_desc pd(d, eng);
        if (impl.empty()) impl = ImplName(pd);
        prims.push_back(dnnl::binary(pd));
        operands.emplace_back(i, md);
      }
      if (op == Op::kMean && n > 1) {
        dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::eltwise_linear, layout,
                                      1.0f / static_cast<float>(n), 0.0f);
        scale = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, eng));
      }
    } catch (const dnnl::error&) {
      continue;
    }
    // Every primitive exists: bind memories. The first step reads src0, later steps update the
    // output in place.
    PlanValue* a = &src0;
    std::vector<memory> src1s;
    for (auto& [i, md] : operands) {
      // Same shape: converted to src0's layout. Broadcast: the plain buffer seen with a padded
      // rank (its descriptor may equal `layout`, e.g. a scalar against [1, 1]).
      if (shapes[i] == out_shape) {
        auto v = ctx.input_as(i, layout);
        if (!v.ok()) return v.status();
        src1s.push_back((*v)->Memory(eng));
      } else {
        src1s.push_back(memory(md, eng, ctx.input(i).buffer.data()));
      }
    }
    PlanValue& dst = ctx.DefineOutput(0, DType::kF32, out_shape, &layout);
    memory dst_mem = dst.Memory(eng);
    auto kernel = std::make_unique<SequenceKernel>(impl);
    if (prims.empty()) {  // a single input: copy it
      memory from = a->Memory(eng);
      kernel->Add(std::make_unique<PrimitiveKernel>(
          dnnl::reorder(from, dst_mem),
          std::unordered_map<int, memory>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, dst_mem}},
          "reorder"));
    }
    for (size_t s = 0; s < prims.size(); ++s) {
      std::unordered_map<int, memory> m = {{DNNL_ARG_SRC_0, s == 0 ? a->Memory(eng) : dst_mem},
                                           {DNNL_ARG_SRC_1, src1s[s]},
                                           {DNNL_ARG_DST, dst_mem}};
      kernel->Add(std::make_unique<PrimitiveKernel>(prims[s], std::move(m), impl));
    }
    if (scale) {
      kernel->Add(std::make_unique<PrimitiveKernel>(
          scale, std::unordered_map<int, memory>{{DNNL_ARG_SRC, dst_mem}, {DNNL_ARG_DST, dst_mem}},
          impl));
    }
    return std::unique_ptr<OpKernel>(std::move(kernel));
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildLoops(BuildContext& ctx, Op op,
                                                     const std::vector<Shape>& shapes,
                                                     const Shape& out_shape, DType out_dtype) {
  const size_t n = shapes.size();
  const int nt = ctx.num_threads();
  std::vector<const void*> ins;
  for (size_t i = 0; i < n; ++i) ins.push_back(ctx.input(i).buffer.data());
  const DType in_dtype = ctx.input(op == Op::kWhere ? 1 : 0).dtype;
  PlanValue& out = ctx.DefineOutput(0, out_dtype, out_shape);
  void* o = out.buffer.data();
  std::vector<std::function<void()>> steps;
  auto loop_for = [&](const std::vector<Shape>& s, BroadcastLoop* l) -> absl::Status {
    if (!l->Init(out_shape, s)) return ctx.Unsupported("broadcast has too many dimensions");
    return absl::OkStatus();
  };
  BroadcastLoop l;
  if (op == Op::kWhere) {
    if (auto s = loop_for(shapes, &l); !s.ok()) return s;
    steps.push_back(VisitDType(in_dtype, [&](auto tag) {
      return MakeWhereStep<decltype(tag)>(l, o, ins[0], ins[1], ins[2], nt);
    }));
  } else if (op == Op::kPow) {
    if (auto s = loop_for(shapes, &l); !s.ok()) return s;
    steps.push_back(VisitDType(in_dtype, [&](auto base) {
      using TB = decltype(base);
      return VisitDType(ctx.input(1).dtype, [&](auto exp) {
        using TE = decltype(exp);
        return MakeStep<TB, TB, TE>(l, o, ins[0], ins[1], nt,
                                    [](TB x, TE y) { return Power<TB, TE>(x, y); });
      });
    }));
  } else if (n == 1) {
    const void* src = ins[0];
    const size_t bytes = out.buffer.byte_size();
    steps.push_back([o, src, bytes]() { std::memcpy(o, src, bytes); });
  } else {
    const bool fmod = ctx.node().GetInt("fmod", 0) != 0;
    for (size_t i = 1; i < n; ++i) {
      // Step 1 combines inputs 0 and 1; later steps fold input i into the output in place.
      const void* a = i == 1 ? ins[0] : o;
      const Shape& a_shape = i == 1 ? shapes[0] : out_shape;
      if (auto s = loop_for({a_shape, shapes[i]}, &l); !s.ok()) return s;
      steps.push_back(VisitDType(in_dtype, [&](auto tag) {
        return MakeTypedStep<decltype(tag)>(op, fmod, l, o, a, ins[i], nt);
      }));
    }
  }
  if (op == Op::kMean && n > 1) {
    const int64_t count = out.buffer.num_elements();
    steps.push_back(VisitDType(in_dtype, [&](auto tag) -> std::function<void()> {
      using T = decltype(tag);
      T* p = static_cast<T*>(o);
      const T div = static_cast<T>(n);
      return [p, div, count]() {
        for (int64_t i = 0; i < count; ++i) p[i] = static_cast<T>(p[i] / div);
      };
    }));
  }
  for (const auto& s : steps) {
    if (!s) return ctx.Unsupported(absl::StrCat(DTypeName(in_dtype), " inputs"));
  }
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [steps = std::move(steps)]() {
        for (const auto& s : steps) s();
        return absl::OkStatus();
      },
      "ref:loop"));
}

absl::StatusOr<std::unique_ptr<OpKernel>> Build(BuildContext& ctx, Op op) {
  const Node& node = ctx.node();
  const size_t n = ctx.num_inputs();
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.has_input(i)) return ctx.Invalid(absl::StrCat("input ", i, " is missing"));
    const PlanValue& v = ctx.input_any_layout(i);
    shapes.push_back(v.shape);
    dtypes.push_back(v.dtype);
  }
  // Before opset 7, B was broadcast only with broadcast=1, aligned at `axis` (default: the end).
  if (ctx.opset() < 7 && HasLegacyBroadcast(op) && node.GetInt("broadcast", 0) != 0) {
    const int64_t ra = static_cast<int64_t>(shapes[0].size());
    const int64_t rb = static_cast<int64_t>(shapes[1].size());
    const int64_t axis = node.GetInt("axis", ra - rb);
    if (axis < 0 || axis + rb > ra) {
      return ctx.Invalid(absl::StrCat("cannot broadcast ", ShapeToString(shapes[1]), " to ",
                                      ShapeToString(shapes[0]), " at axis ", axis));
    }
    Shape b(axis, 1);
    b.insert(b.end(), shapes[1].begin(), shapes[1].end());
    b.resize(ra, 1);
    shapes[1] = b;
  }
  // Before opset 7 a 1-D PRelu slope of size C applies per channel (axis 1).
  if (op == Op::kPRelu && ctx.opset() < 7 && shapes[0].size() >= 2 && shapes[1].size() == 1 &&
      shapes[1][0] == shapes[0][1]) {
    Shape b = {shapes[1][0]};
    b.resize(shapes[0].size() - 1, 1);
    shapes[1] = b;
  }
  // Type rules.
  DType out_dtype = dtypes[0];
  const size_t first_value = op == Op::kWhere ? 1 : 0;
  if (op == Op::kWhere) {
    if (dtypes[0] != DType::kBool) return ctx.Invalid("condition must be bool");
    out_dtype = dtypes[1];
  }
  for (size_t i = first_value; i < n; ++i) {
    if (op != Op::kPow && dtypes[i] != dtypes[first_value]) {
      return ctx.Invalid(absl::StrCat("inputs have different types (", DTypeName(dtypes[first_value]),
                                      " and ", DTypeName(dtypes[i]), ")"));
    }
    const bool is_bool = dtypes[i] == DType::kBool;
    if (IsLogic(op) && !is_bool) return ctx.Invalid("inputs must be bool");
    if (is_bool && !IsLogic(op) && op != Op::kEqual && op != Op::kWhere) {
      return ctx.Invalid("bool inputs are not allowed");
    }
  }
  if (IsLogic(op) || IsComparison(op)) out_dtype = DType::kBool;
  if (op == Op::kMod && dtypes[0] == DType::kF32 && node.GetInt("fmod", 0) == 0) {
    return ctx.Invalid("fmod must be 1 for floating-point inputs");
  }
  Shape out_shape;
  if (!BroadcastShapes(shapes, &out_shape)) {
    std::string all;
    for (const Shape& s : shapes) absl::StrAppend(&all, all.empty() ? "" : " ", ShapeToString(s));
    return ctx.Invalid(absl::StrCat("shapes ", all, " cannot be broadcast together"));
  }
  if (op == Op::kPRelu && out_shape != shapes[0]) {
    return ctx.Invalid(absl::StrCat("slope ", ShapeToString(shapes[1]),
                                    " does not broadcast to X ", ShapeToString(shapes[0])));
  }
  // x^2 and x^0.5 with a constant exponent (LayerNorm and GELU decompositions) are oneDNN
  // eltwise square and sqrt in any layout.
  if (op == Op::kPow && dtypes[0] == DType::kF32 && shapes[0] == out_shape &&
      ctx.constant(1) != nullptr && ctx.constant(1)->num_elements() == 1) {
    const double e = ctx.constant(1)->GetAsDouble(0);
    if (e == 2.0 || e == 0.5) {
      auto k = BuildDnnlEltwise(
          ctx, e == 2.0 ? dnnl::algorithm::eltwise_square : dnnl::algorithm::eltwise_sqrt, 0, 0);
      if (!k.ok() || *k != nullptr) return k;
    }
  }
  if (out_dtype == DType::kF32) {
    auto k = TryBuildDnnl(ctx, op, shapes, out_shape);
    if (!k.ok() || *k != nullptr) return k;
  }
  return BuildLoops(ctx, op, shapes, out_shape, out_dtype);
}

absl::Status ValidateCount(const Node& n, size_t lo, size_t hi) {
  if (n.inputs.size() < lo || n.inputs.size() > hi) {
    return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": expects ", lo,
                                                   lo == hi ? "" : " or more", " inputs, got ",
                                                   n.inputs.size()));
  }
  return absl::OkStatus();
}

void Add(OpRegistry& r, const std::string& type, Op op) {
  AddOp(
      r, type, [op](BuildContext& ctx) { return Build(ctx, op); },
      [op](const Node& n, int64_t opset) -> absl::Status {
        std::vector<std::string> attrs;
        if (opset < 7 && HasLegacyBroadcast(op)) attrs = {"broadcast", "axis"};
        if (opset < 6) attrs.push_back("consumed_inputs");
        if (op == Op::kMod) attrs.push_back("fmod");
        if (auto s = CheckAttributes(n, attrs); !s.ok()) return s;
        if (IsVariadic(op)) return ValidateCount(n, 1, 1 << 20);
        return ValidateCount(n, op == Op::kWhere ? 3 : 2, op == Op::kWhere ? 3 : 2);
      });
}

}  // namespace

void RegisterBinaryOps(OpRegistry& r) {
  Add(r, "Add", Op::kAdd);
  Add(r, "Sub", Op::kSub);
  Add(r, "Mul", Op::kMul);
  Add(r, "Div", Op::kDiv);
  Add(r, "Pow", Op::kPow);
  Add(r, "Max", Op::kMax);
  Add(r, "Min", Op::kMin);
  Add(r, "Sum", Op::kSum);
  Add(r, "Mean", Op::kMean);
  Add(r, "Mod", Op::kMod);
  Add(r, "Equal", Op::kEqual);
  Add(r, "Less", Op::kLess);
  Add(r, "Greater", Op::kGreater);
  Add(r, "LessOrEqual", Op::kLessOrEqual);
  Add(r, "GreaterOrEqual", Op::kGreaterOrEqual);
  Add(r, "And", Op::kAnd);
  Add(r, "Or", Op::kOr);
  Add(r, "Xor", Op::kXor);
  Add(r, "Where", Op::kWhere);
  Add(r, "PRelu", Op::kPRelu);
}

}  // namespace octet
