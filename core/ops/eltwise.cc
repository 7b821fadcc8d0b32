// Element-wise unary operators. FP32 inputs run on oneDNN eltwise in the producer's layout (the
// output keeps it, so blocked layouts flow between convolutions) when oneDNN has an algorithm that
// computes exactly the ONNX function; other functions and integer/bool inputs run plain loops.
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/elem_util.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using alg = dnnl::algorithm;

// One eltwise stage: dnnl algorithm with its alpha and beta.
struct Stage {
  alg algorithm = alg::undef;
  float alpha = 0, beta = 0;
};

// out = post(main(x)) on oneDNN, or nullptr if not available. The second stage is a separate
// in-place primitive: oneDNN 2.6's reference eltwise ignores eltwise post-ops (writes zeros).
absl::StatusOr<std::unique_ptr<OpKernel>> TryDnnl(BuildContext& ctx, Stage main, Stage post = {}) {
  PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype != DType::kF32 || main.algorithm == alg::undef || NumElements(x.shape) == 0) {
    return nullptr;
  }
  const dnnl::engine& eng = ctx.engine();
  std::vector<dnnl::eltwise_forward::primitive_desc> pds;
  try {
    for (const Stage& st : {main, post}) {
      if (st.algorithm == alg::undef) continue;
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, st.algorithm, x.md,
                                    st.alpha, st.beta);
      pds.emplace_back(d, eng);
    }
  } catch (const dnnl::error&) {
    return nullptr;
  }
  const dnnl::memory::desc md = x.md;
  dnnl::memory src = x.Memory(eng);
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, x.shape, &md);
  dnnl::memory dst = y.Memory(eng);
  auto kernel = std::make_unique<SequenceKernel>(ImplName(pds[0]));
  for (size_t i = 0; i < pds.size(); ++i) {
    kernel->Add(std::make_unique<PrimitiveKernel>(
        dnnl::eltwise_forward(pds[i]),
        std::unordered_map<int, dnnl::memory>{{DNNL_ARG_SRC, i == 0 ? src : dst},
                                              {DNNL_ARG_DST, dst}},
        ImplName(pds[i])));
  }
  return std::unique_ptr<OpKernel>(std::move(kernel));
}

// out[i] = f(in[i]) over plain buffers.
template <typename T, typename O = T, typename F>
std::unique_ptr<OpKernel> Loop(BuildContext& ctx, DType out_dtype, F f) {
  PlanValue& x = ctx.input(0);
  const T* in = static_cast<const T*>(x.buffer.data());
  O* out = static_cast<O*>(ctx.DefineOutput(0, out_dtype, x.shape).buffer.data());
  const int64_t n = NumElements(x.shape);
  const int nt = ctx.num_threads();
  return std::make_unique<LambdaKernel>(
      [in, out, n, nt, f]() {
        ParallelChunks(n, n, nt, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) out[i] = f(in[i]);
        });
        return absl::OkStatus();
      },
      "ref:loop");
}

enum class Op {
  kRelu, kLeakyRelu, kSigmoid, kTanh, kHardSigmoid, kHardSwish, kSqrt, kExp, kLog, kErf, kAbs,
  kNeg, kReciprocal, kFloor, kCeil, kRound, kSoftplus, kSoftsign, kElu, kSelu, kCelu, kSign, kNot,
  kGelu, kThresholdedRelu, kShrink
};

// Integer (and bool) inputs: the ops that are defined for them.
template <typename T>
absl::StatusOr<std::unique_ptr<OpKernel>> BuildIntegerLoop(BuildContext& ctx, Op op, DType dt) {
  if constexpr (std::is_floating_point_v<T>) {
    return ctx.Unsupported("not an integer type");
  } else {
  switch (op) {
    case Op::kRelu:
      return Loop<T>(ctx, dt, [](T x) { return x > 0 ? x : T(0); });
    case Op::kAbs:
      if constexpr (std::is_signed_v<T>) {
        return Loop<T>(ctx, dt, [](T x) { return x < 0 ? static_cast<T>(T(0) - x) : x; });
      } else {
        return Loop<T>(ctx, dt, [](T x) { return x; });
      }
    case Op::kNeg:
      return Loop<T>(ctx, dt, [](T x) {
        return static_cast<T>(std::make_unsigned_t<T>(0) - static_cast<std::make_unsigned_t<T>>(x));
      });
    case Op::kSign:
      if constexpr (std::is_signed_v<T>) {
        return Loop<T>(ctx, dt, [](T x) { return static_cast<T>((T(0) < x) - (x < T(0))); });
      } else {
        return Loop<T>(ctx, dt, [](T x) { return static_cast<T>(x != 0); });
      }
    default:
      return ctx.Unsupported(absl::StrCat(DTypeName(dt), " input"));
  }
  }
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildUnary(BuildContext& ctx, Op op) {
  const Node& node = ctx.node();
  const DType dt = ctx.input_any_layout(0).dtype;
  if (op == Op::kNot) {
    if (dt != DType::kBool) return ctx.Invalid("input must be bool");
    return Loop<uint8_t>(ctx, dt, [](uint8_t x) { return uint8_t(x == 0); });
  }
  if (dt == DType::kBool) return ctx.Invalid("bool input is not allowed");
  if (dt != DType::kF32) {
    return VisitDType(dt, [&](auto tag) { return BuildIntegerLoop<decltype(tag)>(ctx, op, dt); });
  }
  Stage main, post;
  switch (op) {
    case Op::kRelu: main = {alg::eltwise_relu, 0, 0}; break;
    case Op::kLeakyRelu: main = {alg::eltwise_relu, node.GetFloat("alpha", 0.01f), 0}; break;
    case Op::kSigmoid: main = {alg::eltwise_logistic}; break;
    case Op::kTanh: main = {alg::eltwise_tanh}; break;
    case Op::kHardSigmoid:
      // max(0, min(1, alpha * x + beta)) = clip(linear(x)).
      main = {alg::eltwise_linear, node.GetFloat("alpha", 0.2f), node.GetFloat("beta", 0.5f)};
      post = {alg::eltwise_clip_v2, 0.0f, 1.0f};
      break;
    case Op::kHardSwish: main = {alg::eltwise_hardswish}; break;  // x * relu6(x + 3) / 6
    case Op::kSqrt: main = {alg::eltwise_sqrt}; break;
    case Op::kExp: main = {alg::eltwise_exp}; break;
    case Op::kLog: main = {alg::eltwise_log}; break;
    case Op::kAbs: main = {alg::eltwise_abs}; break;
    case Op::kNeg: main = {alg::eltwise_linear, -1.0f, 0.0f}; break;
    case Op::kRound: main = {alg::eltwise_round}; break;  // half to even, as ONNX
    case Op::kSoftplus: main = {alg::eltwise_soft_relu}; break;  // log(1 + exp(x))
    case Op::kElu: main = {alg::eltwise_elu, node.GetFloat("alpha", 1.0f), 0}; break;
    case Op::kSelu:
      // gamma * elu_alpha(x).
      main = {alg::eltwise_elu, node.GetFloat("alpha", 1.67326319217681884765625f), 0};
      post = {alg::eltwise_linear, node.GetFloat("gamma", 1.05070102214813232421875f), 0};
      break;
    case Op::kGelu:
      main = {node.GetString("approximate", "none") == "tanh" ? alg::eltwise_gelu_tanh
                                                             : alg::eltwise_gelu_erf};
      break;
    default: break;
  }
  auto k = TryDnnl(ctx, main, post);
  if (!k.ok() || *k != nullptr) return k;
  const DType f = DType::kF32;
  switch (op) {
    case Op::kRelu: return Loop<float>(ctx, f, [](float x) { return x > 0 ? x : 0.0f; });
    case Op::kLeakyRelu: {
      const float a = node.GetFloat("alpha", 0.01f);
      return Loop<float>(ctx, f, [a](float x) { return x >= 0 ? x : a * x; });
    }
    case Op::kSigmoid:
      return Loop<float>(ctx, f, [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
    case Op::kTanh: return Loop<float>(ctx, f, [](float x) { return std::tanh(x); });
    case Op::kHardSigmoid: {
      const float a = main.alpha, b = main.beta;
      return Loop<float>(ctx, f, [a, b](float x) { return std::fmax(0.0f, std::fmin(1.0f, a * x + b)); });
    }
    case Op::kHardSwish:
      return Loop<float>(ctx, f, [](float x) {
        return x * std::fmax(0.0f, std::fmin(1.0f, x / 6.0f + 0.5f));
      });
    case Op::kSqrt: return Loop<float>(ctx, f, [](float x) { return std::sqrt(x); });
    case Op::kExp: return Loop<float>(ctx, f, [](float x) { return std::exp(x); });
    case Op::kLog: return Loop<float>(ctx, f, [](float x) { return std::log(x); });
    case Op::kErf: return Loop<float>(ctx, f, [](float x) { return std::erf(x); });
    case Op::kAbs: return Loop<float>(ctx, f, [](float x) { return std::fabs(x); });
    case Op::kNeg: return Loop<float>(ctx, f, [](float x) { return -x; });
    case Op::kReciprocal: return Loop<float>(ctx, f, [](float x) { return 1.0f / x; });
    case Op::kFloor: return Loop<float>(ctx, f, [](float x) { return std::floor(x); });
    case Op::kCeil: return Loop<float>(ctx, f, [](float x) { return std::ceil(x); });
    case Op::kRound: return Loop<float>(ctx, f, [](float x) { return std::nearbyint(x); });
    case Op::kSoftplus:
      return Loop<float>(ctx, f, [](float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); });
    case Op::kSoftsign: return Loop<float>(ctx, f, [](float x) { return x / (1.0f + std::fabs(x)); });
    case Op::kElu: {
      const float a = main.alpha;
      return Loop<float>(ctx, f, [a](float x) { return x > 0 ? x : a * std::expm1(x); });
    }
    case Op::kSelu: {
      const float a = main.alpha, g = post.alpha;
      return Loop<float>(ctx, f, [a, g](float x) { return g * (x > 0 ? x : a * std::expm1(x)); });
    }
    case Op::kCelu: {
      const float a = node.GetFloat("alpha", 1.0f);
      if (a == 0) return ctx.Invalid("alpha must not be 0");
      return Loop<float>(ctx, f, [a](float x) {
        return std::fmax(0.0f, x) + std::fmin(0.0f, a * std::expm1(x / a));
      });
    }
    case Op::kSign:
      return Loop<float>(ctx, f, [](float x) { return x > 0 ? 1.0f : (x < 0 ? -1.0f : x); });
    case Op::kGelu: {
      if (main.algorithm == alg::eltwise_gelu_tanh) {
        return Loop<float>(ctx, f, [](float x) {
          const float k = 0.7978845608028654f;  // sqrt(2 / pi)
          return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
        });
      }
      return Loop<float>(ctx, f, [](float x) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); });
    }
    case Op::kThresholdedRelu: {
      const float a = node.GetFloat("alpha", 1.0f);
      return Loop<float>(ctx, f, [a](float x) { return x > a ? x : 0.0f; });
    }
    case Op::kShrink: {
      const float lambd = node.GetFloat("lambd", 0.5f), bias = node.GetFloat("bias", 0.0f);
      return Loop<float>(ctx, f, [lambd, bias](float x) {
        return x < -lambd ? x + bias : (x > lambd ? x - bias : 0.0f);
      });
    }
    case Op::kNot: break;
  }
  return ctx.Unsupported("op");
}

// ---- Clip ------------------------------------------------------------------------------------

// Clip bounds: attributes before opset 11, optional inputs 1 and 2 from opset 11. A bound input
// that is not constant is read at run time (a one-element tensor of the input's type).
template <typename T>
absl::StatusOr<std::unique_ptr<OpKernel>> BuildClipTyped(BuildContext& ctx) {
  const Node& node = ctx.node();
  const DType dt = ctx.input_any_layout(0).dtype;
  // Default bounds: the type's range.
  static const T kLowest = std::numeric_limits<T>::lowest();
  static const T kMax = std::numeric_limits<T>::max();
  const T* bound[2] = {&kLowest, &kMax};
  bool all_constant = true;
  T attr_bound[2] = {kLowest, kMax};
  if (ctx.opset() < 11) {
    if (node.HasAttr("min")) attr_bound[0] = static_cast<T>(node.GetFloat("min", 0));
    if (node.HasAttr("max")) attr_bound[1] = static_cast<T>(node.GetFloat("max", 0));
    bound[0] = &attr_bound[0];
    bound[1] = &attr_bound[1];
  } else {
    for (size_t i = 1; i <= 2; ++i) {
      if (!ctx.has_input(i)) continue;
      PlanValue& b = ctx.input(i);
      if (b.dtype != dt || NumElements(b.shape) != 1) {
        return ctx.Invalid(absl::StrCat(i == 1 ? "min" : "max", " must be a ", DTypeName(dt),
                                        " scalar, got ", DTypeName(b.dtype),
                                        ShapeToString(b.shape)));
      }
      bound[i - 1] = static_cast<const T*>(b.buffer.data());
      all_constant = all_constant && ctx.constant(i) != nullptr;
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    // oneDNN's clip returns lo for lo > hi where ONNX gives hi: only use it when lo <= hi.
    if (all_constant && *bound[0] <= *bound[1]) {
      auto k = TryDnnl(ctx, {alg::eltwise_clip_v2, *bound[0], *bound[1]});
      if (!k.ok() || *k != nullptr) return k;
    }
  }
  PlanValue& x = ctx.input(0);
  const T* in = static_cast<const T*>(x.buffer.data());
  T* out = static_cast<T*>(ctx.DefineOutput(0, dt, x.shape).buffer.data());
  const int64_t n = NumElements(x.shape);
  const int nt = ctx.num_threads();
  // Attribute bounds live in this frame: copy them into the kernel.
  const bool by_value = ctx.opset() < 11;
  const T lo_v = attr_bound[0], hi_v = attr_bound[1];
  const T* lo_p = bound[0];
  const T* hi_p = bound[1];
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() {
        const T lo = by_value ? lo_v : *lo_p, hi = by_value ? hi_v : *hi_p;
        ParallelChunks(n, n, nt, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            const T v = in[i] < lo ? lo : in[i];
            out[i] = v > hi ? hi : v;  // min(max(x, lo), hi), so lo > hi gives hi
          }
        });
        return absl::OkStatus();
      },
      "ref:loop"));
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildClip(BuildContext& ctx) {
  const DType dt = ctx.input_any_layout(0).dtype;
  if (dt == DType::kBool) return ctx.Invalid("bool input is not allowed");
  return VisitDType(dt, [&](auto tag) { return BuildClipTyped<decltype(tag)>(ctx); });
}

void Add(OpRegistry& r, const std::string& type, Op op, std::vector<std::string> attrs = {},
         const std::string& domain = "") {
  AddOp(
      r, type, [op](BuildContext& ctx) { return BuildUnary(ctx, op); },
      [attrs](const Node& n, int64_t opset) -> absl::Status {
        std::vector<std::string> allowed = attrs;
        if (opset < 6) allowed.push_back("consumed_inputs");
        if (auto s = CheckAttributes(n, allowed); !s.ok()) return s;
        if (n.inputs.size() != 1 || n.inputs[0].empty()) {
          return absl::InvalidArgumentError(n.Label() + ": expects one input");
        }
        return absl::OkStatus();
      },
      domain);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpKernel>> BuildDnnlEltwise(BuildContext& ctx, dnnl::algorithm a,
                                                           float alpha, float beta) {
  return TryDnnl(ctx, {a, alpha, beta});
}

void RegisterEltwiseOps(OpRegistry& r) {
  Add(r, "Relu", Op::kRelu);
  Add(r, "LeakyRelu", Op::kLeakyRelu, {"alpha"});
  Add(r, "Sigmoid", Op::kSigmoid);
  Add(r, "Tanh", Op::kTanh);
  Add(r, "HardSigmoid", Op::kHardSigmoid, {"alpha", "beta"});
  Add(r, "HardSwish", Op::kHardSwish);
  Add(r, "Sqrt", Op::kSqrt);
  Add(r, "Exp", Op::kExp);
  Add(r, "Log", Op::kLog);
  Add(r, "Erf", Op::kErf);
  Add(r, "Abs", Op::kAbs);
  Add(r, "Neg", Op::kNeg);
  Add(r, "Reciprocal", Op::kReciprocal);
  Add(r, "Floor", Op::kFloor);
  Add(r, "Ceil", Op::kCeil);
  Add(r, "Round", Op::kRound);
  Add(r, "Softplus", Op::kSoftplus);
  Add(r, "Softsign", Op::kSoftsign);
  Add(r, "Elu", Op::kElu, {"alpha"});
  Add(r, "Selu", Op::kSelu, {"alpha", "gamma"});
  Add(r, "Celu", Op::kCelu, {"alpha"});
  Add(r, "Sign", Op::kSign);
  Add(r, "Not", Op::kNot);
  Add(r, "ThresholdedRelu", Op::kThresholdedRelu, {"alpha"});
  Add(r, "Shrink", Op::kShrink, {"lambd", "bias"});
  Add(r, "Gelu", Op::kGelu, {"approximate"});
  Add(r, "Gelu", Op::kGelu, {}, "com.microsoft");
  AddOp(r, "Clip", BuildClip, [](const Node& n, int64_t opset) -> absl::Status {
    if (auto s = CheckAttributes(n, opset < 11 ? std::vector<std::string>{"min", "max"}
                                               : std::vector<std::string>{});
        !s.ok()) {
      return s;
    }
    if (n.inputs.empty() || n.inputs[0].empty() || n.inputs.size() > (opset < 11 ? 1u : 3u)) {
      return absl::InvalidArgumentError(n.Label() + ": expects X and (from opset 11) optional min, max");
    }
    return absl::OkStatus();
  });
}

}  // namespace octet
