// Conv and ConvTranspose on oneDNN convolution/deconvolution primitives (FP32).
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"
#include "core/weight_cache.h"

namespace octet {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

absl::Status ValidateConv(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                                   "strides", "output_padding", "output_shape"});
      !s.ok()) {
    return s;
  }
  if (n.inputs.size() < 2) return absl::InvalidArgumentError(n.Label() + ": needs X and W");
  if (n.op_type == "Conv" && (n.HasAttr("output_padding") || n.HasAttr("output_shape"))) {
    return absl::InvalidArgumentError(n.Label() +
                                      ": output_padding/output_shape are for ConvTranspose");
  }
  return absl::OkStatus();
}

// Weights descriptor in ONNX's own layout: [M, C/g, k...] or, grouped, [g, M/g, C/g, k...].
memory::desc OnnxWeightsDesc(const Shape& w, int64_t groups, bool transposed) {
  const size_t sp_rank = w.size() - 2;
  int64_t spatial = 1;
  for (size_t i = 2; i < w.size(); ++i) spatial *= w[i];
  memory::dims dims, strides;
  if (groups > 1) {
    dims.push_back(groups);
    strides.push_back(w[0] / groups * w[1] * spatial);
  }
  if (transposed) {
    // ConvTranspose W is [C, M/g, k...]: oneDNN wants [(g,) M/g, C/g, k...], a permuted view.
    dims.push_back(w[1]);
    strides.push_back(spatial);
    dims.push_back(w[0] / groups);
    strides.push_back(w[1] * spatial);
  } else {
    // Conv W is [M, C/g, k...] = [(g,) M/g, C/g, k...] row-major.
    dims.push_back(w[0] / groups);
    strides.push_back(w[1] * spatial);
    dims.push_back(w[1]);
    strides.push_back(spatial);
  }
  int64_t s = spatial;
  for (size_t i = 0; i < sp_rank; ++i) {
    s /= w[2 + i];
    dims.push_back(w[2 + i]);
    strides.push_back(s);
  }
  return memory::desc(dims, memory::data_type::f32, strides);
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildConv(BuildContext& ctx) {
  const Node& node = ctx.node();
  const bool transposed = node.op_type == "ConvTranspose";
  PlanValue& x = ctx.input_any_layout(0);
  const Shape w_shape = ctx.input_any_layout(1).shape;
  if (x.dtype != DType::kF32)
    return ctx.Unsupported("only float inputs (INT8 uses QLinearConv/QDQ)");
  const int rank = static_cast<int>(x.shape.size());
  if (rank < 3 || rank > 5 || static_cast<int>(w_shape.size()) != rank) {
    return ctx.Invalid(absl::StrCat("X ", ShapeToString(x.shape), " and W ", ShapeToString(w_shape),
                                    " must both be 3-D, 4-D or 5-D"));
  }
  const int64_t groups = node.GetInt("group", 1);
  const int64_t c_in = x.shape[1];
  if (groups < 1 || c_in % groups != 0) return ctx.Invalid("group must divide the input channels");
  const int64_t c_out = transposed ? w_shape[1] * groups : w_shape[0];
  if (!transposed && (w_shape[1] * groups != c_in || w_shape[0] % groups != 0)) {
    return ctx.Invalid(absl::StrCat("W ", ShapeToString(w_shape), " does not match input channels ",
                                    c_in, " with group ", groups));
  }
  if (transposed && w_shape[0] != c_in) {
    return ctx.Invalid(
        absl::StrCat("W ", ShapeToString(w_shape), " does not match input channels ", c_in));
  }
  std::vector<int64_t> in_sp(x.shape.begin() + 2, x.shape.end());
  std::vector<int64_t> k_sp(w_shape.begin() + 2, w_shape.end());
  std::vector<int64_t> kernel_attr = node.GetInts("kernel_shape", k_sp);
  if (kernel_attr != k_sp) return ctx.Invalid("kernel_shape does not match W");
  WindowGeometry g;
  const size_t n_sp = in_sp.size();
  if (!transposed) {
    auto geo = ResolveWindow(node, in_sp, k_sp, false);
    if (!geo.ok()) return geo.status();
    g = *geo;
  } else {
    g.kernel = k_sp;
    g.strides = node.GetInts("strides", std::vector<int64_t>(n_sp, 1));
    g.dilations = node.GetInts("dilations", std::vector<int64_t>(n_sp, 1));
    std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * n_sp, 0));
    std::vector<int64_t> out_pad = node.GetInts("output_padding", std::vector<int64_t>(n_sp, 0));
    if (g.strides.size() != n_sp || g.dilations.size() != n_sp || pads.size() != 2 * n_sp ||
        out_pad.size() != n_sp) {
      return ctx.Invalid("strides/dilations/pads/output_padding do not match the spatial rank");
    }
    g.pad_begin.assign(pads.begin(), pads.begin() + n_sp);
    g.pad_end.assign(pads.begin() + n_sp, pads.end());
    g.out.resize(n_sp);
    const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
    std::vector<int64_t> out_shape = node.GetInts("output_shape");
    if (!out_shape.empty() && out_shape.size() != n_sp)
      out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    for (size_t i = 0; i < n_sp; ++i) {
      const int64_t ext = (g.kernel[i] - 1) * g.dilations[i] + 1;
      const int64_t full = g.strides[i] * (in_sp[i] - 1) + out_pad[i] + ext;
      if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        g.out[i] = !out_shape.empty() ? out_shape[i] : in_sp[i] * g.strides[i];
        // ONNX: total_padding = full - output_shape, split with the smaller half first only for
        // SAME_UPPER. A negative total (output_shape larger than the full output) is a negative
        // padding: extra outputs that receive only the bias. The halves use floor division, as
        // ONNX's reference does, so the extra outputs go at the end.
        const int64_t total = full - g.out[i];
        const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
        const bool upper = auto_pad == "SAME_UPPER";
        g.pad_begin[i] = upper ? half : total - half;
        g.pad_end[i] = total - g.pad_begin[i];
        if (g.pad_begin[i] < 0) {
          return ctx.Unsupported(absl::StrCat("output size ", g.out[i],
                                              " would need negative padding at the start (full "
                                              "output ",
                                              full, ")"));
        }
      } else if (auto_pad == "VALID" || auto_pad == "NOTSET") {
        if (auto_pad == "VALID") g.pad_begin[i] = g.pad_end[i] = 0;
        g.out[i] = full - g.pad_begin[i] - g.pad_end[i];
      } else {
        return ctx.Unsupported(absl::StrCat("auto_pad '", auto_pad, "'"));
      }
      // oneDNN's output size has no output_padding term: fold it into a smaller end padding
      // (`full` above includes it, so every branch needs this).
      g.pad_end[i] -= out_pad[i];
      if (g.out[i] < 1) return ctx.Invalid("ConvTranspose output would be empty");
    }
  }
  Shape out_shape = {x.shape[0], c_out};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  memory::dims strides(g.strides.begin(), g.strides.end());
  memory::dims dil, pl(g.pad_begin.begin(), g.pad_begin.end()),
      pr(g.pad_end.begin(), g.pad_end.end());
  for (int64_t d : g.dilations) dil.push_back(d - 1);
  const auto f32 = memory::data_type::f32;
  memory::desc src_any(ToDims(x.shape), f32, tag::any);
  memory::desc dst_any(ToDims(out_shape), f32, tag::any);
  memory::dims wd;
  if (groups > 1) wd.push_back(groups);
  wd.push_back(c_out / groups);
  wd.push_back(c_in / groups);
  wd.insert(wd.end(), k_sp.begin(), k_sp.end());
  memory::desc w_any(wd, f32, tag::any);
  const bool has_bias = node.HasInput(2);
  memory::desc b_md = has_bias ? memory::desc({c_out}, f32, tag::a) : memory::desc();
  if (has_bias && NumElements(ctx.input_any_layout(2).shape) != c_out) {
    return ctx.Invalid(absl::StrCat("bias must have ", c_out, " elements"));
  }
  dnnl::post_ops ops;
  AppendPostOps(node.post_ops, ops);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::engine& eng = ctx.engine();
  std::vector<std::unique_ptr<OpKernel>> pre;
  dnnl::primitive prim;
  std::unordered_map<int, dnnl::memory> args;
  memory::desc src_md, dst_md, w_md;
  std::string impl;
  if (!transposed) {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::convolution_direct, src_any, w_any, b_md,
                                      dst_any, strides, dil, pl, pr);
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    src_md = pd.src_desc();
    dst_md = pd.dst_desc();
    w_md = pd.weights_desc();
    impl = ImplName(pd);
    prim = dnnl::convolution_forward(pd);
  } else {
    dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                        dnnl::algorithm::deconvolution_direct, src_any, w_any, b_md,
                                        dst_any, strides, dil, pl, pr);
    dnnl::deconvolution_forward::primitive_desc pd(d, attr, eng);
    src_md = pd.src_desc();
    dst_md = pd.dst_desc();
    w_md = pd.weights_desc();
    impl = ImplName(pd);
    prim = dnnl::deconvolution_forward(pd);
  }
  auto src = ctx.input_as(0, src_md);
  if (!src.ok()) return src.status();
  auto weights = PrepareWeights(ctx, 1, OnnxWeightsDesc(w_shape, groups, transposed), w_md, &pre);
  if (!weights.ok()) return weights.status();
  args[DNNL_ARG_SRC] = (*src)->Memory(eng);
  args[DNNL_ARG_WEIGHTS] = *weights;
  if (has_bias) args[DNNL_ARG_BIAS] = ctx.input(2).Memory(eng);
  // The residual must be in dst's layout; it is copied into dst, then the primitive adds to it.
  PlanValue* residual = nullptr;
  if (HasSumPostOp(node)) {
    if (ctx.input_any_layout(3).shape != out_shape ||
        ctx.input_any_layout(3).dtype != DType::kF32) {
      return ctx.Unsupported(absl::StrCat("fused residual of shape ",
                                          ShapeToString(ctx.input_any_layout(3).shape),
                                          " differs from the output ", ShapeToString(out_shape)));
    }
    auto r = ctx.input_as(3, dst_md);
    if (!r.ok()) return r.status();
    residual = *r;
  }
  // In place over the residual when nothing else reads it; otherwise copy it into dst first.
  PlanValue* in_place = residual != nullptr ? ctx.DefineOutputInPlace(0, residual) : nullptr;
  if (in_place != nullptr) residual = nullptr;
  PlanValue& dst =
      in_place != nullptr ? *in_place : ctx.DefineOutput(0, DType::kF32, out_shape, &dst_md);
  args[DNNL_ARG_DST] = dst.Memory(eng);
  auto kernel = std::make_unique<SequenceKernel>(impl);
  for (auto& p : pre) kernel->Add(std::move(p));
  if (residual != nullptr) {
    dnnl::memory from = residual->Memory(eng), to = dst.Memory(eng);
    kernel->Add(std::make_unique<PrimitiveKernel>(
        dnnl::reorder(from, to),
        std::unordered_map<int, dnnl::memory>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, ""));
  }
  kernel->Add(std::make_unique<PrimitiveKernel>(prim, args, impl));
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

}  // namespace

void RegisterConvOps(OpRegistry& r) {
  AddOp(r, "Conv", BuildConv, ValidateConv);
  AddOp(r, "ConvTranspose", BuildConv, ValidateConv);
}

}  // namespace octet
