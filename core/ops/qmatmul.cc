// MatMulInteger, QLinearMatMul and octet:QMatMul (QLinearMatMul plus bias, fused Relu/Clip/
// residual sum, optional FP32 output and transposed weights; created by the QDQ pass from
// MatMul and Gemm). Constant 2-D weights with constant parameters run on oneDNN's int8 matmul;
// everything else on the exact reference kernel.
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

absl::Status ValidateMatMulInteger(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  if (n.inputs.size() < 2 || n.inputs.size() > 4 || !n.HasInput(0) || !n.HasInput(1)) {
    return absl::InvalidArgumentError(n.Label() + ": needs A, B and optional zero points");
  }
  return absl::OkStatus();
}

absl::Status ValidateQLinearMatMul(const Node& n, int64_t) {
  const bool octet = n.domain == kOctetDomain;
  if (auto s = CheckAttributes(n, octet ? std::vector<std::string>{"trans_b"}
                                        : std::vector<std::string>{});
      !s.ok()) {
    return s;
  }
  const size_t min_inputs = 8, max_inputs = octet ? 12 : 8;
  if (n.inputs.size() < min_inputs || n.inputs.size() > max_inputs) {
    return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": expects ", min_inputs, " to ",
                                                   max_inputs, " inputs, got ", n.inputs.size()));
  }
  for (int i : {kQX, kQXs, kQW, kQWs}) {
    if (!n.HasInput(i)) return absl::InvalidArgumentError(n.Label() + ": missing required input");
  }
  if (!octet && !n.HasInput(kQYs)) return absl::InvalidArgumentError(n.Label() + ": y_scale is required");
  return absl::OkStatus();
}

struct MatMulSetup {
  int64_t m = 1, k = 1, n = 1;
  Shape out_shape;
  IntMatMulGeometry geo;
};

// numpy matmul shapes: 1-D operands get a dimension added (and removed from the output),
// batch dimensions broadcast. `trans_b`: b is [.., N, K].
absl::StatusOr<MatMulSetup> Setup(BuildContext& ctx, Shape a, Shape b, bool trans_b) {
  MatMulSetup s;
  if (a.empty() || b.empty()) return ctx.Invalid("matmul operands must have rank >= 1");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (trans_b) std::swap(b[b.size() - 1], b[b.size() - 2]);
  s.m = a[a.size() - 2];
  s.k = a.back();
  s.n = b.back();
  if (b[b.size() - 2] != s.k) {
    return ctx.Invalid(absl::StrCat("inner dimensions differ: A ", ShapeToString(a), ", B ",
                                    ShapeToString(b)));
  }
  const size_t ab = a.size() - 2, bb = b.size() - 2, rank = std::max(ab, bb);
  Shape batch(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + ab >= rank ? a[i + ab - rank] : 1;
    const int64_t db = i + bb >= rank ? b[i + bb - rank] : 1;
    if (da != db && da != 1 && db != 1) return ctx.Invalid("batch dimensions do not broadcast");
    batch[i] = std::max(da, db);
  }
  const int64_t nb = NumElements(batch);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, oa = 0, ob = 0, sa = s.m * s.k, sb = s.k * s.n;
    for (size_t i = rank; i-- > 0;) {
      const int64_t idx = rem % batch[i];
      rem /= batch[i];
      if (i + ab >= rank) {
        const int64_t d = a[i + ab - rank];
        oa += (d == 1 ? 0 : idx) * sa;
        sa *= d;
      }
      if (i + bb >= rank) {
        const int64_t d = b[i + bb - rank];
        ob += (d == 1 ? 0 : idx) * sb;
        sb *= d;
      }
    }
    s.geo.a_offsets.push_back(oa);
    s.geo.b_offsets.push_back(ob);
  }
  s.geo.m = s.m;
  s.geo.k = s.k;
  s.geo.n = s.n;
  s.out_shape = batch;
  if (!a1) s.out_shape.push_back(s.m);
  if (!b1) s.out_shape.push_back(s.n);
  return s;
}

// B as [N, K] (output-channel major), from [.., K, N] (or [N, K] when trans_b) 2-D constants.
Tensor ToChannelMajor(const Tensor& b, bool trans_b) {
  if (trans_b) return b;
  const int64_t k = b.dim(0), n = b.dim(1);
  Tensor t = Tensor::Zeros(b.dtype(), {n, k});
  const uint8_t* src = static_cast<const uint8_t*>(b.data());
  uint8_t* dst = static_cast<uint8_t*>(t.data());
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < n; ++j) dst[j * k + i] = src[i * n + j];
  }
  return t;
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildRef(BuildContext& ctx, const MatMulSetup& s,
                                                   bool integer, bool trans_b, DType y_dtype,
                                                   const std::string& why) {
  RefQLayerKernel::Spec spec;
  spec.label = ctx.node().Label();
  auto opt = [&](int i) -> const PlanValue* { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  const int wi = integer ? 1 : kQW;
  spec.x.value = &ctx.input(0);
  spec.w.value = &ctx.input(wi);
  if (trans_b && spec.w.value->shape.size() != 2) return ctx.Unsupported("trans_b needs 2-D weights");
  spec.x.axis = -2;
  spec.x.zp_map = ChannelMap{s.k, s.m};
  spec.x.out_map = ChannelMap{s.n, s.m};
  spec.w.axis = trans_b ? 0 : -1;
  spec.w.zp_map = trans_b ? ChannelMap{s.k, s.n} : ChannelMap{1, s.n};
  spec.w.out_map = ChannelMap{1, s.n};
  if (spec.x.value->shape.size() < 2) spec.x.zp_map = spec.x.out_map = ChannelMap{};
  spec.bias_map = ChannelMap{1, s.n};
  if (integer) {
    spec.x.zero_point = opt(2);
    spec.w.zero_point = opt(3);
  } else if (auto st = ReadQLinearParams(ctx, s.n, s.out_shape, &spec); !st.ok()) {
    return st;
  }
  spec.y = &ctx.DefineOutput(0, y_dtype, s.out_shape);
  IntMatMulGeometry g = s.geo;
  const int threads = ctx.num_threads();
  if (trans_b) {
    // Reference on [K, N]: transpose the [N, K] weights at run time (runtime weights only).
    const int64_t k = s.k, n = s.n;
    auto tmp = std::make_shared<std::vector<int32_t>>(k * n);
    spec.compute = [g, threads, tmp, k, n](const int32_t* x, const int32_t* w, int32_t* acc) {
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < k; ++i) (*tmp)[i * n + j] = w[j * k + i];
      }
      RefIntMatMul(g, x, tmp->data(), acc, threads);
    };
  } else {
    spec.compute = [g, threads](const int32_t* x, const int32_t* w, int32_t* acc) {
      RefIntMatMul(g, x, w, acc, threads);
    };
  }
  auto k = std::make_unique<RefQLayerKernel>(std::move(spec));
  k->set_note(why);
  return std::unique_ptr<OpKernel>(std::move(k));
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildMatMulInteger(BuildContext& ctx) {
  const PlanValue& a = ctx.input_any_layout(0);
  const PlanValue& b = ctx.input_any_layout(1);
  for (const PlanValue* v : {&a, &b}) {
    if (v->dtype != DType::kU8 && v->dtype != DType::kS8) {
      return ctx.Invalid(absl::StrCat("A and B must be uint8 or int8, got ", DTypeName(v->dtype)));
    }
  }
  auto s = Setup(ctx, a.shape, b.shape, false);
  if (!s.ok()) return s.status();
  return BuildRef(ctx, *s, true, false, DType::kS32, "");
}

// The oneDNN int8 matmul on [M', K] x [K, N] (A's leading dimensions flattened):
//   y = saturate(round(post_ops((acc + bias_acc) * a_scale * b_scale[n] / y_scale)) + y_zp),
//   acc = sum (a - a_zp) * b_s8.
absl::StatusOr<std::unique_ptr<OpKernel>> BuildQLinearMatMul(BuildContext& ctx) {
  const PlanValue& av = ctx.input_any_layout(kQX);
  const PlanValue& bv = ctx.input_any_layout(kQW);
  for (const PlanValue* v : {&av, &bv}) {
    if (v->dtype != DType::kU8 && v->dtype != DType::kS8) {
      return ctx.Invalid(absl::StrCat("a and b must be uint8 or int8, got ", DTypeName(v->dtype)));
    }
  }
  const bool trans_b = ctx.node().GetInt("trans_b", 0) != 0;
  auto s = Setup(ctx, av.shape, bv.shape, trans_b);
  if (!s.ok()) return s.status();
  DType y_dtype = DType::kF32;
  if (ctx.has_input(kQYs)) y_dtype = ctx.has_input(kQYzp) ? ctx.input_any_layout(kQYzp).dtype : DType::kU8;
  if (y_dtype != DType::kF32 && y_dtype != DType::kU8 && y_dtype != DType::kS8) {
    return ctx.Invalid("y zero point must be uint8 or int8");
  }
  const std::optional<Tensor> b_view = ConstantInput(ctx, kQW);
  const Tensor* b_const = b_view ? &*b_view : nullptr;
  if (b_const == nullptr || b_const->rank() != 2) {
    return BuildRef(ctx, *s, false, trans_b, y_dtype,
                    b_const == nullptr ? "runtime weights" : "batched weights");
  }
  Int8Layer layer;
  std::string why;
  Tensor b_nk = ToChannelMajor(*b_const, trans_b);
  // Per-column b parameters apply to dimension 0 of the [N, K] copy: check them against it.
  auto ok = PrepareInt8Layer(ctx, b_nk, s->n, &layer, &why);
  if (!ok.ok()) return ok.status();
  if (!*ok) return BuildRef(ctx, *s, false, trans_b, y_dtype, why);

  const dnnl::engine& eng = ctx.engine();
  const int64_t rows = NumElements(av.shape) / s->k;
  memory::desc src_md({rows, s->k}, memory::data_type::u8, memory::format_tag::ab);
  memory::desc w_any({s->k, s->n}, memory::data_type::s8, memory::format_tag::any);
  memory::desc b_md = layer.bias_acc.empty()
                          ? memory::desc()
                          : memory::desc({1, s->n}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc dst_md({rows, s->n}, ToDnnl(layer.y_dtype), memory::format_tag::ab);
  dnnl::primitive_attr attr = MakeInt8Attr(layer, 1 << 1);
  dnnl::matmul::primitive_desc pd;
  try {
    dnnl::matmul::desc d(src_md, w_any, b_md, dst_md);
    pd = dnnl::matmul::primitive_desc(d, attr, eng);
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) throw;
    return BuildRef(ctx, *s, false, trans_b, y_dtype, "no oneDNN int8 matmul for these attributes");
  }
  const std::string impl = ImplName(pd);
  auto kernel = std::make_unique<SequenceKernel>(
      absl::StrCat(impl, layer.reduced_7bit ? " (7-bit weights)" : ""));
  std::unordered_map<int, dnnl::memory> args;
  PlanValue& a = ctx.input(kQX);  // plain layout
  if (layer.shift_x) {
    dnnl::memory shifted;
    kernel->Add(MakeShiftS8ToU8(eng, a, memory::desc(ToDims(a.shape), memory::data_type::u8,
                                                     PlainTag(static_cast<int>(a.shape.size()))),
                                &shifted));
    args[DNNL_ARG_SRC] = dnnl::memory(src_md, eng, shifted.get_data_handle());
  } else {
    args[DNNL_ARG_SRC] = dnnl::memory(src_md, eng, a.buffer.data());
  }
  // [K, N] view of the [N, K] weights.
  memory::desc user_w({s->k, s->n}, memory::data_type::s8, memory::dims{1, s->k});
  auto w_mem = CacheConstant(ctx, layer.reduced_7bit ? "w7" : "w8", layer.w_s8, user_w,
                             pd.weights_desc());
  if (!w_mem.ok()) return w_mem.status();
  args[DNNL_ARG_WEIGHTS] = *w_mem;
  if (!layer.bias_acc.empty()) {
    Tensor b = Tensor::FromFloats({1, s->n}, layer.bias_acc);
    auto b_mem = CacheConstant(ctx, layer.reduced_7bit ? "b7" : "b8", b, b_md, b_md);
    if (!b_mem.ok()) return b_mem.status();
    args[DNNL_ARG_BIAS] = *b_mem;
  }
  PlanValue* residual = nullptr;
  if (layer.has_residual) {
    residual = &ctx.input(kQR);
    if (residual->shape != s->out_shape) return ctx.Unsupported("fused residual shape differs from the output");
  }
  PlanValue& y = ctx.DefineOutput(0, layer.y_dtype, s->out_shape);
  args[DNNL_ARG_DST] = dnnl::memory(dst_md, eng, y.buffer.data());
  if (residual != nullptr) {
    // The residual (plain, same shape) is copied into dst; the sum post-op reads it back.
    const void* src = residual->buffer.data();
    void* dst = y.buffer.data();
    const size_t bytes = NumElements(residual->shape) * DTypeSize(residual->dtype);
    kernel->Add(std::make_unique<LambdaKernel>(
        [src, dst, bytes]() {
          std::memcpy(dst, src, bytes);
          return absl::OkStatus();
        },
        ""));
  }
  kernel->Add(std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), args, impl));
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

}  // namespace

void RegisterQMatMulOps(OpRegistry& r) {
  AddOp(r, "MatMulInteger", BuildMatMulInteger, ValidateMatMulInteger);
  AddOp(r, "QLinearMatMul", BuildQLinearMatMul, ValidateQLinearMatMul);
  AddOp(r, "QMatMul", BuildQLinearMatMul, ValidateQLinearMatMul, kOctetDomain);
}

}  // namespace octet
