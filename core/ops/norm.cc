// BatchNormalization (standalone, when the graph pass could not fold it), InstanceNormalization
// and LRN (FP32) on oneDNN batch_normalization / lrn primitives.
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using dnnl::memory;
using flags = dnnl::normalization_flags;
constexpr auto kF32 = memory::data_type::f32;

// Pre-steps, then one primitive, then post-steps; keeps alive buffers its memories point into.
class NormKernel : public OpKernel {
 public:
  NormKernel(dnnl::primitive prim, std::unordered_map<int, memory> args, std::string impl)
      : prim_(std::move(prim)), args_(std::move(args)), impl_(std::move(impl)) {}
  std::vector<std::function<void()>> pre, post;
  std::vector<Tensor> keep;
  absl::Status Run(dnnl::stream& stream) override {
    for (auto& f : pre) f();
    prim_.execute(stream, args_);
    if (!post.empty()) {
      stream.wait();
      for (auto& f : post) f();
    }
    return absl::OkStatus();
  }
  std::string Describe() const override { return impl_; }

 private:
  dnnl::primitive prim_;
  std::unordered_map<int, memory> args_;
  std::string impl_;
};

// A [C] f32 parameter input (scale, bias, mean, var): its plain buffer.
absl::StatusOr<float*> ChannelParam(BuildContext& ctx, size_t i, int64_t c, const char* what) {
  PlanValue& v = ctx.input(i);
  if (v.dtype != DType::kF32 || NumElements(v.shape) != c) {
    return ctx.Invalid(absl::StrCat(what, " must be float with ", c, " elements, got ",
                                    DTypeName(v.dtype), ShapeToString(v.shape)));
  }
  return v.buffer.data_as<float>();
}

absl::Status ValidateBatchNorm(const Node& n, int64_t opset) {
  std::vector<std::string> attrs = {"epsilon", "momentum"};
  if (opset < 9) attrs.push_back("spatial");
  if (opset < 7) attrs.push_back("is_test");
  if (opset >= 14) attrs.push_back("training_mode");
  if (auto s = CheckAttributes(n, attrs); !s.ok()) return s;
  if (n.GetInt("spatial", 1) != 1) {
    return absl::UnimplementedError(n.Label() + ": spatial = 0 is not supported");
  }
  if (n.inputs.size() != 5) {
    return absl::InvalidArgumentError(n.Label() + ": needs X, scale, B, mean and var");
  }
  for (size_t i = 0; i < 5; ++i) {
    if (!n.HasInput(i))
      return absl::InvalidArgumentError(n.Label() + ": all 5 inputs are required");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildBatchNorm(BuildContext& ctx) {
  const Node& node = ctx.node();
  PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype != DType::kF32)
    return ctx.Unsupported(absl::StrCat("input type ", DTypeName(x.dtype)));
  if (x.shape.size() < 2 || x.shape.size() > 5) {
    return ctx.Unsupported(absl::StrCat("input ", ShapeToString(x.shape), ": rank must be 2 to 5"));
  }
  const int64_t c = x.shape[1];
  const float eps = node.GetFloat("epsilon", 1e-5f);
  const float momentum = node.GetFloat("momentum", 0.9f);
  // Training mode normalizes with the batch's own statistics and also outputs running stats.
  const bool training = node.GetInt("training_mode", 0) != 0;
  float* p[4];
  const char* names[4] = {"scale", "B", "mean", "var"};
  for (size_t i = 0; i < 4; ++i) {
    auto v = ChannelParam(ctx, i + 1, c, names[i]);
    if (!v.ok()) return v.status();
    p[i] = *v;
  }
  const dnnl::engine& eng = ctx.engine();
  const memory::desc c_md({c}, kF32, memory::format_tag::a);
  // y = scale * (x - mean) / sqrt(var + epsilon) + B
  flags f = flags::use_scale | flags::use_shift;
  if (!training) f = f | flags::use_global_stats;
  // oneDNN's fast kernels want 4-D/5-D data: view plain [N, C] and [N, C, W] as [N, C, W, 1].
  memory::desc data_md = x.md;
  const bool view_4d = x.shape.size() < 4 && IsPlain(x.md);
  if (view_4d) {
    data_md = memory::desc({x.shape[0], c, x.shape.size() == 3 ? x.shape[2] : 1, 1}, kF32,
                           memory::format_tag::abcd);
  }
  dnnl::batch_normalization_forward::desc d(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, data_md,
      eps, f);
  dnnl::batch_normalization_forward::primitive_desc pd(d, eng);
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, x.shape, &x.md);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, view_4d ? memory(data_md, eng, x.buffer.data()) : x.Memory(eng)},
      {DNNL_ARG_DST, view_4d ? memory(data_md, eng, y.buffer.data()) : y.Memory(eng)},
      {DNNL_ARG_SCALE, memory(c_md, eng, p[0])},
      {DNNL_ARG_SHIFT, memory(c_md, eng, p[1])}};
  std::vector<Tensor> keep;
  std::vector<std::function<void()>> post;
  if (!training) {
    args[DNNL_ARG_MEAN] = memory(c_md, eng, p[2]);
    args[DNNL_ARG_VARIANCE] = memory(c_md, eng, p[3]);
  } else {
    Tensor batch_mean = Tensor::Zeros(DType::kF32, {c}),
           batch_var = Tensor::Zeros(DType::kF32, {c});
    args[DNNL_ARG_MEAN] = memory(c_md, eng, batch_mean.data());
    args[DNNL_ARG_VARIANCE] = memory(c_md, eng, batch_var.data());
    if (pd.workspace_desc().get_size() > 0) {
      Tensor ws = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(pd.workspace_desc().get_size())});
      args[DNNL_ARG_WORKSPACE] = memory(pd.workspace_desc(), eng, ws.data());
      keep.push_back(ws);
    }
    // running = input_running * momentum + batch_stat * (1 - momentum) (population variance).
    for (size_t o = 1; o <= 2 && o < node.outputs.size(); ++o) {
      if (node.outputs[o].empty()) continue;
      float* out = ctx.DefineOutput(o, DType::kF32, {c}).buffer.data_as<float>();
      const float* running = p[o + 1];
      const float* batch = (o == 1 ? batch_mean : batch_var).data_as<const float>();
      post.push_back([out, running, batch, c, momentum]() {
        for (int64_t i = 0; i < c; ++i) out[i] = running[i] * momentum + batch[i] * (1 - momentum);
      });
    }
    keep.push_back(batch_mean);
    keep.push_back(batch_var);
  }
  auto kernel = std::make_unique<NormKernel>(dnnl::batch_normalization_forward(pd), std::move(args),
                                             ImplName(pd));
  kernel->post = std::move(post);
  kernel->keep = std::move(keep);
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

absl::Status ValidateInstanceNorm(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"epsilon"}); !s.ok()) return s;
  if (n.inputs.size() != 3 || !n.HasInput(0) || !n.HasInput(1) || !n.HasInput(2)) {
    return absl::InvalidArgumentError(n.Label() + ": needs input, scale and B");
  }
  return absl::OkStatus();
}

// InstanceNormalization is batch normalization with batch statistics of a [1, N*C, spatial, 1]
// view; scale and B are tiled N times.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildInstanceNorm(BuildContext& ctx) {
  PlanValue& x = ctx.input(0);
  if (x.dtype != DType::kF32)
    return ctx.Unsupported(absl::StrCat("input type ", DTypeName(x.dtype)));
  if (x.shape.size() < 3) return ctx.Invalid("input must have rank >= 3");
  const int64_t n = x.shape[0], c = x.shape[1];
  const int64_t spatial = NumElements(x.shape) / std::max<int64_t>(n * c, 1);
  if (n * c * spatial == 0) return ctx.Unsupported("empty input");
  const float* scale;
  const float* shift;
  {
    auto s = ChannelParam(ctx, 1, c, "scale");
    if (!s.ok()) return s.status();
    auto b = ChannelParam(ctx, 2, c, "B");
    if (!b.ok()) return b.status();
    scale = *s;
    shift = *b;
  }
  const dnnl::engine& eng = ctx.engine();
  const memory::desc view({1, n * c, spatial, 1}, kF32, memory::format_tag::abcd);
  const memory::desc nc_md({n * c}, kF32, memory::format_tag::a);
  dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, view,
                                            ctx.node().GetFloat("epsilon", 1e-5f),
                                            flags::use_scale | flags::use_shift);
  dnnl::batch_normalization_forward::primitive_desc pd(d, eng);
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, x.shape);
  Tensor tiled_scale = Tensor::Zeros(DType::kF32, {n * c}),
         tiled_shift = Tensor::Zeros(DType::kF32, {n * c});
  Tensor mean = Tensor::Zeros(DType::kF32, {n * c}), var = Tensor::Zeros(DType::kF32, {n * c});
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, memory(view, eng, x.buffer.data())},
                                          {DNNL_ARG_DST, memory(view, eng, y.buffer.data())},
                                          {DNNL_ARG_SCALE, memory(nc_md, eng, tiled_scale.data())},
                                          {DNNL_ARG_SHIFT, memory(nc_md, eng, tiled_shift.data())},
                                          {DNNL_ARG_MEAN, memory(nc_md, eng, mean.data())},
                                          {DNNL_ARG_VARIANCE, memory(nc_md, eng, var.data())}};
  auto kernel = std::make_unique<NormKernel>(dnnl::batch_normalization_forward(pd), std::move(args),
                                             ImplName(pd));
  float* ts = tiled_scale.data_as<float>();
  float* tb = tiled_shift.data_as<float>();
  auto tile = [ts, tb, scale, shift, n, c]() {
    for (int64_t i = 0; i < n * c; ++i) {
      ts[i] = scale[i % c];
      tb[i] = shift[i % c];
    }
  };
  if (ctx.constant(1) != nullptr && ctx.constant(2) != nullptr) {
    tile();
  } else {
    kernel->pre.push_back(tile);
  }
  kernel->keep = {tiled_scale, tiled_shift, mean, var};
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

absl::Status ValidateLrn(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"alpha", "beta", "bias", "size"}); !s.ok()) return s;
  if (!n.HasAttr("size")) return absl::InvalidArgumentError(n.Label() + ": size is required");
  if (n.inputs.size() != 1) return absl::InvalidArgumentError(n.Label() + ": needs one input");
  return absl::OkStatus();
}

// LRN: y = x / (bias + alpha / size * sum of x^2 over a window of `size` channels)^beta.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildLrn(BuildContext& ctx) {
  const Node& node = ctx.node();
  const int64_t size = node.GetInt("size", 0);
  const float alpha = node.GetFloat("alpha", 1e-4f), beta = node.GetFloat("beta", 0.75f),
              bias = node.GetFloat("bias", 1.0f);
  PlanValue& x0 = ctx.input_any_layout(0);
  if (x0.dtype != DType::kF32)
    return ctx.Unsupported(absl::StrCat("input type ", DTypeName(x0.dtype)));
  if (x0.shape.size() < 2) return ctx.Invalid("input must have rank >= 2");
  if (size < 1) return ctx.Invalid("size must be >= 1");
  if (size % 2 == 1 && x0.shape.size() <= 5) {
    // oneDNN's window is centred, (size - 1) / 2 channels each side: ONNX's for odd sizes.
    const dnnl::engine& eng = ctx.engine();
    dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_inference,
                              dnnl::algorithm::lrn_across_channels, x0.md, size, alpha, beta, bias);
    dnnl::lrn_forward::primitive_desc pd(d, eng);
    PlanValue& y = ctx.DefineOutput(0, DType::kF32, x0.shape, &x0.md);
    return std::unique_ptr<OpKernel>(std::make_unique<PrimitiveKernel>(
        dnnl::lrn_forward(pd),
        std::unordered_map<int, memory>{{DNNL_ARG_SRC, x0.Memory(eng)},
                                        {DNNL_ARG_DST, y.Memory(eng)}},
        ImplName(pd)));
  }
  // Even sizes: ONNX's window is [c - floor((size-1)/2), c + ceil((size-1)/2)].
  PlanValue& x = ctx.input(0);
  const int64_t n = x.shape[0], c = x.shape[1];
  const int64_t inner = NumElements(x.shape) / std::max<int64_t>(n * c, 1);
  const float* xp = x.buffer.data_as<const float>();
  float* yp = ctx.DefineOutput(0, DType::kF32, x.shape).buffer.data_as<float>();
  const int64_t lo = (size - 1) / 2, hi = size / 2;
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [=]() {
        for (int64_t b = 0; b < n; ++b) {
          for (int64_t ch = 0; ch < c; ++ch) {
            for (int64_t i = 0; i < inner; ++i) {
              float sum = 0;
              for (int64_t j = std::max<int64_t>(0, ch - lo); j <= std::min(c - 1, ch + hi); ++j) {
                const float v = xp[(b * c + j) * inner + i];
                sum += v * v;
              }
              const int64_t idx = (b * c + ch) * inner + i;
              yp[idx] = xp[idx] / std::pow(bias + alpha / size * sum, beta);
            }
          }
        }
        return absl::OkStatus();
      },
      "ref:lrn"));
}

}  // namespace

void RegisterNormOps(OpRegistry& r) {
  AddOp(r, "BatchNormalization", BuildBatchNorm, ValidateBatchNorm);
  AddOp(r, "InstanceNormalization", BuildInstanceNorm, ValidateInstanceNorm);
  AddOp(r, "LRN", BuildLrn, ValidateLrn);
}

}  // namespace octet
