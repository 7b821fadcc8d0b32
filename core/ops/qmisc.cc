// Octet's int8 data-movement ops created by the QDQ pass (core/passes_qdq.cc):
//   octet:QPool   [x, x_scale, x_zp, y_scale, y_zp]            MaxPool/AveragePool/GlobalAveragePool
//   octet:QConcat [y_scale, y_zp, (x_i, x_scale_i, x_zp_i)...]  Concat
//   octet:QAdd    [y_scale, y_zp, a, a_scale, a_zp, b, b_scale, b_zp] + Relu/Clip post-ops
// Parameters must be constants (the pass only creates these ops from initializers).
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"
#include "core/ops/qref.h"
#include "core/ops/quant_ops.h"
#include "core/quant/qparams.h"

namespace octet {
namespace {

using dnnl::memory;

// Constant per-tensor parameters from inputs (scale_i, zp_i) of the current node.
absl::StatusOr<QuantParams> ConstParams(BuildContext& ctx, size_t scale_i, size_t zp_i,
                                        DType data_type, const char* what) {
  const std::optional<Tensor> s = ConstantInput(ctx, scale_i);
  const std::optional<Tensor> z = ConstantInput(ctx, zp_i);
  if (!s || (ctx.has_input(zp_i) && !z)) {
    return ctx.Unsupported(absl::StrCat(what, " quantization parameters must be constants"));
  }
  auto p = ReadQuantParams(absl::StrCat(ctx.node().Label(), ": ", what), *s, z ? &*z : nullptr,
                           data_type, -1, {});
  if (!p.ok()) return p.status();
  if (!p->per_tensor()) return ctx.Unsupported(absl::StrCat(what, " must be quantized per tensor"));
  if (p->dtype != DType::kU8 && p->dtype != DType::kS8) {
    return ctx.Invalid(absl::StrCat(what, " must be uint8 or int8"));
  }
  return p;
}

// y = saturate(round_half_even(v / y_scale) + y_zp) for a real value v.
inline int32_t Requantize(float v, const QuantParams& y) {
  const int32_t lo = static_cast<int32_t>(QMin(y.dtype)), hi = static_cast<int32_t>(QMax(y.dtype));
  return RoundSaturate(v / y.scales[0], lo - y.zero_points[0], hi - y.zero_points[0]) +
         y.zero_points[0];
}

inline float Real(const void* p, DType t, int64_t i, const QuantParams& q) {
  const int32_t v = t == DType::kU8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
  return static_cast<float>(v - q.zero_points[0]) * q.scales[0];
}

inline void Store(void* p, DType t, int64_t i, int32_t v) {
  if (t == DType::kU8) {
    static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
  } else {
    static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
  }
}

absl::Status ValidatePool(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"mode", "auto_pad", "ceil_mode", "count_include_pad",
                                   "dilations", "kernel_shape", "pads", "storage_order", "strides"});
      !s.ok()) {
    return s;
  }
  if (n.inputs.size() != 5) return absl::InvalidArgumentError(n.Label() + ": expects 5 inputs");
  return absl::OkStatus();
}

// Max pooling runs on the quantized values (max commutes with the monotonic dequantization);
// average pooling averages in oneDNN to f32 (exact mean of the integers, excluding padding):
//   y = saturate(round((mean(x) - x_zp) * x_scale / y_scale) + y_zp)
absl::StatusOr<std::unique_ptr<OpKernel>> BuildQPool(BuildContext& ctx) {
  const Node& node = ctx.node();
  PlanValue& x = ctx.input_any_layout(0);
  auto xq = ConstParams(ctx, 1, 2, x.dtype, "x");
  if (!xq.ok()) return xq.status();
  if (xq->dtype != x.dtype) return ctx.Invalid("x zero point type differs from x");
  auto yq = ConstParams(ctx, 3, 4, DType::kU8, "y");
  if (!yq.ok()) return yq.status();
  const std::string mode = node.GetString("mode", "");
  const int rank = static_cast<int>(x.shape.size());
  if (rank < 3) return ctx.Invalid("pooling input must have rank >= 3");
  std::vector<int64_t> in_sp(x.shape.begin() + 2, x.shape.end());
  WindowGeometry g;
  if (mode == "GlobalAveragePool") {
    g.kernel = in_sp;
    g.strides.assign(in_sp.size(), 1);
    g.dilations.assign(in_sp.size(), 1);
    g.pad_begin.assign(in_sp.size(), 0);
    g.pad_end.assign(in_sp.size(), 0);
    g.out.assign(in_sp.size(), 1);
  } else if (mode == "MaxPool" || mode == "AveragePool") {
    if (node.GetInt("storage_order", 0) != 0) return ctx.Unsupported("storage_order 1");
    auto geo = ResolveWindow(node, in_sp, node.GetInts("kernel_shape"), node.GetInt("ceil_mode", 0) != 0);
    if (!geo.ok()) return geo.status();
    g = *geo;
  } else {
    return ctx.Invalid(absl::StrCat("unknown pooling mode '", mode, "'"));
  }
  const bool max = mode == "MaxPool";
  if (!max && node.GetInt("count_include_pad", 0) != 0) {
    for (size_t i = 0; i < g.pad_begin.size(); ++i) {
      if (g.pad_begin[i] != 0 || g.pad_end[i] != 0) {
        return ctx.Unsupported("count_include_pad with padding on quantized data");
      }
    }
  }
  Shape out_shape = {x.shape[0], x.shape[1]};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  memory::dims strides(g.strides.begin(), g.strides.end()), kernel(g.kernel.begin(), g.kernel.end());
  memory::dims dil, pl(g.pad_begin.begin(), g.pad_begin.end()), pr(g.pad_end.begin(), g.pad_end.end());
  for (int64_t d : g.dilations) dil.push_back(d - 1);
  const bool same = xq->dtype == yq->dtype && xq->scales[0] == yq->scales[0] &&
                    xq->zero_points[0] == yq->zero_points[0];
  const DType pool_dt = max ? x.dtype : DType::kF32;
  // Pool into dst directly when no requantization is needed; else into a temporary.
  memory::desc pool_dst(ToDims(out_shape), ToDnnl(pool_dt), memory::format_tag::any);
  const dnnl::engine& eng = ctx.engine();
  dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                   max ? dnnl::algorithm::pooling_max
                                       : dnnl::algorithm::pooling_avg_exclude_padding,
                                   x.md, pool_dst, strides, kernel, dil, pl, pr);
  dnnl::pooling_v2_forward::primitive_desc pd(d, eng);
  const std::string impl = ImplName(pd);
  auto kernel_seq = std::make_unique<SequenceKernel>(impl);
  memory::desc dst_md = pd.dst_desc();
  if (max && same) {
    PlanValue& y = ctx.DefineOutput(0, yq->dtype, out_shape, &dst_md);
    kernel_seq->Add(std::make_unique<PrimitiveKernel>(
        dnnl::pooling_v2_forward(pd),
        std::unordered_map<int, dnnl::memory>{{DNNL_ARG_SRC, x.Memory(eng)},
                                              {DNNL_ARG_DST, y.Memory(eng)}},
        impl));
    return std::unique_ptr<OpKernel>(std::move(kernel_seq));
  }
  auto tmp = std::make_shared<Tensor>(Tensor::Zeros(DType::kU8, {static_cast<int64_t>(dst_md.get_size())}));
  dnnl::memory tmp_mem(dst_md, eng, tmp->data());
  kernel_seq->Add(std::make_unique<PrimitiveKernel>(
      dnnl::pooling_v2_forward(pd),
      std::unordered_map<int, dnnl::memory>{{DNNL_ARG_SRC, x.Memory(eng)}, {DNNL_ARG_DST, tmp_mem}},
      impl));
  // Requantize in oneDNN (same layout): y = round((v - x_zp) * x_scale / y_scale) + y_zp.
  memory::desc y_md = dst_md;
  y_md.data.data_type = static_cast<dnnl_data_type_t>(ToDnnl(yq->dtype));
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {xq->scales[0] / yq->scales[0]});
  if (xq->zero_points[0] != 0) {
    if (max) {
      attr.set_zero_points(DNNL_ARG_SRC, 0, {xq->zero_points[0]});
    }
  }
  if (yq->zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {yq->zero_points[0]});
  PlanValue& y = ctx.DefineOutput(0, yq->dtype, out_shape, &y_md);
  if (!max && xq->zero_points[0] != 0) {
    // f32 mean: subtract the zero point with a linear shift before scaling (reorders take
    // integer zero points only for integer sources).
    const int64_t n = NumElements(out_shape);
    float* t = static_cast<float*>(tmp->data());
    const float zp = static_cast<float>(xq->zero_points[0]);
    kernel_seq->Add(std::make_unique<LambdaKernel>(
        [t, n, zp, tmp]() {
          for (int64_t i = 0; i < n; ++i) t[i] -= zp;
          return absl::OkStatus();
        },
        ""));
  }
  dnnl::reorder::primitive_desc rpd(eng, dst_md, eng, y_md, attr);
  dnnl::memory y_mem = y.Memory(eng);
  kernel_seq->Add(std::make_unique<PrimitiveKernel>(
      dnnl::reorder(rpd),
      std::unordered_map<int, dnnl::memory>{{DNNL_ARG_FROM, tmp_mem}, {DNNL_ARG_TO, y_mem}}, ""));
  kernel_seq->Add(std::make_unique<LambdaKernel>([tmp]() { return absl::OkStatus(); }, ""));
  return std::unique_ptr<OpKernel>(std::move(kernel_seq));
}

absl::Status ValidateConcat(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"axis"}); !s.ok()) return s;
  if (n.inputs.size() < 5 || (n.inputs.size() - 2) % 3 != 0) {
    return absl::InvalidArgumentError(n.Label() + ": expects y_scale, y_zp and input triples");
  }
  return absl::OkStatus();
}

// y = concat_i(requantize(x_i)), where requantize is the identity for inputs already in y's
// parameters and saturate(round((x - x_zp) * x_scale / y_scale) + y_zp) otherwise.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildQConcat(BuildContext& ctx) {
  auto yq = ConstParams(ctx, 0, 1, DType::kU8, "y");
  if (!yq.ok()) return yq.status();
  const size_t n_in = (ctx.num_inputs() - 2) / 3;
  const Shape first = ctx.input_any_layout(2).shape;
  auto axis_or = NormalizeAxis(ctx, ctx.node().GetInt("axis", 1), static_cast<int64_t>(first.size()));
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  struct Part {
    const void* data;
    DType dtype;
    QuantParams q;
    int64_t inner;  // elements per outer index
  };
  std::vector<Part> parts;
  Shape out_shape = first;
  out_shape[axis] = 0;
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= first[d];
  for (size_t i = 0; i < n_in; ++i) {
    PlanValue& x = ctx.input(2 + 3 * i);
    auto xq = ConstParams(ctx, 3 + 3 * i, 4 + 3 * i, x.dtype, "x");
    if (!xq.ok()) return xq.status();
    if (xq->dtype != x.dtype) return ctx.Invalid("input zero point type differs from its data");
    if (x.shape.size() != first.size()) return ctx.Invalid("inputs differ in rank");
    for (size_t d = 0; d < first.size(); ++d) {
      if (static_cast<int64_t>(d) != axis && x.shape[d] != first[d]) {
        return ctx.Invalid(absl::StrCat("input shapes ", ShapeToString(first), " and ",
                                        ShapeToString(x.shape), " differ off the concat axis"));
      }
    }
    out_shape[axis] += x.shape[axis];
    parts.push_back(Part{x.buffer.data(), x.dtype, *xq, NumElements(x.shape) / std::max<int64_t>(outer, 1)});
  }
  PlanValue& y = ctx.DefineOutput(0, yq->dtype, out_shape);
  void* yp = y.buffer.data();
  const int64_t y_inner = NumElements(out_shape) / std::max<int64_t>(outer, 1);
  const QuantParams yp_q = *yq;
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() {
        int64_t offset = 0;
        for (const Part& p : parts) {
          const bool same = p.dtype == yp_q.dtype && p.q.scales[0] == yp_q.scales[0] &&
                            p.q.zero_points[0] == yp_q.zero_points[0];
          for (int64_t o = 0; o < outer; ++o) {
            const int64_t src0 = o * p.inner, dst0 = o * y_inner + offset;
            if (same) {
              std::memcpy(static_cast<uint8_t*>(yp) + dst0,
                          static_cast<const uint8_t*>(p.data) + src0, p.inner);
            } else {
              for (int64_t i = 0; i < p.inner; ++i) {
                Store(yp, yp_q.dtype, dst0 + i, Requantize(Real(p.data, p.dtype, src0 + i, p.q), yp_q));
              }
            }
          }
          offset += p.inner;
        }
        return absl::OkStatus();
      },
      "ref:int8_concat"));
}

absl::Status ValidateAdd(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  if (n.inputs.size() != 8) return absl::InvalidArgumentError(n.Label() + ": expects 8 inputs");
  return absl::OkStatus();
}

// y = saturate(round(post_ops(a_scale * (a - a_zp) + b_scale * (b - b_zp)) / y_scale) + y_zp)
absl::StatusOr<std::unique_ptr<OpKernel>> BuildQAdd(BuildContext& ctx) {
  auto yq = ConstParams(ctx, 0, 1, DType::kU8, "y");
  if (!yq.ok()) return yq.status();
  PlanValue& a = ctx.input(2);
  PlanValue& b = ctx.input(5);
  auto aq = ConstParams(ctx, 3, 4, a.dtype, "a");
  if (!aq.ok()) return aq.status();
  auto bq = ConstParams(ctx, 6, 7, b.dtype, "b");
  if (!bq.ok()) return bq.status();
  if (aq->dtype != a.dtype || bq->dtype != b.dtype) return ctx.Invalid("zero point type differs from data");
  if (a.shape != b.shape) return ctx.Unsupported("quantized Add with broadcasting");
  for (const PostOp& p : ctx.node().post_ops) {
    if (p.kind != PostOp::Kind::kRelu && p.kind != PostOp::Kind::kClip) {
      return ctx.Unsupported("only Relu and Clip can follow a quantized Add");
    }
  }
  PlanValue& y = ctx.DefineOutput(0, yq->dtype, a.shape);
  const void* ap = a.buffer.data();
  const void* bp = b.buffer.data();
  void* out = y.buffer.data();
  const int64_t n = NumElements(a.shape);
  const QuantParams qa = *aq, qb = *bq, qy = *yq;
  const DType ta = a.dtype, tb = b.dtype;
  const std::vector<PostOp> post = ctx.node().post_ops;
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() {
        for (int64_t i = 0; i < n; ++i) {
          float v = Real(ap, ta, i, qa) + Real(bp, tb, i, qb);
          for (const PostOp& p : post) {
            v = p.kind == PostOp::Kind::kRelu ? std::max(v, 0.0f)
                                              : std::min(std::max(v, p.alpha), p.beta);
          }
          Store(out, qy.dtype, i, Requantize(v, qy));
        }
        return absl::OkStatus();
      },
      "ref:int8_add"));
}

}  // namespace

void RegisterQMiscOps(OpRegistry& r) {
  AddOp(r, "QPool", BuildQPool, ValidatePool, kOctetDomain);
  AddOp(r, "QConcat", BuildQConcat, ValidateConcat, kOctetDomain);
  AddOp(r, "QAdd", BuildQAdd, ValidateAdd, kOctetDomain);
}

}  // namespace octet
