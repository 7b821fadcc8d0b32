// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: where FP32 enters and leaves the
// INT8 parts of a plan. Plain loops: they run once per model input/output, and ONNX's division
// by the scale (not multiplication by its inverse) must be reproduced bit for bit.
#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"
#include "core/ops/qref.h"
#include "core/ops/quant_ops.h"
#include "core/quant/qparams.h"

namespace octet {
namespace {

absl::Status ValidateQdq(const Node& n, int64_t opset) {
  if (auto s = CheckAttributes(n, opset >= 13 ? std::vector<std::string>{"axis"}
                                              : std::vector<std::string>{});
      !s.ok()) {
    return s;
  }
  if (n.inputs.size() < 2 || n.inputs.size() > 3 || !n.HasInput(0) || !n.HasInput(1)) {
    return absl::InvalidArgumentError(n.Label() + ": needs x, scale and an optional zero point");
  }
  return absl::OkStatus();
}

// The parameters of a Q/DQ node, checked now when they are constants (so a bad model fails at
// load), otherwise read from the plan values on every run.
class QdqParams {
 public:
  QdqParams(BuildContext& ctx, DType default_dtype) : label_(ctx.node().Label()) {
    const Node& n = ctx.node();
    scale_ = &ctx.input(1);
    zp_ = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    default_dtype_ = default_dtype;
    axis_ = ctx.opset() >= 13 ? n.GetInt("axis", 1) : 1;
    shape_ = ctx.input_any_layout(0).shape;
  }
  absl::StatusOr<QuantParams> Read() const {
    const Tensor scale = View(*scale_);
    const std::optional<Tensor> zp = zp_ ? std::optional<Tensor>(View(*zp_)) : std::nullopt;
    auto p = ReadQuantParams(label_, scale, zp ? &*zp : nullptr, default_dtype_, axis_, shape_);
    if (!p.ok()) return p.status();
    if (p->dtype == DType::kS32 && default_dtype_ == DType::kU8) {
      return absl::UnimplementedError(label_ + ": quantizing to int32 is not supported");
    }
    return p;
  }
  bool constant() const { return scale_->is_constant && (zp_ == nullptr || zp_->is_constant); }
  DType zp_dtype() const { return zp_ ? zp_->dtype : default_dtype_; }
  // Elements per slice along the axis (channel of element i = (i / inner) % count).
  ChannelMap Map(const QuantParams& p) const {
    ChannelMap m;
    if (p.per_tensor()) return m;
    m.count = shape_[p.axis];
    for (size_t d = p.axis + 1; d < shape_.size(); ++d) m.inner *= shape_[d];
    return m;
  }

 private:
  std::string label_;
  const PlanValue* scale_;
  const PlanValue* zp_;
  DType default_dtype_;
  int64_t axis_;
  Shape shape_;
};

// RoundSaturate without a libm call, so the loops below vectorize: clamp to [lo, hi] first (NaN
// goes to lo), then round half to even by adding and subtracting 1.5 * 2^23, exact for
// |v| <= 2^22 in the default rounding mode (the one std::nearbyint uses).
inline int32_t RoundSaturateFast(float v, float lo, float hi) {
  v = v >= lo ? (v <= hi ? v : hi) : lo;
  const float kMagic = 12582912.0f;
  return static_cast<int32_t>((v + kMagic) - kMagic);
}

template <typename Q>
void QuantizeLoop(const float* x, Q* y, int64_t count, const QuantParams& p, ChannelMap map,
                  int threads) {
  const int32_t lo = static_cast<int32_t>(QMin(p.dtype)), hi = static_cast<int32_t>(QMax(p.dtype));
  // y = saturate(round_half_even(x / scale) + zero_point)
  if (p.per_tensor()) {
    const float scale = p.scales[0];
    const int32_t zp = p.zero_points[0];
    const float flo = static_cast<float>(lo - zp), fhi = static_cast<float>(hi - zp);
#pragma omp parallel for num_threads(threads) if (count > 65536)
    for (int64_t i = 0; i < count; ++i) {
      y[i] = static_cast<Q>(RoundSaturateFast(x[i] / scale, flo, fhi) + zp);
    }
    return;
  }
#pragma omp parallel for num_threads(threads) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) {
    const int64_t c = (i / map.inner) % map.count;
    const int32_t zp = p.zero_points[c];
    y[i] = static_cast<Q>(RoundSaturate(x[i] / p.scales[c], lo - zp, hi - zp) + zp);
  }
}

// Per-tensor quantization of a plain [N, C, spatial...] x into channels-last y (the layout of
// oneDNN's int8 convolutions), one pass instead of quantize + reorder:
//   y[n, s, c] = saturate(round_half_even(x[n, c, s] / scale) + zero_point)
template <typename Q>
void QuantizeToChannelsLast(const float* x, Q* y, int64_t n, int64_t c, int64_t spatial,
                            const QuantParams& p, int threads) {
  const int32_t zp = p.zero_points[0];
  const float flo = static_cast<float>(static_cast<int32_t>(QMin(p.dtype)) - zp);
  const float fhi = static_cast<float>(static_cast<int32_t>(QMax(p.dtype)) - zp);
  const float scale = p.scales[0];
  constexpr int64_t kBlock = 256;  // spatial positions per work item
  const int64_t blocks = (spatial + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) if (n * c * spatial > 65536)
  for (int64_t item = 0; item < n * blocks; ++item) {
    const int64_t b = item / blocks, s0 = (item % blocks) * kBlock;
    const int64_t s1 = std::min(spatial, s0 + kBlock);
    const float* xb = x + b * c * spatial;
    Q* yb = y + b * c * spatial;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* xc = xb + ch * spatial;
      for (int64_t s = s0; s < s1; ++s) {
        yb[s * c + ch] = static_cast<Q>(RoundSaturateFast(xc[s] / scale, flo, fhi) + zp);
      }
    }
  }
}

// True when every reader of the current node's output is an int8 convolution or pooling reading
// it as its data input: those get channels-last int8 sources from oneDNN.
bool ConsumersWantChannelsLast(const BuildContext& ctx) {
  bool graph_output = false;
  const std::vector<const Node*> readers = ctx.Consumers(0, &graph_output);
  if (graph_output || readers.empty()) return false;
  const std::string& y = ctx.node().outputs[0];
  for (const Node* r : readers) {
    const bool conv = (r->domain == kOctetDomain && r->op_type == "QConv") ||
                      (r->domain.empty() && r->op_type == "QLinearConv");
    const bool pool = r->domain == kOctetDomain && r->op_type == "QPool";
    if (!conv && !pool) return false;
    for (size_t k = 1; k < r->inputs.size(); ++k) {
      if (r->inputs[k] == y) return false;
    }
  }
  return true;
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildQuantize(BuildContext& ctx) {
  PlanValue& x = ctx.input(0);
  if (x.dtype != DType::kF32) {
    return ctx.Unsupported(absl::StrCat("x must be float32, got ", DTypeName(x.dtype)));
  }
  auto params = std::make_shared<QdqParams>(ctx, DType::kU8);
  const DType out_type = params->zp_dtype();
  if (out_type != DType::kU8 && out_type != DType::kS8) {
    return ctx.Unsupported(absl::StrCat("output type ", DTypeName(out_type),
                                        " (only uint8 and int8)"));
  }
  if (params->constant()) {
    if (auto p = params->Read(); !p.ok()) return p.status();
  }
  // A constant per-tensor quantization of a 4-D value read only by int8 convolutions / pooling
  // writes channels-last directly.
  bool channels_last = false;
  if (params->constant() && x.shape.size() == 4 && NumElements(x.shape) > 0) {
    auto p = params->Read();
    channels_last = p.ok() && p->per_tensor() && ConsumersWantChannelsLast(ctx);
  }
  dnnl::memory::desc nhwc;
  if (channels_last) {
    nhwc = dnnl::memory::desc(ToDims(x.shape), ToDnnl(out_type), dnnl::memory::format_tag::acdb);
  }
  PlanValue& y = ctx.DefineOutput(0, out_type, x.shape, channels_last ? &nhwc : nullptr);
  const float* xp = x.buffer.data_as<float>();
  void* yp = y.buffer.data();
  const int64_t count = NumElements(x.shape);
  const int threads = ctx.num_threads();
  if (channels_last) {
    const QuantParams p = *params->Read();
    const int64_t n = x.shape[0], c = x.shape[1], spatial = x.shape[2] * x.shape[3];
    return std::unique_ptr<OpKernel>(new LambdaKernel(
        [=]() -> absl::Status {
          if (p.dtype == DType::kU8) {
            QuantizeToChannelsLast(xp, static_cast<uint8_t*>(yp), n, c, spatial, p, threads);
          } else {
            QuantizeToChannelsLast(xp, static_cast<int8_t*>(yp), n, c, spatial, p, threads);
          }
          return absl::OkStatus();
        },
        "ref:quantize_to_nhwc"));
  }
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() -> absl::Status {
        auto p = params->Read();
        if (!p.ok()) return p.status();
        if (p->dtype == DType::kU8) {
          QuantizeLoop(xp, static_cast<uint8_t*>(yp), count, *p, params->Map(*p), threads);
        } else {
          QuantizeLoop(xp, static_cast<int8_t*>(yp), count, *p, params->Map(*p), threads);
        }
        return absl::OkStatus();
      },
      "ref:quantize"));
}

template <typename Q>
void DequantizeLoop(const Q* x, float* y, int64_t count, const QuantParams& p, ChannelMap map,
                    int threads) {
  // y = (x - zero_point) * scale
#pragma omp parallel for num_threads(threads) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) {
    const int64_t c = map.count == 1 ? 0 : (i / map.inner) % map.count;
    const int32_t zp = p.zero_points[p.per_tensor() ? 0 : c];
    y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp) * p.scales[p.per_tensor() ? 0 : c];
  }
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildDequantize(BuildContext& ctx) {
  PlanValue& x = ctx.input(0);
  if (x.dtype != DType::kU8 && x.dtype != DType::kS8 && x.dtype != DType::kS32) {
    return ctx.Invalid(absl::StrCat("x must be uint8, int8 or int32, got ", DTypeName(x.dtype)));
  }
  auto params = std::make_shared<QdqParams>(ctx, x.dtype);
  if (params->zp_dtype() != x.dtype) {
    return ctx.Invalid(absl::StrCat("zero point type ", DTypeName(params->zp_dtype()),
                                    " differs from x type ", DTypeName(x.dtype)));
  }
  if (params->constant()) {
    if (auto p = params->Read(); !p.ok()) return p.status();
  }
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, x.shape);
  const void* xp = x.buffer.data();
  float* yp = y.buffer.data_as<float>();
  const int64_t count = NumElements(x.shape);
  const int threads = ctx.num_threads();
  const DType dt = x.dtype;
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() -> absl::Status {
        auto p = params->Read();
        if (!p.ok()) return p.status();
        const ChannelMap map = params->Map(*p);
        if (dt == DType::kU8) {
          DequantizeLoop(static_cast<const uint8_t*>(xp), yp, count, *p, map, threads);
        } else if (dt == DType::kS8) {
          DequantizeLoop(static_cast<const int8_t*>(xp), yp, count, *p, map, threads);
        } else {
          DequantizeLoop(static_cast<const int32_t*>(xp), yp, count, *p, map, threads);
        }
        return absl::OkStatus();
      },
      "ref:dequantize"));
}

absl::Status ValidateDynamicQuantize(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  if (n.inputs.size() != 1) return absl::InvalidArgumentError(n.Label() + ": needs one input");
  return absl::OkStatus();
}

// DynamicQuantizeLinear: u8 with the range [min(0, min x), max(0, max x)]:
//   scale = (max - min) / 255, zero_point = saturate(round(0 - min / scale)),
//   y = saturate(round(x / scale) + zero_point).
absl::StatusOr<std::unique_ptr<OpKernel>> BuildDynamicQuantize(BuildContext& ctx) {
  PlanValue& x = ctx.input(0);
  if (x.dtype != DType::kF32) return ctx.Invalid("x must be float32");
  PlanValue& y = ctx.DefineOutput(0, DType::kU8, x.shape);
  PlanValue& ys = ctx.DefineOutput(1, DType::kF32, {});
  PlanValue& yz = ctx.DefineOutput(2, DType::kU8, {});
  const float* xp = x.buffer.data_as<float>();
  uint8_t* yp = y.buffer.data_as<uint8_t>();
  float* sp = ys.buffer.data_as<float>();
  uint8_t* zp = yz.buffer.data_as<uint8_t>();
  const int64_t count = NumElements(x.shape);
  const int threads = ctx.num_threads();
  const std::string label = ctx.node().Label();
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() -> absl::Status {
        float lo = 0.0f, hi = 0.0f;
        for (int64_t i = 0; i < count; ++i) {
          if (!std::isfinite(xp[i])) {
            return absl::InvalidArgumentError(label + ": input has a non-finite value");
          }
          lo = std::min(lo, xp[i]);
          hi = std::max(hi, xp[i]);
        }
        const float scale = (hi - lo) / 255.0f;
        QuantParams p;
        p.dtype = DType::kU8;
        p.scales = {scale > 0 ? scale : 1.0f};
        p.zero_points = {scale > 0 ? RoundSaturate(0.0f - lo / scale, 0, 255) : 0};
        *sp = scale;
        *zp = static_cast<uint8_t>(p.zero_points[0]);
        QuantizeLoop(xp, yp, count, p, ChannelMap{}, threads);
        return absl::OkStatus();
      },
      "ref:dynamic_quantize"));
}

}  // namespace

void RegisterQuantOps(OpRegistry& r) {
  AddOp(r, "QuantizeLinear", BuildQuantize, ValidateQdq);
  AddOp(r, "DequantizeLinear", BuildDequantize, ValidateQdq);
  AddOp(r, "DynamicQuantizeLinear", BuildDynamicQuantize, ValidateDynamicQuantize);
  RegisterQConvOps(r);
  RegisterQMatMulOps(r);
  RegisterQMiscOps(r);
}

}  // namespace octet
