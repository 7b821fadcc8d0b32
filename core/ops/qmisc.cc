// Octet's int8 data-movement ops created by the QDQ pass (core/passes_qdq.cc):
//   octet:QPool   [x, x_scale, x_zp, y_scale, y_zp]            MaxPool/AveragePool/GlobalAveragePool
//   octet:QConcat [y_scale, y_zp, (x_i, x_scale_i, x_zp_i)...]  Concat
//   octet:QAdd    [y_scale, y_zp, a, a_scale, a_zp, b, b_scale, b_zp] + Relu/Clip post-ops
// Parameters must be constants (the pass only creates these ops from initializers).
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

// `md` with another data type (same dims and layout).
memory::desc WithType(memory::desc md, DType dtype) {
  md.data.data_type = static_cast<dnnl_data_type_t>(ToDnnl(dtype));
  return md;
}

bool SameQuant(const QuantParams& a, const QuantParams& b) {
  return a.dtype == b.dtype && a.scales[0] == b.scales[0] && a.zero_points[0] == b.zero_points[0];
}

// Concatenation on oneDNN in the producers' layouts: inputs already in y's parameters are read
// as they are; others are first requantized by a reorder in their own layout,
//   x' = saturate(round((x - x_zp) * x_scale / y_scale) + y_zp).
// Returns nullptr when oneDNN has no implementation (the caller uses the scalar kernel).
absl::StatusOr<std::unique_ptr<OpKernel>> BuildDnnlConcat(BuildContext& ctx, const QuantParams& y,
                                                          int64_t axis, const Shape& out_shape) {
  const dnnl::engine& eng = ctx.engine();
  const size_t n_in = (ctx.num_inputs() - 2) / 3;
  auto seq = std::make_unique<SequenceKernel>("");
  std::vector<memory::desc> mds;
  std::unordered_map<int, memory> args;
  std::vector<std::shared_ptr<Tensor>> temps;
  for (size_t i = 0; i < n_in; ++i) {
    PlanValue& x = ctx.input_any_layout(2 + 3 * i);
    auto xq = ConstParams(ctx, 3 + 3 * i, 4 + 3 * i, x.dtype, "x");
    if (!xq.ok()) return xq.status();
    memory mem = x.Memory(eng);
    if (!SameQuant(*xq, y)) {
      const memory::desc t_md = WithType(x.md, y.dtype);
      dnnl::primitive_attr attr;
      attr.set_output_scales(0, {xq->scales[0] / y.scales[0]});
      if (xq->zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {xq->zero_points[0]});
      if (y.zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {y.zero_points[0]});
      temps.push_back(std::make_shared<Tensor>(
          Tensor::Zeros(DType::kU8, {static_cast<int64_t>(t_md.get_size())})));
      memory t(t_md, eng, temps.back()->data());
      dnnl::reorder::primitive_desc rpd(eng, x.md, eng, t_md, attr);
      seq->Add(std::make_unique<PrimitiveKernel>(
          dnnl::reorder(rpd),
          std::unordered_map<int, memory>{{DNNL_ARG_FROM, mem}, {DNNL_ARG_TO, t}}, ""));
      mem = t;
    }
    mds.push_back(mem.get_desc());
    args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] = mem;
  }
  memory::desc dst_any(ToDims(out_shape), ToDnnl(y.dtype), memory::format_tag::any);
  dnnl::concat::primitive_desc pd;
  try {
    pd = dnnl::concat::primitive_desc(dst_any, static_cast<int>(axis), mds, eng);
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) throw;
    return std::unique_ptr<OpKernel>();
  }
  memory::desc dst_md = pd.dst_desc();
  PlanValue& out = ctx.DefineOutput(0, y.dtype, out_shape, &dst_md);
  args[DNNL_ARG_DST] = out.Memory(eng);
  const std::string impl = ImplName(pd);
  seq->Add(std::make_unique<PrimitiveKernel>(dnnl::concat(pd), args, impl));
  seq->Add(std::make_unique<LambdaKernel>([temps]() { return absl::OkStatus(); }, ""));
  auto described = std::make_unique<SequenceKernel>(impl);
  described->Add(std::move(seq));
  return std::unique_ptr<OpKernel>(std::move(described));
}

// Add on oneDNN's binary primitive in a's layout (b is converted to it if its producer chose
// another), written in place over a when nothing reads a later:
//   y = saturate(round(post_ops(a*sa/sy + b*sb/sy - (sa*a_zp + sb*b_zp)/sy) + y_zp))
// i.e. the real sum in y's units (src scales sa/sy and sb/sy, then an eltwise shift), Relu
// unchanged and Clip bounds divided by sy (y_scale > 0); + y_zp is exact (an integer).
// Returns nullptr when oneDNN has no implementation (the caller uses the scalar kernel).
absl::StatusOr<std::unique_ptr<OpKernel>> BuildDnnlAdd(BuildContext& ctx, const QuantParams& qa,
                                                       const QuantParams& qb,
                                                       const QuantParams& qy) {
  const dnnl::engine& eng = ctx.engine();
  PlanValue& a = ctx.input_any_layout(2);
  const DType b_dtype = ctx.input_any_layout(5).dtype;
  auto b = ctx.input_as(5, WithType(a.md, b_dtype));
  if (!b.ok()) return std::unique_ptr<OpKernel>();
  dnnl::primitive_attr attr;
  attr.set_scales(DNNL_ARG_SRC_0, 0, {qa.scales[0] / qy.scales[0]});
  attr.set_scales(DNNL_ARG_SRC_1, 0, {qb.scales[0] / qy.scales[0]});
  // One linear shift and at most one clip: oneDNN 2.6's jit:uni binary computes a second
  // eltwise_linear post-op wrongly. With the zero point moved into the shift, Relu is
  // clip(v + y_zp, y_zp, inf) and Clip(lo, hi) is clip(v + y_zp, lo/sy + y_zp, hi/sy + y_zp);
  // consecutive clips are one clip over the intersection of their ranges.
  using alg = dnnl::algorithm;
  const float zy = static_cast<float>(qy.zero_points[0]);
  const float shift = zy - (qa.scales[0] * static_cast<float>(qa.zero_points[0]) +
                            qb.scales[0] * static_cast<float>(qb.zero_points[0])) /
                               qy.scales[0];
  float lo = -INFINITY, hi = INFINITY;
  for (const PostOp& p : ctx.node().post_ops) {
    const bool relu = p.kind == PostOp::Kind::kRelu;
    lo = std::max(lo, relu ? zy : p.alpha / qy.scales[0] + zy);
    hi = std::min(hi, relu ? INFINITY : p.beta / qy.scales[0] + zy);
  }
  if (lo > hi) return std::unique_ptr<OpKernel>();
  dnnl::post_ops ops;
  if (shift != 0.0f) ops.append_eltwise(1.0f, alg::eltwise_linear, 1.0f, shift);
  if (!ctx.node().post_ops.empty()) ops.append_eltwise(1.0f, alg::eltwise_clip_v2, lo, hi);
  attr.set_post_ops(ops);
  const memory::desc y_md = WithType(a.md, qy.dtype);
  dnnl::binary::primitive_desc pd;
  try {
    pd = dnnl::binary::primitive_desc(dnnl::binary::desc(alg::binary_add, a.md, (*b)->md, y_md),
                                      attr, eng);
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) throw;
    return std::unique_ptr<OpKernel>();
  }
  const memory a_mem = a.Memory(eng);  // before a's buffer may be handed to y
  const Shape shape = a.shape;
  PlanValue* y = qy.dtype == a.dtype ? ctx.DefineOutputInPlace(0, &a) : nullptr;
  if (y == nullptr) y = &ctx.DefineOutput(0, qy.dtype, shape, &y_md);
  const std::string impl = ImplName(pd);
  return std::unique_ptr<OpKernel>(std::make_unique<PrimitiveKernel>(
      dnnl::binary(pd),
      std::unordered_map<int, memory>{{DNNL_ARG_SRC_0, a_mem},
                                      {DNNL_ARG_SRC_1, (*b)->Memory(eng)},
                                      {DNNL_ARG_DST, y->Memory(eng)}},
      impl));
}

// Global average pooling of a 4-D int8 value in any unblocked layout (channels-last from the
// convolutions, or plain) as one loop with exact integer sums, instead of oneDNN's three steps
// (u8 -> f32 reorder, f32 pooling, f32 -> u8 reorder) and their three parallel regions:
//   y[n, c] = saturate(round_half_even((sum_s x[n, c, s] - count * x_zp) * x_scale / y_scale
//                                      / count) + y_zp)
// in double precision (closer to the real mean than the f32 steps it replaces; they can differ by
// one step at a tie). Returns nullptr when the layout is blocked.
std::unique_ptr<OpKernel> BuildGlobalAverageInt8(BuildContext& ctx, PlanValue& x,
                                                 const QuantParams& xq, const QuantParams& yq) {
  const memory::desc& md = x.md;
  if (x.shape.size() != 4 || md.data.format_kind != dnnl_blocked ||
      md.data.format_desc.blocking.inner_nblks != 0 || NumElements(x.shape) == 0) {
    return nullptr;
  }
  const int64_t* st = md.data.format_desc.blocking.strides;
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t sn = st[0], sc = st[1], sh = st[2], sw = st[3];
  PlanValue& y = ctx.DefineOutput(0, yq.dtype, {n, c, 1, 1});
  const void* xp = x.buffer.data();
  void* yp = y.buffer.data();
  const bool x_u8 = x.dtype == DType::kU8;
  const double count = static_cast<double>(h * w);
  const double ratio = static_cast<double>(xq.scales[0]) / static_cast<double>(yq.scales[0]);
  const int64_t x_zp = xq.zero_points[0];
  const int32_t y_zp = yq.zero_points[0];
  const int32_t lo = static_cast<int32_t>(QMin(yq.dtype)),
                hi = static_cast<int32_t>(QMax(yq.dtype));
  const DType y_dtype = yq.dtype;
  const int threads = ctx.num_threads();
  auto pool = [=](auto* xt) {
    std::vector<int32_t> acc(c);
#pragma omp parallel for num_threads(threads) if (n > 1 && n * c * h * w > (1 << 20)) \
    firstprivate(acc)
    for (int64_t b = 0; b < n; ++b) {
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < w; ++j) {
          const auto* row = xt + b * sn + i * sh + j * sw;
          for (int64_t ch = 0; ch < c; ++ch) acc[ch] += row[ch * sc];
        }
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        const double v = static_cast<double>(acc[ch] - x_zp * h * w) * ratio / count;
        const double r = std::nearbyint(v) + y_zp;
        Store(yp, y_dtype, b * c + ch,
              static_cast<int32_t>(std::min<double>(hi, std::max<double>(lo, r))));
      }
    }
  };
  return std::make_unique<LambdaKernel>(
      [=]() {
        if (x_u8) {
          pool(static_cast<const uint8_t*>(xp));
        } else {
          pool(static_cast<const int8_t*>(xp));
        }
        return absl::OkStatus();
      },
      "octet:int8_global_average");
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
    if (auto k = BuildGlobalAverageInt8(ctx, x, *xq, *yq); k != nullptr) {
      return std::unique_ptr<OpKernel>(std::move(k));
    }
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
  const dnnl::engine& eng = ctx.engine();
  auto kernel_seq = std::make_unique<SequenceKernel>("");
  // oneDNN 2.6 pools int8 only into int8, so an average (whose mean is not an integer) runs in
  // f32 on the real values in y's units: t = (x - x_zp) * x_scale / y_scale (a reorder in x's
  // layout), mean(t) (f32 pooling), y = saturate(round(mean) + y_zp) (a reorder).
  // Max pooling runs on the integers; it commutes with the monotonic requantization.
  memory src_mem = x.Memory(eng);
  memory::desc pool_src = x.md;
  if (!max) {
    pool_src.data.data_type = dnnl_f32;
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {xq->scales[0] / yq->scales[0]});
    if (xq->zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {xq->zero_points[0]});
    auto tmp = std::make_shared<Tensor>(
        Tensor::Zeros(DType::kU8, {static_cast<int64_t>(pool_src.get_size())}));
    memory tmp_mem(pool_src, eng, tmp->data());
    dnnl::reorder::primitive_desc rpd(eng, x.md, eng, pool_src, attr);
    kernel_seq->Add(std::make_unique<PrimitiveKernel>(
        dnnl::reorder(rpd),
        std::unordered_map<int, memory>{{DNNL_ARG_FROM, src_mem}, {DNNL_ARG_TO, tmp_mem}}, ""));
    kernel_seq->Add(std::make_unique<LambdaKernel>([tmp]() { return absl::OkStatus(); }, ""));
    src_mem = tmp_mem;
  }
  const DType pool_dt = max ? x.dtype : DType::kF32;
  memory::desc pool_dst(ToDims(out_shape), ToDnnl(pool_dt), memory::format_tag::any);
  dnnl::pooling_v2_forward::desc d(
      dnnl::prop_kind::forward_inference,
      max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding, pool_src,
      pool_dst, strides, kernel, dil, pl, pr);
  dnnl::pooling_v2_forward::primitive_desc pd(d, eng);
  const std::string impl = ImplName(pd);
  auto described = std::make_unique<SequenceKernel>(impl);
  memory::desc dst_md = pd.dst_desc();
  if (max && same) {
    PlanValue& y = ctx.DefineOutput(0, yq->dtype, out_shape, &dst_md);
    kernel_seq->Add(std::make_unique<PrimitiveKernel>(
        dnnl::pooling_v2_forward(pd),
        std::unordered_map<int, memory>{{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DST, y.Memory(eng)}},
        impl));
    described->Add(std::move(kernel_seq));
    return std::unique_ptr<OpKernel>(std::move(described));
  }
  auto tmp = std::make_shared<Tensor>(
      Tensor::Zeros(DType::kU8, {static_cast<int64_t>(dst_md.get_size())}));
  memory tmp_mem(dst_md, eng, tmp->data());
  kernel_seq->Add(std::make_unique<PrimitiveKernel>(
      dnnl::pooling_v2_forward(pd),
      std::unordered_map<int, memory>{{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DST, tmp_mem}}, impl));
  // Requantize in the pooled layout: max: y = round((v - x_zp) * x_scale / y_scale) + y_zp;
  // average (already in y's units): y = round(v) + y_zp.
  memory::desc y_md = dst_md;
  y_md.data.data_type = static_cast<dnnl_data_type_t>(ToDnnl(yq->dtype));
  dnnl::primitive_attr attr;
  if (max) {
    attr.set_output_scales(0, {xq->scales[0] / yq->scales[0]});
    if (xq->zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {xq->zero_points[0]});
  }
  if (yq->zero_points[0] != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {yq->zero_points[0]});
  PlanValue& y = ctx.DefineOutput(0, yq->dtype, out_shape, &y_md);
  dnnl::reorder::primitive_desc rpd(eng, dst_md, eng, y_md, attr);
  kernel_seq->Add(std::make_unique<PrimitiveKernel>(
      dnnl::reorder(rpd),
      std::unordered_map<int, memory>{{DNNL_ARG_FROM, tmp_mem}, {DNNL_ARG_TO, y.Memory(eng)}}, ""));
  kernel_seq->Add(std::make_unique<LambdaKernel>([tmp]() { return absl::OkStatus(); }, ""));
  described->Add(std::move(kernel_seq));
  return std::unique_ptr<OpKernel>(std::move(described));
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
    PlanValue& x = ctx.input_any_layout(2 + 3 * i);
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
    parts.push_back(
        Part{nullptr, x.dtype, *xq, NumElements(x.shape) / std::max<int64_t>(outer, 1)});
  }
  if (auto k = BuildDnnlConcat(ctx, *yq, axis, out_shape); !k.ok() || *k != nullptr) return k;
  for (size_t i = 0; i < n_in; ++i) parts[i].data = ctx.input(2 + 3 * i).buffer.data();
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
  PlanValue& a = ctx.input_any_layout(2);
  PlanValue& b = ctx.input_any_layout(5);
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
  if (auto k = BuildDnnlAdd(ctx, *aq, *bq, *yq); !k.ok() || *k != nullptr) return k;
  PlanValue& y = ctx.DefineOutput(0, yq->dtype, a.shape);
  const void* ap = ctx.input(2).buffer.data();
  const void* bp = ctx.input(5).buffer.data();
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
