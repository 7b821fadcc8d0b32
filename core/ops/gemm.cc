// Gemm and MatMul (FP32) on oneDNN inner_product / matmul primitives.
//
// Gemm: Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A, B' = transB ? B^T : B, C broadcast
// to [M, N] (ONNX unidirectional broadcasting). Fused activations (node.post_ops) follow.
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"
#include "core/weight_cache.h"

namespace octet {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// Pre-steps (weight reorders, bias scaling) then one primitive. Holds the buffers that memories
// created at build time point into.
class DnnlOpKernel : public OpKernel {
 public:
  DnnlOpKernel(dnnl::primitive prim, std::unordered_map<int, memory> args, std::string impl)
      : prim_(std::move(prim)), args_(std::move(args)), impl_(std::move(impl)) {}
  void AddPreStep(std::unique_ptr<OpKernel> k) { pre_.push_back(std::move(k)); }
  void Keep(Tensor t) { keep_.push_back(std::move(t)); }
  absl::Status Run(dnnl::stream& stream) override {
    for (auto& k : pre_) {
      if (auto s = k->Run(stream); !s.ok()) return s;
    }
    prim_.execute(stream, args_);
    return absl::OkStatus();
  }
  std::string Describe() const override { return impl_; }

 private:
  dnnl::primitive prim_;
  std::unordered_map<int, memory> args_;
  std::string impl_;
  std::vector<std::unique_ptr<OpKernel>> pre_;
  std::vector<Tensor> keep_;
};

// A 2-D descriptor over a row-major buffer, optionally read transposed.
memory::desc Desc2D(int64_t rows, int64_t cols, bool transposed) {
  // Logical [rows, cols]; stored as [cols, rows] row-major when transposed.
  return memory::desc({rows, cols}, kF32,
                      transposed ? memory::dims{1, rows} : memory::dims{cols, 1});
}

absl::Status CheckNoSum(BuildContext& ctx) {
  if (HasSumPostOp(ctx.node())) return ctx.Unsupported("fused residual sum on Gemm/MatMul");
  return absl::OkStatus();
}

absl::Status ValidateGemm(const Node& n, int64_t opset) {
  std::vector<std::string> attrs = {"alpha", "beta", "transA", "transB"};
  if (opset < 7) attrs.push_back("broadcast");
  if (auto s = CheckAttributes(n, attrs); !s.ok()) return s;
  if (n.inputs.size() < 2 || n.inputs.size() > 3 || !n.HasInput(0) || !n.HasInput(1)) {
    return absl::InvalidArgumentError(n.Label() + ": needs inputs A, B and optionally C");
  }
  if (opset < 11 && !n.HasInput(2)) {
    return absl::InvalidArgumentError(n.Label() + ": C is required before opset 11");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildGemm(BuildContext& ctx) {
  const Node& node = ctx.node();
  if (auto s = CheckNoSum(ctx); !s.ok()) return s;
  PlanValue& a = ctx.input(0);
  PlanValue& b = ctx.input(1);
  if (a.dtype != DType::kF32 || b.dtype != DType::kF32) {
    return ctx.Unsupported("only float A and B (INT8 uses QLinearMatMul/QDQ)");
  }
  if (a.shape.size() != 2 || b.shape.size() != 2) {
    return ctx.Invalid(absl::StrCat("A ", ShapeToString(a.shape), " and B ", ShapeToString(b.shape),
                                    " must be 2-D"));
  }
  const bool trans_a = node.GetInt("transA", 0) != 0;
  const bool trans_b = node.GetInt("transB", 0) != 0;
  const float alpha = node.GetFloat("alpha", 1.0f);
  const float beta = node.GetFloat("beta", 1.0f);
  const int64_t m = trans_a ? a.shape[1] : a.shape[0];
  const int64_t k = trans_a ? a.shape[0] : a.shape[1];
  const int64_t kb = trans_b ? b.shape[1] : b.shape[0];
  const int64_t n = trans_b ? b.shape[0] : b.shape[1];
  if (k != kb) {
    return ctx.Invalid(absl::StrCat("A ", ShapeToString(a.shape), " and B ", ShapeToString(b.shape),
                                    " do not agree on K (transA ", trans_a, ", transB ", trans_b,
                                    ")"));
  }
  if (m == 0 || n == 0 || k == 0) return ctx.Unsupported("empty Gemm dimensions");
  if (alpha == 0.0f) return ctx.Unsupported("alpha = 0");
  const Shape out_shape = {m, n};

  // C as [cm, cn] with each dimension 1 or equal to the output's.
  const bool use_c = node.HasInput(2) && beta != 0.0f;
  int64_t cm = 1, cn = 1;
  PlanValue* c = nullptr;
  if (use_c) {
    c = &ctx.input(2);
    if (c->dtype != DType::kF32) return ctx.Unsupported("only float C");
    const Shape& cs = c->shape;
    if (cs.size() > 2) return ctx.Invalid("C must have rank <= 2");
    if (cs.size() == 2) cm = cs[0];
    if (!cs.empty()) cn = cs.back();
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) {
      return ctx.Invalid(absl::StrCat("C ", ShapeToString(cs),
                                      " is not unidirectionally broadcastable to ",
                                      ShapeToString(out_shape)));
    }
  }
  const bool c_const = use_c && ctx.constant(2) != nullptr;
  const bool b_const = ctx.constant(1) != nullptr;

  dnnl::post_ops ops;
  AppendPostOps(node.post_ops, ops);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::engine& eng = ctx.engine();
  std::vector<std::unique_ptr<OpKernel>> pre;
  std::vector<Tensor> keep;

  // The bias for either primitive: the primitives compute (A·B + bias) · alpha, so the bias is
  // C · beta / alpha, broadcast over rows (and columns when `expand_cols`). Constant C is scaled
  // once here; a runtime C that needs scaling gets a small pre-step.
  auto make_bias = [&](bool expand_cols, memory::desc* md) -> memory {
    const float f = beta / alpha;
    const int64_t bn = expand_cols ? n : cn;
    *md = memory::desc({cm, bn}, kF32, tag::ab);
    if (f == 1.0f && !expand_cols) return memory(*md, eng, c->buffer.data());
    Tensor scaled = Tensor::Zeros(DType::kF32, {cm, bn});
    const float* src = c->buffer.data_as<const float>();
    float* dst = scaled.data_as<float>();
    const int64_t rows = cm, src_cols = cn;
    auto fill = [src, dst, rows, bn, src_cols, f]() {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < bn; ++j)
          dst[i * bn + j] = f * src[i * src_cols + (src_cols == 1 ? 0 : j)];
      }
      return absl::OkStatus();
    };
    if (c_const) {
      (void)fill();
    } else {
      pre.push_back(std::make_unique<LambdaKernel>(fill, "scale C"));
    }
    keep.push_back(scaled);
    return memory(*md, eng, scaled.data());
  };

  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
  std::string impl;
  memory::desc dst_md;
  // Fast path: a fully connected layer. inner_product takes weights as [N, K] in its own
  // blocked layout (prepared once) and a per-column bias.
  const bool fc =
      alpha == 1.0f && !trans_a && b_const && (!use_c || (cm == 1 && (cn == n || c_const)));
  if (fc) {
    memory::desc bias_md;
    memory bias_mem;
    if (use_c) {
      bias_mem = make_bias(cn != n, &bias_md);
      bias_md = memory::desc({n}, kF32, tag::a);
      bias_mem = memory(bias_md, eng, bias_mem.get_data_handle());
    }
    memory::desc src_any({m, k}, kF32, tag::any), w_any({n, k}, kF32, tag::any),
        dst_any({m, n}, kF32, tag::any);
    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_any, w_any, bias_md,
                                        dst_any);
    dnnl::inner_product_forward::primitive_desc pd(d, attr, eng);
    // ONNX B is [K, N] (or [N, K] with transB); oneDNN's weights are [N, K].
    auto w = PrepareWeights(ctx, 1, Desc2D(n, k, !trans_b), pd.weights_desc(), &pre);
    if (!w.ok()) return w.status();
    auto src = ctx.input_as(0, pd.src_desc());
    if (!src.ok()) return src.status();
    args[DNNL_ARG_SRC] = (*src)->Memory(eng);
    args[DNNL_ARG_WEIGHTS] = *w;
    if (use_c) args[DNNL_ARG_BIAS] = bias_mem;
    dst_md = pd.dst_desc();
    impl = ImplName(pd);
    prim = dnnl::inner_product_forward(pd);
  } else {
    memory::desc bias_md;
    memory bias_mem;
    if (use_c) bias_mem = make_bias(false, &bias_md);
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    const memory::desc a_md = Desc2D(m, k, trans_a);
    const memory::desc b_md = Desc2D(k, n, trans_b);
    memory::desc w_md = b_const ? memory::desc({k, n}, kF32, tag::any) : b_md;
    dnnl::matmul::desc d(a_md, w_md, bias_md, memory::desc({m, n}, kF32, tag::ab));
    dnnl::matmul::primitive_desc pd(d, attr, eng);
    memory w_mem = memory(b_md, eng, b.buffer.data());
    if (b_const) {
      auto w = PrepareWeights(ctx, 1, b_md, pd.weights_desc(), &pre);
      if (!w.ok()) return w.status();
      w_mem = *w;
    }
    args[DNNL_ARG_SRC] = memory(a_md, eng, a.buffer.data());
    args[DNNL_ARG_WEIGHTS] = w_mem;
    if (use_c) args[DNNL_ARG_BIAS] = bias_mem;
    dst_md = pd.dst_desc();
    impl = ImplName(pd);
    prim = dnnl::matmul(pd);
  }
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, out_shape, &dst_md);
  args[DNNL_ARG_DST] = y.Memory(eng);
  auto kernel = std::make_unique<DnnlOpKernel>(prim, std::move(args), impl);
  for (auto& p : pre) kernel->AddPreStep(std::move(p));
  for (auto& t : keep) kernel->Keep(std::move(t));
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

absl::Status ValidateMatMul(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  if (n.inputs.size() < 2 || !n.HasInput(0) || !n.HasInput(1)) {
    return absl::InvalidArgumentError(n.Label() + ": needs inputs A and B");
  }
  return absl::OkStatus();
}

// MatMul with numpy semantics: 1-D operands gain a dimension that is removed from the result,
// batch dimensions broadcast.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildMatMul(BuildContext& ctx) {
  const Node& node = ctx.node();
  if (auto s = CheckNoSum(ctx); !s.ok()) return s;
  PlanValue& a = ctx.input(0);
  PlanValue& b = ctx.input(1);
  if (a.dtype != DType::kF32 || b.dtype != DType::kF32) {
    return ctx.Unsupported("only float inputs (INT8 uses MatMulInteger/QLinearMatMul/QDQ)");
  }
  if (a.shape.empty() || b.shape.empty()) return ctx.Invalid("MatMul inputs must not be scalars");
  Shape as = a.shape, bs = b.shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k) {
    return ctx.Invalid(absl::StrCat("A ", ShapeToString(a.shape), " and B ", ShapeToString(b.shape),
                                    " do not agree on K"));
  }
  const size_t r = std::max(as.size(), bs.size());
  if (r > DNNL_MAX_NDIMS) return ctx.Unsupported(absl::StrCat("rank ", r, " MatMul"));
  as.insert(as.begin(), r - as.size(), 1);
  bs.insert(bs.begin(), r - bs.size(), 1);
  Shape full(r);
  for (size_t i = 0; i + 2 < r; ++i) {
    if (as[i] != bs[i] && as[i] != 1 && bs[i] != 1) {
      return ctx.Invalid(absl::StrCat("batch dimensions of A ", ShapeToString(a.shape), " and B ",
                                      ShapeToString(b.shape), " do not broadcast"));
    }
    full[i] = std::max(as[i], bs[i]);
  }
  full[r - 2] = m;
  full[r - 1] = n;
  Shape out_shape(full.begin(), full.end() - 2);
  if (a.shape.size() > 1) out_shape.push_back(m);
  if (b.shape.size() > 1) out_shape.push_back(n);
  if (NumElements(full) == 0 || k == 0) return ctx.Unsupported("empty MatMul dimensions");

  dnnl::post_ops ops;
  AppendPostOps(node.post_ops, ops);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::engine& eng = ctx.engine();
  std::vector<std::unique_ptr<OpKernel>> pre;
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, out_shape);
  std::unordered_map<int, memory> args;
  dnnl::primitive prim;
  std::string impl;
  bool b_batched = false;
  for (size_t i = 0; i + 2 < r; ++i) b_batched |= bs[i] != 1;
  if (!b_batched) {
    // B is one matrix: fold A's batch dimensions into M (A is row-major) and run one 2-D matmul,
    // which lets constant weights take oneDNN's preferred layout.
    const int64_t rows = NumElements(as) / k;
    const bool b_const = ctx.constant(1) != nullptr;
    memory::desc a_md({rows, k}, kF32, tag::ab), b_md({k, n}, kF32, tag::ab),
        y_md({rows, n}, kF32, tag::ab);
    // A bias (input 2) was fused from a following Add by the graph passes (see passes.cc).
    const bool has_bias = node.inputs.size() > 2 && node.HasInput(2);
    memory::desc bias_md({1, n}, kF32, tag::ab);
    if (has_bias && NumElements(ctx.input(2).shape) != n) {
      return ctx.Invalid(absl::StrCat("fused bias must have ", n, " elements"));
    }
    const memory::desc w_any = b_const ? memory::desc({k, n}, kF32, tag::any) : b_md;
    dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(a_md, w_any, bias_md, y_md)
                                    : dnnl::matmul::desc(a_md, w_any, y_md);
    dnnl::matmul::primitive_desc pd(d, attr, eng);
    if (has_bias) args[DNNL_ARG_BIAS] = memory(bias_md, eng, ctx.input(2).buffer.data());
    memory w_mem(b_md, eng, b.buffer.data());
    if (b_const) {
      auto w = PrepareWeights(ctx, 1, b_md, pd.weights_desc(), &pre);
      if (!w.ok()) return w.status();
      w_mem = *w;
    }
    args[DNNL_ARG_SRC] = memory(a_md, eng, a.buffer.data());
    args[DNNL_ARG_WEIGHTS] = w_mem;
    args[DNNL_ARG_DST] = memory(y_md, eng, y.buffer.data());
    impl = ImplName(pd);
    prim = dnnl::matmul(pd);
  } else {
    if (node.inputs.size() > 2) return ctx.Unsupported("fused bias with a batched B");
    // Batched B: N-D matmul on plain layouts; oneDNN broadcasts batch dimensions of size 1.
    memory::desc a_md = PlainDesc(DType::kF32, as), b_md = PlainDesc(DType::kF32, bs),
                 y_md = PlainDesc(DType::kF32, full);
    dnnl::matmul::desc d(a_md, b_md, y_md);
    dnnl::matmul::primitive_desc pd(d, attr, eng);
    args[DNNL_ARG_SRC] = memory(a_md, eng, a.buffer.data());
    args[DNNL_ARG_WEIGHTS] = memory(b_md, eng, b.buffer.data());
    args[DNNL_ARG_DST] = memory(y_md, eng, y.buffer.data());
    impl = ImplName(pd);
    prim = dnnl::matmul(pd);
  }
  auto kernel = std::make_unique<DnnlOpKernel>(prim, std::move(args), impl);
  for (auto& p : pre) kernel->AddPreStep(std::move(p));
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

}  // namespace

void RegisterGemmOps(OpRegistry& r) {
  AddOp(r, "Gemm", BuildGemm, ValidateGemm);
  AddOp(r, "MatMul", BuildMatMul, ValidateMatMul);
}

}  // namespace octet
