// ConvInteger, QLinearConv and octet:QConv (QLinearConv plus fused Relu/Clip/residual sum and an
// optional FP32 output, created by the QDQ pass). QLinearConv/octet:QConv run on oneDNN's int8
// convolution when their parameters are constants and the weights are symmetric s8 (after
// subtracting their zero point); otherwise on the exact reference kernel.
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"
#include "core/ops/qlayer.h"
#include "core/ops/qref.h"
#include "core/ops/quant_ops.h"

namespace octet {
namespace {

using dnnl::memory;

const std::vector<std::string> kConvAttrs = {"auto_pad", "dilations", "group", "kernel_shape",
                                             "pads", "strides"};

absl::Status ValidateConvInteger(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, kConvAttrs); !s.ok()) return s;
  if (n.inputs.size() < 2 || n.inputs.size() > 4 || !n.HasInput(0) || !n.HasInput(1)) {
    return absl::InvalidArgumentError(n.Label() + ": needs x, w and optional zero points");
  }
  return absl::OkStatus();
}

absl::Status ValidateQLinearConv(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, kConvAttrs); !s.ok()) return s;
  const bool octet = n.domain == kOctetDomain;
  const size_t max_inputs = octet ? 12 : 9;
  if (n.inputs.size() < 8 || n.inputs.size() > max_inputs) {
    return absl::InvalidArgumentError(
        absl::StrCat(n.Label(), ": expects 8 or ", max_inputs, " inputs, got ", n.inputs.size()));
  }
  for (int i : {kQX, kQXs, kQW, kQWs}) {
    if (!n.HasInput(i)) return absl::InvalidArgumentError(n.Label() + ": missing required input");
  }
  if (!octet && (!n.HasInput(kQYs) || !n.post_ops.empty())) {
    return absl::InvalidArgumentError(n.Label() + ": y_scale is required");
  }
  return absl::OkStatus();
}

// Weights descriptor of ONNX's [M, C/g, k...] as oneDNN's [(g,) M/g, C/g, k...].
memory::desc OnnxConvWeightsDesc(const Shape& w, int64_t groups, memory::data_type dt) {
  memory::dims dims;
  if (groups > 1) dims.push_back(groups);
  dims.push_back(w[0] / groups);
  dims.insert(dims.end(), w.begin() + 1, w.end());
  return memory::desc(dims, dt, PlainTag(static_cast<int>(dims.size())));
}

struct ConvSetup {
  WindowGeometry geo;
  int64_t groups = 1, c_in = 0, c_out = 0;
  Shape out_shape;
};

absl::StatusOr<ConvSetup> Setup(BuildContext& ctx, const Shape& x, const Shape& w) {
  ConvSetup s;
  const int rank = static_cast<int>(x.size());
  if (rank < 3 || rank > 5 || w.size() != x.size()) {
    return ctx.Invalid(absl::StrCat("x ", ShapeToString(x), " and w ", ShapeToString(w),
                                    " must both be 3-D, 4-D or 5-D"));
  }
  s.groups = ctx.node().GetInt("group", 1);
  s.c_in = x[1];
  s.c_out = w[0];
  if (s.groups < 1 || s.c_in % s.groups != 0 || s.c_out % s.groups != 0 ||
      w[1] * s.groups != s.c_in) {
    return ctx.Invalid(absl::StrCat("w ", ShapeToString(w), " does not match input channels ",
                                    s.c_in, " with group ", s.groups));
  }
  std::vector<int64_t> in_sp(x.begin() + 2, x.end()), k_sp(w.begin() + 2, w.end());
  if (ctx.node().GetInts("kernel_shape", k_sp) != k_sp) return ctx.Invalid("kernel_shape does not match w");
  auto geo = ResolveWindow(ctx.node(), in_sp, k_sp, false);
  if (!geo.ok()) return geo.status();
  s.geo = *geo;
  s.out_shape = {x[0], s.c_out};
  s.out_shape.insert(s.out_shape.end(), s.geo.out.begin(), s.geo.out.end());
  return s;
}

IntConvGeometry RefGeometry(const ConvSetup& s, const Shape& x) {
  IntConvGeometry g;
  g.n = x[0];
  g.c = s.c_in;
  g.oc = s.c_out;
  g.groups = s.groups;
  const size_t sp = x.size() - 2;
  for (size_t i = 0; i < sp; ++i) {
    const size_t d = 3 - sp + i;  // right-align the spatial dims
    g.in[d] = x[2 + i];
    g.k[d] = s.geo.kernel[i];
    g.out[d] = s.geo.out[i];
    g.stride[d] = s.geo.strides[i];
    g.dil[d] = s.geo.dilations[i];
    g.pad[d] = s.geo.pad_begin[i];
  }
  return g;
}

// The exact reference path. Operand indices follow QLinearConv, or ConvInteger when `integer`.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildRefConv(BuildContext& ctx, const ConvSetup& s,
                                                       bool integer, DType y_dtype,
                                                       const std::string& why) {
  RefQLayerKernel::Spec spec;
  spec.label = ctx.node().Label();
  auto opt = [&](int i) -> const PlanValue* { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  const int xi = 0, wi = integer ? 1 : kQW;
  spec.x.value = &ctx.input(xi);
  spec.w.value = &ctx.input(wi);
  const Shape x_shape = spec.x.value->shape, w_shape = spec.w.value->shape;
  const int64_t out_sp = NumElements(s.out_shape) / (s.out_shape[0] * s.out_shape[1]);
  spec.x.axis = 1;
  spec.w.axis = 0;
  spec.w.zp_map = ChannelMap{NumElements(w_shape) / w_shape[0], w_shape[0]};
  spec.w.out_map = ChannelMap{out_sp, s.c_out};
  spec.bias_map = spec.w.out_map;
  if (integer) {
    spec.x.zero_point = opt(2);
    spec.w.zero_point = opt(3);
  } else if (auto st = ReadQLinearParams(ctx, s.c_out, s.out_shape, &spec); !st.ok()) {
    return st;
  }
  spec.y = &ctx.DefineOutput(0, y_dtype, s.out_shape);
  const IntConvGeometry g = RefGeometry(s, x_shape);
  const int threads = ctx.num_threads();
  spec.compute = [g, threads](const int32_t* x, const int32_t* w, int32_t* acc) {
    RefIntConv(g, x, w, acc, threads);
  };
  auto k = std::make_unique<RefQLayerKernel>(std::move(spec));
  k->set_note(why);
  return std::unique_ptr<OpKernel>(std::move(k));
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildConvInteger(BuildContext& ctx) {
  const PlanValue& x = ctx.input_any_layout(0);
  const PlanValue& w = ctx.input_any_layout(1);
  for (const PlanValue* v : {&x, &w}) {
    if (v->dtype != DType::kU8 && v->dtype != DType::kS8) {
      return ctx.Invalid(absl::StrCat("x and w must be uint8 or int8, got ", DTypeName(v->dtype)));
    }
  }
  auto s = Setup(ctx, x.shape, w.shape);
  if (!s.ok()) return s.status();
  return BuildRefConv(ctx, *s, true, DType::kS32, "");
}

// The oneDNN int8 convolution:
//   y = saturate(round(post_ops((acc + bias_acc) * x_scale * w_scale[oc] / y_scale)) + y_zp),
//   acc = sum (x - x_zp) * w_s8   (u8 x; an s8 x is shifted by +128 with its zero point).
absl::StatusOr<std::unique_ptr<OpKernel>> BuildQLinearConv(BuildContext& ctx) {
  const Node& node = ctx.node();
  const PlanValue& xv = ctx.input_any_layout(kQX);
  const PlanValue& wv = ctx.input_any_layout(kQW);
  for (const PlanValue* v : {&xv, &wv}) {
    if (v->dtype != DType::kU8 && v->dtype != DType::kS8) {
      return ctx.Invalid(absl::StrCat("x and w must be uint8 or int8, got ", DTypeName(v->dtype)));
    }
  }
  auto s = Setup(ctx, xv.shape, wv.shape);
  if (!s.ok()) return s.status();
  DType y_dtype = DType::kF32;
  if (ctx.has_input(kQYs)) y_dtype = ctx.has_input(kQYzp) ? ctx.input_any_layout(kQYzp).dtype : DType::kU8;
  if (y_dtype != DType::kF32 && y_dtype != DType::kU8 && y_dtype != DType::kS8) {
    return ctx.Invalid("y zero point must be uint8 or int8");
  }
  const std::optional<Tensor> w_view = ConstantInput(ctx, kQW);
  const Tensor* w_const = w_view ? &*w_view : nullptr;
  if (w_const == nullptr) return BuildRefConv(ctx, *s, false, y_dtype, "runtime weights");
  Int8Layer layer;
  std::string why;
  auto ok = PrepareInt8Layer(ctx, *w_const, s->c_out, &layer, &why);
  if (!ok.ok()) return ok.status();
  if (!*ok) return BuildRefConv(ctx, *s, false, y_dtype, why);

  const dnnl::engine& eng = ctx.engine();
  const WindowGeometry& g = s->geo;
  memory::dims strides(g.strides.begin(), g.strides.end()), dil;
  memory::dims pl(g.pad_begin.begin(), g.pad_begin.end()), pr(g.pad_end.begin(), g.pad_end.end());
  for (int64_t d : g.dilations) dil.push_back(d - 1);
  memory::dims wd;
  if (s->groups > 1) wd.push_back(s->groups);
  wd.push_back(s->c_out / s->groups);
  wd.insert(wd.end(), wv.shape.begin() + 1, wv.shape.end());
  const auto any = memory::format_tag::any;
  memory::desc src_any(ToDims(xv.shape), memory::data_type::u8, any);
  memory::desc w_any(wd, memory::data_type::s8, any);
  memory::desc b_md = layer.bias_acc.empty()
                          ? memory::desc()
                          : memory::desc({s->c_out}, memory::data_type::f32, memory::format_tag::a);
  memory::desc dst_any(ToDims(s->out_shape), ToDnnl(layer.y_dtype), any);
  dnnl::primitive_attr attr = MakeInt8Attr(layer, 1 << 1);
  dnnl::convolution_forward::primitive_desc pd;
  try {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::convolution_direct, src_any, w_any, b_md,
                                      dst_any, strides, dil, pl, pr);
    pd = dnnl::convolution_forward::primitive_desc(d, attr, eng);
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) throw;
    return BuildRefConv(ctx, *s, false, y_dtype, "no oneDNN int8 convolution for these attributes");
  }
  const std::string impl = ImplName(pd);
  auto kernel = std::make_unique<SequenceKernel>(
      absl::StrCat(impl, layer.reduced_7bit ? " (7-bit weights)" : ""));
  std::unordered_map<int, dnnl::memory> args;
  // Source: u8 in the primitive's layout.
  if (layer.shift_x) {
    dnnl::memory shifted;
    kernel->Add(MakeShiftS8ToU8(eng, ctx.input_any_layout(kQX), pd.src_desc(), &shifted));
    args[DNNL_ARG_SRC] = shifted;
  } else {
    auto src = ctx.input_as(kQX, pd.src_desc());
    if (!src.ok()) return src.status();
    args[DNNL_ARG_SRC] = (*src)->Memory(eng);
  }
  auto w_mem = CacheConstant(ctx, layer.reduced_7bit ? "w7" : "w8", layer.w_s8,
                             OnnxConvWeightsDesc(wv.shape, s->groups, memory::data_type::s8),
                             pd.weights_desc());
  if (!w_mem.ok()) return w_mem.status();
  args[DNNL_ARG_WEIGHTS] = *w_mem;
  if (!layer.bias_acc.empty()) {
    Tensor b = Tensor::FromFloats({s->c_out}, layer.bias_acc);
    auto b_mem = CacheConstant(ctx, layer.reduced_7bit ? "b7" : "b8", b, b_md, b_md);
    if (!b_mem.ok()) return b_mem.status();
    args[DNNL_ARG_BIAS] = *b_mem;
  }
  // The sum post-op reads the fused residual from dst. When nothing reads the residual later and
  // it already has dst's layout and type, dst takes over its buffer (in place); otherwise it is
  // copied into dst (in dst's layout, its own data type) before the convolution.
  PlanValue* residual = nullptr;
  if (layer.has_residual) {
    PlanValue& r = ctx.input_any_layout(kQR);
    if (r.shape != s->out_shape) return ctx.Unsupported("fused residual shape differs from the output");
    residual = &r;
  }
  memory::desc dst_md = pd.dst_desc();
  PlanValue* y = nullptr;
  if (residual != nullptr && residual->dtype == layer.y_dtype && residual->md == dst_md) {
    y = ctx.DefineOutputInPlace(0, residual);
    if (y != nullptr) residual = nullptr;
  }
  if (y == nullptr) y = &ctx.DefineOutput(0, layer.y_dtype, s->out_shape, &dst_md);
  args[DNNL_ARG_DST] = y->Memory(eng);
  if (residual != nullptr) {
    memory::desc r_md = dst_md;
    r_md.data.data_type = static_cast<dnnl_data_type_t>(ToDnnl(residual->dtype));
    dnnl::memory from = residual->Memory(eng);
    dnnl::memory to(r_md, eng, y->buffer.data());
    kernel->Add(std::make_unique<PrimitiveKernel>(
        dnnl::reorder(from, to),
        std::unordered_map<int, dnnl::memory>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, ""));
  }
  kernel->Add(std::make_unique<PrimitiveKernel>(dnnl::convolution_forward(pd), args, impl));
  (void)node;
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

}  // namespace

void RegisterQConvOps(OpRegistry& r) {
  AddOp(r, "ConvInteger", BuildConvInteger, ValidateConvInteger);
  AddOp(r, "QLinearConv", BuildQLinearConv, ValidateQLinearConv);
  AddOp(r, "QConv", BuildQLinearConv, ValidateQLinearConv, kOctetDomain);
}

}  // namespace octet
