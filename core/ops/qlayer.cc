#include "core/ops/qlayer.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/qref.h"
#include "core/weight_cache.h"

namespace octet {
namespace {

// A reorder with attributes that owns its destination buffer.
class AttrReorderKernel : public OpKernel {
 public:
  AttrReorderKernel(const dnnl::reorder::primitive_desc& pd, dnnl::memory from, dnnl::memory to,
                    Tensor storage)
      : reorder_(pd), from_(from), to_(to), storage_(std::move(storage)) {}
  absl::Status Run(dnnl::stream& stream) override {
    reorder_.execute(stream, from_, to_);
    return absl::OkStatus();
  }

 private:
  dnnl::reorder reorder_;
  dnnl::memory from_, to_;
  Tensor storage_;
};

// Typed constant inputs of the node (kept alive while parameters are read).
class Consts {
 public:
  explicit Consts(BuildContext& ctx) {
    for (size_t i = 0; i < ctx.num_inputs(); ++i) values_.push_back(ConstantInput(ctx, i));
  }
  const Tensor* get(size_t i) const {
    return i < values_.size() && values_[i] ? &*values_[i] : nullptr;
  }

 private:
  std::vector<std::optional<Tensor>> values_;
};

}  // namespace

absl::Status ReadQLinearParams(BuildContext& ctx, int64_t out_channels, const Shape& out_shape,
                               RefQLayerKernel::Spec* spec) {
  auto opt = [&](int i) -> const PlanValue* { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  spec->x.scale = &ctx.input(kQXs);
  spec->x.zero_point = opt(kQXzp);
  spec->w.scale = &ctx.input(kQWs);
  spec->w.zero_point = opt(kQWzp);
  spec->y_scale = opt(kQYs);
  spec->y_zero_point = opt(kQYzp);
  spec->bias = opt(kQBias);
  if (spec->bias && (spec->bias->shape.size() != 1 || spec->bias->shape[0] != out_channels)) {
    return ctx.Invalid(absl::StrCat("bias must have shape [", out_channels, "]"));
  }
  if (ctx.has_input(kQR)) {
    spec->residual.value = &ctx.input(kQR);
    spec->residual.scale = opt(kQRs);
    spec->residual.zero_point = opt(kQRzp);
    if (spec->residual.value->shape != out_shape) {
      return ctx.Unsupported("fused residual shape differs from the output");
    }
  }
  spec->post_ops = ctx.node().post_ops;
  return CheckInt8PostOps(ctx, spec->post_ops);
}

absl::Status CheckInt8PostOps(const BuildContext& ctx, const std::vector<PostOp>& post_ops) {
  for (const PostOp& p : post_ops) {
    if (p.kind != PostOp::Kind::kRelu && p.kind != PostOp::Kind::kLeakyRelu &&
        p.kind != PostOp::Kind::kClip && p.kind != PostOp::Kind::kSum) {
      return ctx.Unsupported(
          "only Relu, LeakyRelu, Clip and a residual sum can be fused into an "
          "int8 layer");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> PrepareInt8Layer(BuildContext& ctx, const Tensor& w_oc_major,
                                      int64_t out_channels, Int8Layer* out, std::string* why_not) {
  const Node& node = ctx.node();
  const std::string label = node.Label();
  for (int i : {kQXs, kQXzp, kQWs, kQWzp, kQYs, kQYzp, kQBias, kQRs, kQRzp}) {
    if (ctx.has_input(i) && ctx.constant(i) == nullptr) {
      *why_not = absl::StrCat("input '", node.inputs[i], "' is not a constant");
      return false;
    }
  }
  const Consts c(ctx);
  // x: per tensor, u8 (s8 is shifted by +128 with its zero point).
  const PlanValue& xv = ctx.input_any_layout(kQX);
  if (c.get(kQXs)->num_elements() > 1) {
    *why_not = "x is quantized per row or channel";
    return false;
  }
  auto xq = ReadQuantParams(label + ": x", *c.get(kQXs), c.get(kQXzp), xv.dtype, 1, xv.shape);
  if (!xq.ok()) return xq.status();
  if (xq->dtype != xv.dtype) {
    return ctx.Invalid(absl::StrCat("x zero point type ", DTypeName(xq->dtype),
                                    " differs from x type ", DTypeName(xv.dtype)));
  }
  if (xv.dtype != DType::kU8 && xv.dtype != DType::kS8) {
    return ctx.Invalid(absl::StrCat("x must be uint8 or int8, got ", DTypeName(xv.dtype)));
  }
  if (!xq->per_tensor()) {
    *why_not = "x is quantized per row";
    return false;
  }
  out->x = *xq;
  out->shift_x = xv.dtype == DType::kS8;
  if (out->shift_x) {
    out->x.dtype = DType::kU8;
    out->x.zero_points[0] += 128;
  }
  // w: symmetric s8 per output channel.
  auto wq = ReadQuantParams(label + ": w", *c.get(kQWs), c.get(kQWzp), w_oc_major.dtype(), 0,
                            w_oc_major.shape());
  if (!wq.ok()) return wq.status();
  if (wq->dtype != w_oc_major.dtype()) {
    return ctx.Invalid(absl::StrCat("w zero point type ", DTypeName(wq->dtype),
                                    " differs from w type ", DTypeName(w_oc_major.dtype())));
  }
  if (!ToSymmetricS8(w_oc_major, *wq, &out->w_s8)) {
    *why_not = "weights minus their zero point do not fit in int8";
    return false;
  }
  out->w_scales.resize(out_channels);
  for (int64_t oc = 0; oc < out_channels; ++oc) out->w_scales[oc] = wq->scale(oc);
  const std::vector<float> w_scales_orig = out->w_scales;
  if (!CpuHasInt8Vnni()) out->reduced_7bit = ReduceTo7Bits(&out->w_s8, &out->w_scales);
  // y.
  if (ctx.has_input(kQYs)) {
    auto yq = ReadQuantParams(label + ": y", *c.get(kQYs), c.get(kQYzp), DType::kU8, -1, {});
    if (!yq.ok()) return yq.status();
    if (!yq->per_tensor()) return ctx.Unsupported("y must be quantized per tensor");
    if (yq->dtype != DType::kU8 && yq->dtype != DType::kS8) {
      return ctx.Invalid("y zero point must be uint8 or int8");
    }
    out->y_dtype = yq->dtype;
    out->y_scale = yq->scales[0];
    out->y_zero_point = yq->zero_points[0];
  } else {
    out->y_dtype = DType::kF32;
  }
  // Bias in the accumulator domain of the weights actually used:
  //   int32 bias b (scale x_scale * w_scale_orig[oc]): b * w_scale_orig[oc] / w_scale[oc]
  //   float bias b (real):                              b / (x_scale * w_scale[oc])
  if (ctx.has_input(kQBias)) {
    const Tensor& b = *c.get(kQBias);
    if (b.num_elements() != out_channels ||
        (b.dtype() != DType::kS32 && b.dtype() != DType::kF32)) {
      return ctx.Invalid(absl::StrCat("bias must be int32 (or float for octet ops) with ",
                                      out_channels, " elements, got ", DTypeName(b.dtype()),
                                      ShapeToString(b.shape())));
    }
    out->bias_acc.resize(out_channels);
    for (int64_t oc = 0; oc < out_channels; ++oc) {
      if (b.dtype() == DType::kS32) {
        const float ratio = out->reduced_7bit ? w_scales_orig[oc] / out->w_scales[oc] : 1.0f;
        out->bias_acc[oc] = static_cast<float>(b.data_as<int32_t>()[oc]) * ratio;
      } else {
        out->bias_acc[oc] = b.data_as<float>()[oc] / (out->x.scales[0] * out->w_scales[oc]);
      }
    }
  }
  // Residual for a fused sum.
  if (ctx.has_input(kQR)) {
    const PlanValue& r = ctx.input_any_layout(kQR);
    out->has_residual = true;
    out->r_dtype = r.dtype;
    if (r.dtype == DType::kF32) {
      if (out->y_dtype != DType::kF32) return ctx.Unsupported("float residual into an int8 output");
    } else {
      if (!ctx.has_input(kQRs)) return ctx.Invalid("quantized residual without a scale");
      auto rq = ReadQuantParams(label + ": residual", *c.get(kQRs), c.get(kQRzp), r.dtype, -1, {});
      if (!rq.ok()) return rq.status();
      if (rq->dtype != r.dtype)
        return ctx.Invalid("residual zero point type differs from its data");
      if (out->y_dtype == DType::kF32) return ctx.Unsupported("int8 residual into a float output");
      out->r_scale = rq->scales[0];
      out->r_zero_point = rq->zero_points[0];
    }
  }
  out->post_ops = node.post_ops;
  if (auto s = CheckInt8PostOps(ctx, out->post_ops); !s.ok()) return s;
  return true;
}

dnnl::primitive_attr MakeInt8Attr(const Int8Layer& layer, int oc_mask) {
  dnnl::primitive_attr attr;
  // output_scale[oc] = x_scale * w_scale[oc] / y_scale (y_scale = 1 for an FP32 output).
  std::vector<float> scales(layer.w_scales.size());
  bool common = true;
  for (size_t oc = 0; oc < scales.size(); ++oc) {
    scales[oc] = layer.x.scales[0] * layer.w_scales[oc] / layer.y_scale;
    common = common && scales[oc] == scales[0];
  }
  if (common) scales.resize(1);
  attr.set_output_scales(common ? 0 : oc_mask, scales);
  if (layer.x.zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {layer.x.zero_points[0]});
  if (layer.y_dtype != DType::kF32 && layer.y_zero_point != 0) {
    attr.set_zero_points(DNNL_ARG_DST, 0, {layer.y_zero_point});
  }
  dnnl::post_ops ops;
  using alg = dnnl::algorithm;
  for (const PostOp& p : layer.post_ops) {
    switch (p.kind) {
      case PostOp::Kind::kRelu:
        ops.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f);
        break;
      case PostOp::Kind::kLeakyRelu:
        ops.append_eltwise(1.0f, alg::eltwise_relu, p.alpha, 0.0f);
        break;
      case PostOp::Kind::kClip:
        // Clip(v_real, lo, hi) / y_scale = Clip(v_real / y_scale, lo / y_scale, hi / y_scale).
        ops.append_eltwise(1.0f, alg::eltwise_clip_v2, p.alpha / layer.y_scale,
                           p.beta / layer.y_scale);
        break;
      case PostOp::Kind::kSum:
        // v += r_scale / y_scale * (r - r_zp): the residual's real value in y's units.
        if (layer.r_dtype == DType::kF32) {
          ops.append_sum(1.0f);
        } else {
          ops.append_sum(layer.r_scale / layer.y_scale, layer.r_zero_point, ToDnnl(layer.r_dtype));
        }
        break;
      default:
        break;  // refused by CheckInt8PostOps
    }
  }
  attr.set_post_ops(ops);
  return attr;
}

absl::StatusOr<dnnl::memory> CacheConstant(BuildContext& ctx, const std::string& tag,
                                           const Tensor& src, const dnnl::memory::desc& user_md,
                                           const dnnl::memory::desc& target_md) {
  const dnnl::engine& eng = ctx.engine();
  auto entry = ctx.weights().GetOrCreate(
      WeightCache::Key(absl::StrCat(ctx.node().outputs[0], "#", tag), target_md),
      [&]() -> absl::StatusOr<WeightCache::Entry> {
        WeightCache::Entry e;
        e.storage = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(target_md.get_size())});
        e.memory = dnnl::memory(target_md, eng, e.storage.data());
        dnnl::memory user(user_md, eng, const_cast<void*>(src.data()));
        dnnl::stream s(eng);
        dnnl::reorder(user, e.memory).execute(s, user, e.memory);
        s.wait();
        return e;
      });
  if (!entry.ok()) return entry.status();
  ctx.KeepAlive(entry->storage);
  return entry->memory;
}

std::unique_ptr<OpKernel> MakeShiftS8ToU8(const dnnl::engine& eng, PlanValue& x,
                                          const dnnl::memory::desc& u8_md, dnnl::memory* out) {
  // u8 = s8 + 128: a reorder with destination zero point 128.
  Tensor storage = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(u8_md.get_size())});
  *out = dnnl::memory(u8_md, eng, storage.data());
  dnnl::primitive_attr attr;
  attr.set_zero_points(DNNL_ARG_DST, 0, {128});
  dnnl::reorder::primitive_desc pd(eng, x.md, eng, u8_md, attr);
  return std::make_unique<AttrReorderKernel>(pd, x.Memory(eng), *out, std::move(storage));
}

}  // namespace octet
