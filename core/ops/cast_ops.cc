// Cast and CastLike between Octet's dtypes (f32, u8, s8, s32, s64, bool).
//
// Conversions follow NumPy's astype, which the ONNX reference uses: float -> integer truncates
// toward zero; values outside the target range saturate and NaN becomes 0 (NumPy leaves those
// undefined; saturating is what a quantized server wants). Integer -> narrower integer wraps
// (two's complement), anything -> bool is "!= 0", bool -> number is 0/1.
#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/onnx_tensor.h"
#include "core/ops/indexed_copy.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using CastFn = void (*)(const void*, void*, int64_t);

template <typename D, typename S>
D CastValue(S v) {
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return 0;
    const double x = static_cast<double>(v);
    if (x <= static_cast<double>(std::numeric_limits<D>::lowest())) {
      return std::numeric_limits<D>::lowest();
    }
    if (x >= static_cast<double>(std::numeric_limits<D>::max())) {
      return std::numeric_limits<D>::max();
    }
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

// Bool is stored as one byte 0/1; `ToBool` marks a bool destination.
struct ToBool {};

template <typename S, typename D>
void CastLoop(const void* src, void* dst, int64_t n) {
  const S* s = static_cast<const S*>(src);
  if constexpr (std::is_same_v<D, ToBool>) {
    uint8_t* d = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = s[i] != S(0) ? 1 : 0;
  } else {
    D* d = static_cast<D*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = CastValue<D>(s[i]);
  }
}

template <typename S>
CastFn PickTo(DType to) {
  switch (to) {
    case DType::kF32:
      return &CastLoop<S, float>;
    case DType::kU8:
      return &CastLoop<S, uint8_t>;
    case DType::kS8:
      return &CastLoop<S, int8_t>;
    case DType::kS32:
      return &CastLoop<S, int32_t>;
    case DType::kS64:
      return &CastLoop<S, int64_t>;
    case DType::kBool:
      return &CastLoop<S, ToBool>;
  }
  return nullptr;
}

CastFn PickCast(DType from, DType to) {
  switch (from) {
    case DType::kF32:
      return PickTo<float>(to);
    case DType::kU8:
    case DType::kBool:  // 0/1 bytes read as numbers
      return PickTo<uint8_t>(to);
    case DType::kS8:
      return PickTo<int8_t>(to);
    case DType::kS32:
      return PickTo<int32_t>(to);
    case DType::kS64:
      return PickTo<int64_t>(to);
  }
  return nullptr;
}

absl::Status ValidateCast(const Node& n, int64_t) {
  if (n.op_type == "CastLike") {
    if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
    if (n.inputs.size() != 2) return absl::InvalidArgumentError(n.Label() + ": needs 2 inputs");
    return absl::OkStatus();
  }
  if (auto s = CheckAttributes(n, {"to"}); !s.ok()) return s;
  if (n.inputs.size() != 1) return absl::InvalidArgumentError(n.Label() + ": needs 1 input");
  if (!n.HasAttr("to"))
    return absl::InvalidArgumentError(n.Label() + ": attribute 'to' is required");
  auto to = DTypeFromOnnx(static_cast<int>(n.GetInt("to", 0)));
  if (!to.ok()) {
    return absl::UnimplementedError(
        absl::StrCat(n.Label(), ": attribute 'to': ", to.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildCast(BuildContext& ctx) {
  DType to;
  if (ctx.node().op_type == "CastLike") {
    to = ctx.input_any_layout(1).dtype;
  } else {
    auto t = DTypeFromOnnx(static_cast<int>(ctx.node().GetInt("to", 0)));
    if (!t.ok()) return ctx.Unsupported(std::string(t.status().message()));
    to = *t;
  }
  PlanValue& in = ctx.input(0);
  PlanValue& out = ctx.DefineOutput(0, to, in.shape);
  if (in.dtype == to)
    return MakeCopyKernel(in.buffer.data(), out.buffer.data(), out.buffer.byte_size());
  CastFn fn = PickCast(in.dtype, to);
  const void* src = in.buffer.data();
  void* dst = out.buffer.data();
  const int64_t n = NumElements(in.shape);
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [fn, src, dst, n]() {
        fn(src, dst, n);
        return absl::OkStatus();
      },
      absl::StrCat("ref:", DTypeName(in.dtype), "->", DTypeName(to))));
}

}  // namespace

void RegisterCastOps(OpRegistry& r) {
  AddOp(r, "Cast", BuildCast, ValidateCast);
  AddOp(r, "CastLike", BuildCast, ValidateCast);
}

}  // namespace octet
