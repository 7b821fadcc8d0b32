// Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp), ArgMax/ArgMin and
// Softmax/LogSoftmax/Hardmax. FP32 runs on oneDNN reduction and softmax primitives where they
// compute the ONNX function; the rest runs plain loops (accumulating in double or int64).
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/elem_util.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using dnnl::memory;
using alg = dnnl::algorithm;

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

// ---- Reductions ------------------------------------------------------------------------------

// The reduced axes as a mask over the input's dimensions.
absl::StatusOr<std::vector<bool>> ReducedAxes(BuildContext& ctx, int64_t rank, bool* noop) {
  const Node& node = ctx.node();
  std::vector<int64_t> axes;
  if (ctx.has_input(1)) {
    const Tensor* t = ctx.constant(1);
    if (t == nullptr) return ctx.Unsupported("axes must be a constant or computable from shapes");
    axes = t->ToInt64Vector();
  } else if (node.HasAttr("axes")) {
    axes = node.GetInts("axes");
  }
  std::vector<bool> mask(rank, false);
  *noop = axes.empty() && node.GetInt("noop_with_empty_axes", 0) != 0;
  if (*noop) return mask;
  if (axes.empty()) {
    mask.assign(rank, true);
    return mask;
  }
  for (int64_t a : axes) {
    auto ax = NormalizeAxis(ctx, a, rank);
    if (!ax.ok()) return ax.status();
    if (mask[*ax]) return ctx.Invalid(absl::StrCat("axis ", a, " is repeated"));
    mask[*ax] = true;
  }
  return mask;
}

bool TryDnnlReduce(BuildContext& ctx, Reduce op, const Shape& keep_shape, const Shape& out_shape,
                   std::unique_ptr<OpKernel>* kernel) {
  alg a = alg::undef;
  float p = 0;
  alg post = alg::undef;
  switch (op) {
    case Reduce::kSum: a = alg::reduction_sum; break;
    case Reduce::kMean: a = alg::reduction_mean; break;
    case Reduce::kMax: a = alg::reduction_max; break;
    case Reduce::kMin: a = alg::reduction_min; break;
    case Reduce::kProd: a = alg::reduction_mul; break;
    case Reduce::kL1: a = alg::reduction_norm_lp_sum; p = 1; break;  // (sum |x|^1)^(1/1)
    case Reduce::kL2: a = alg::reduction_norm_lp_sum; p = 2; break;  // sqrt(sum x^2)
    case Reduce::kSumSquare: a = alg::reduction_norm_lp_power_p_sum; p = 2; break;
    case Reduce::kLogSum: a = alg::reduction_sum; post = alg::eltwise_log; break;
    case Reduce::kLogSumExp: return false;  // needs the max subtracted for stability
  }
  const PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype != DType::kF32 || NumElements(x.shape) == 0 || x.shape.empty()) return false;
  const dnnl::engine& eng = ctx.engine();
  const memory::desc src_md = PlainDesc(DType::kF32, x.shape);
  const memory::desc dst_md = PlainDesc(DType::kF32, keep_shape);
  dnnl::reduction::primitive_desc pd;
  dnnl::primitive post_prim;  // a separate in-place primitive: oneDNN 2.6's reference kernels
                              // mishandle eltwise post-ops
  try {
    pd = dnnl::reduction::primitive_desc(dnnl::reduction::desc(a, src_md, dst_md, p, 0.0f), eng);
    if (post != alg::undef) {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, post, dst_md, 0.0f, 0.0f);
      post_prim = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, eng));
    }
  } catch (const dnnl::error&) {
    return false;
  }
  memory src = ctx.input(0).Memory(eng);
  PlanValue& y = ctx.DefineOutput(0, DType::kF32, out_shape);
  memory dst(dst_md, eng, y.buffer.data());  // keepdims view of the output buffer
  auto seq = std::make_unique<SequenceKernel>(ImplName(pd));
  seq->Add(std::make_unique<PrimitiveKernel>(
      dnnl::reduction(pd), std::unordered_map<int, memory>{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}},
      ImplName(pd)));
  if (post_prim) {
    seq->Add(std::make_unique<PrimitiveKernel>(
        post_prim, std::unordered_map<int, memory>{{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}}, ""));
  }
  *kernel = std::move(seq);
  return true;
}

// Geometry of a loop reduction: the input's dimensions merged into alternating kept/reduced
// runs, with the output stride of each (0 for reduced runs).
struct ReduceGeometry {
  static constexpr int kMaxRank = 16;
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{}, ostr{};
  int64_t n_in = 0, count = 1;  // input elements; elements reduced into each output

  bool Init(const Shape& shape, const std::vector<bool>& mask) {
    std::vector<int64_t> d;
    std::vector<bool> red;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 1) continue;
      if (!d.empty() && red.back() == mask[i]) {
        d.back() *= shape[i];
      } else {
        d.push_back(shape[i]);
        red.push_back(mask[i]);
      }
    }
    if (d.empty()) {
      d.push_back(1);
      red.push_back(true);
    }
    if (d.size() > kMaxRank) return false;
    rank = static_cast<int>(d.size());
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; --i) {
      dims[i] = d[i];
      ostr[i] = red[i] ? 0 : s;
      if (red[i]) count *= d[i]; else s *= d[i];
    }
    n_in = NumElements(shape);
    return true;
  }

  // Calls f(output_index, x) for every input element, in input order.
  template <typename T, typename F>
  void Visit(const T* in, F f) const {
    if (n_in == 0) return;
    const int64_t len = dims[rank - 1], st = ostr[rank - 1];
    std::array<int64_t, kMaxRank> cnt{};
    int64_t off = 0;
    for (int64_t i = 0; i < n_in; i += len) {
      const T* row = in + i;
      for (int64_t j = 0; j < len; ++j) f(off + j * st, row[j]);
      for (int d = rank - 2; d >= 0; --d) {
        off += ostr[d];
        if (++cnt[d] < dims[d]) break;
        off -= ostr[d] * dims[d];
        cnt[d] = 0;
      }
    }
  }
};

// Loop reduction, accumulating in double (float inputs) or int64 (integer inputs) in a buffer
// allocated at build time.
template <typename T>
absl::StatusOr<std::unique_ptr<OpKernel>> ReduceLoop(BuildContext& ctx, Reduce op,
                                                     const std::vector<bool>& mask,
                                                     const Shape& out_shape) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  PlanValue& x = ctx.input(0);
  ReduceGeometry g;
  if (!g.Init(x.shape, mask)) return ctx.Unsupported("too many dimensions");
  const T* in = static_cast<const T*>(x.buffer.data());
  T* out = static_cast<T*>(ctx.DefineOutput(0, x.dtype, out_shape).buffer.data());
  const int64_t n_out = NumElements(out_shape);
  auto scratch = std::make_shared<std::vector<Acc>>(op == Reduce::kLogSumExp ? 2 * n_out : n_out);
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [op, g, in, out, n_out, scratch]() {
        Acc* a = scratch->data();
        Acc* m = a + n_out;  // LogSumExp: the maxima
        Acc init = 0;
        if (op == Reduce::kProd) init = 1;
        if (op == Reduce::kMax || op == Reduce::kLogSumExp) init = std::numeric_limits<Acc>::lowest();
        if (op == Reduce::kMin) init = std::numeric_limits<Acc>::max();
        std::fill(a, a + n_out, init);
        switch (op) {
          case Reduce::kSum:
          case Reduce::kMean:
          case Reduce::kLogSum:
            g.Visit(in, [a](int64_t o, T v) { a[o] += v; });
            break;
          case Reduce::kMax:
            g.Visit(in, [a](int64_t o, T v) { a[o] = v > a[o] ? Acc(v) : a[o]; });
            break;
          case Reduce::kMin:
            g.Visit(in, [a](int64_t o, T v) { a[o] = v < a[o] ? Acc(v) : a[o]; });
            break;
          case Reduce::kProd:
            g.Visit(in, [a](int64_t o, T v) { a[o] *= v; });
            break;
          case Reduce::kL1:
            g.Visit(in, [a](int64_t o, T v) { a[o] += v < 0 ? -Acc(v) : Acc(v); });
            break;
          case Reduce::kL2:
          case Reduce::kSumSquare:
            g.Visit(in, [a](int64_t o, T v) { a[o] += Acc(v) * Acc(v); });
            break;
          case Reduce::kLogSumExp:
            // log(sum(exp(x))) = max + log(sum(exp(x - max))).
            std::copy(a, a + n_out, m);
            std::fill(a, a + n_out, Acc(0));
            g.Visit(in, [m](int64_t o, T v) { m[o] = v > m[o] ? Acc(v) : m[o]; });
            g.Visit(in, [a, m](int64_t o, T v) {
              a[o] += static_cast<Acc>(std::exp(static_cast<double>(v) - static_cast<double>(m[o])));
            });
            break;
        }
        for (int64_t i = 0; i < n_out; ++i) {
          double v = static_cast<double>(a[i]);
          switch (op) {
            case Reduce::kMean:
              if constexpr (std::is_floating_point_v<T>) {
                v = g.count == 0 ? std::nan("") : v / static_cast<double>(g.count);
              } else {
                v = g.count == 0 ? 0 : static_cast<double>(a[i] / g.count);
              }
              break;
            case Reduce::kL2: v = std::sqrt(v); break;
            case Reduce::kLogSum: v = std::log(v); break;
            case Reduce::kLogSumExp: v = std::log(v) + static_cast<double>(m[i]); break;
            default: break;
          }
          if constexpr (std::is_floating_point_v<T>) {
            out[i] = static_cast<T>(v);
          } else {
            out[i] = static_cast<T>(std::isfinite(v) ? static_cast<int64_t>(v) : 0);
          }
        }
        return absl::OkStatus();
      },
      "ref:loop"));
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildReduce(BuildContext& ctx, Reduce op) {
  const PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype == DType::kBool) return ctx.Invalid("bool input is not allowed");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  bool noop = false;
  auto mask = ReducedAxes(ctx, rank, &noop);
  if (!mask.ok()) return mask.status();
  const bool keepdims = ctx.node().GetInt("keepdims", 1) != 0;
  Shape keep_shape, out_shape;
  for (int64_t d = 0; d < rank; ++d) {
    keep_shape.push_back((*mask)[d] ? 1 : x.shape[d]);
    if (!(*mask)[d] || keepdims) out_shape.push_back(keep_shape.back());
    if ((*mask)[d] && x.shape[d] == 0 && (op == Reduce::kMax || op == Reduce::kMin)) {
      return ctx.Invalid("cannot take the max/min of an empty axis");
    }
  }
  if (noop) {
    // noop_with_empty_axes: the reduction's elementwise part only (identity for most).
    mask->assign(rank, false);
  }
  std::unique_ptr<OpKernel> kernel;
  if (!noop && TryDnnlReduce(ctx, op, keep_shape, out_shape, &kernel)) return kernel;
  return VisitDType(x.dtype, [&](auto tag) {
    return ReduceLoop<decltype(tag)>(ctx, op, *mask, out_shape);
  });
}

// ---- ArgMax / ArgMin -------------------------------------------------------------------------

template <typename T>
std::unique_ptr<OpKernel> ArgLoop(BuildContext& ctx, bool is_max, bool last, int64_t outer,
                                  int64_t len, int64_t inner, const Shape& out_shape) {
  const T* in = static_cast<const T*>(ctx.input(0).buffer.data());
  int64_t* out = ctx.DefineOutput(0, DType::kS64, out_shape).buffer.data_as<int64_t>();
  return std::make_unique<LambdaKernel>(
      [=]() {
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            const T* p = in + o * len * inner + i;
            T best = p[0];
            int64_t idx = 0;
            for (int64_t k = 1; k < len; ++k) {
              const T v = p[k * inner];
              const bool better = is_max ? (last ? v >= best : v > best)
                                         : (last ? v <= best : v < best);
              if (better) {
                best = v;
                idx = k;
              }
            }
            out[o * inner + i] = idx;
          }
        }
        return absl::OkStatus();
      },
      "ref:loop");
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildArg(BuildContext& ctx, bool is_max) {
  const Node& node = ctx.node();
  const PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype == DType::kBool) return ctx.Invalid("bool input is not allowed");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  auto axis = NormalizeAxis(ctx, node.GetInt("axis", 0), rank);
  if (!axis.ok()) return axis.status();
  const bool keepdims = node.GetInt("keepdims", 1) != 0;
  const bool last = node.GetInt("select_last_index", 0) != 0;
  int64_t outer = 1, inner = 1, len = rank == 0 ? 1 : x.shape[*axis];
  Shape out_shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < *axis) outer *= x.shape[d];
    if (d > *axis) inner *= x.shape[d];
    if (d != *axis) out_shape.push_back(x.shape[d]);
    if (d == *axis && keepdims) out_shape.push_back(1);
  }
  if (len == 0) return ctx.Invalid("cannot take the arg max/min of an empty axis");
  return VisitDType(x.dtype, [&](auto tag) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
    return ArgLoop<decltype(tag)>(ctx, is_max, last, outer, len, inner, out_shape);
  });
}

// ---- Softmax family --------------------------------------------------------------------------

enum class Soft { kSoftmax, kLogSoftmax, kHardmax };

absl::StatusOr<std::unique_ptr<OpKernel>> BuildSoftmax(BuildContext& ctx, Soft op) {
  const Node& node = ctx.node();
  const PlanValue& x = ctx.input_any_layout(0);
  if (x.dtype != DType::kF32) return ctx.Unsupported(absl::StrCat(DTypeName(x.dtype), " input"));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0) return ctx.Invalid("input must have at least one dimension");
  // Before opset 13 the input is coerced to 2-D [prod(dims < axis), prod(dims >= axis)] and the
  // function runs over the second dimension; from 13 it runs over the single axis.
  const bool coerce = ctx.opset() < 13;
  auto axis = NormalizeAxis(ctx, node.GetInt("axis", coerce ? 1 : -1), rank);
  if (!axis.ok()) return axis.status();
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < *axis) outer *= x.shape[d];
    if (d == *axis || (coerce && d > *axis)) len *= x.shape[d];
    if (d > *axis && !coerce) inner *= x.shape[d];
  }
  const Shape shape = x.shape;
  const int64_t total = outer * len * inner;
  if (op != Soft::kHardmax && total > 0) {
    const dnnl::engine& eng = ctx.engine();
    const memory::desc md({outer, len, inner}, memory::data_type::f32, memory::format_tag::abc);
    try {
      dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                       op == Soft::kSoftmax ? alg::softmax_accurate : alg::softmax_log,
                                       md, md, 1);
      dnnl::softmax_v2_forward::primitive_desc pd(d, eng);
      void* src = ctx.input(0).buffer.data();
      PlanValue& y = ctx.DefineOutput(0, DType::kF32, shape);
      return std::unique_ptr<OpKernel>(new PrimitiveKernel(
          dnnl::softmax_v2_forward(pd),
          {{DNNL_ARG_SRC, memory(md, eng, src)}, {DNNL_ARG_DST, memory(md, eng, y.buffer.data())}},
          ImplName(pd)));
    } catch (const dnnl::error&) {
      // fall through to the loop
    }
  }
  const float* in = ctx.input(0).buffer.data_as<float>();
  float* out = ctx.DefineOutput(0, DType::kF32, shape).buffer.data_as<float>();
  return std::unique_ptr<OpKernel>(new LambdaKernel(
      [=]() {
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            const float* p = in + o * len * inner + i;
            float* q = out + o * len * inner + i;
            float m = p[0];
            int64_t arg = 0;
            for (int64_t k = 1; k < len; ++k) {
              if (p[k * inner] > m) {
                m = p[k * inner];
                arg = k;
              }
            }
            if (op == Soft::kHardmax) {
              for (int64_t k = 0; k < len; ++k) q[k * inner] = k == arg ? 1.0f : 0.0f;
              continue;
            }
            double sum = 0;
            for (int64_t k = 0; k < len; ++k) sum += std::exp(static_cast<double>(p[k * inner] - m));
            const double log_sum = std::log(sum);
            for (int64_t k = 0; k < len; ++k) {
              const double z = static_cast<double>(p[k * inner] - m);
              q[k * inner] = static_cast<float>(op == Soft::kSoftmax ? std::exp(z) / sum : z - log_sum);
            }
          }
        }
        return absl::OkStatus();
      },
      "ref:loop"));
}

absl::Status ValidateInputs(const Node& n, size_t lo, size_t hi) {
  if (n.inputs.size() < lo || n.inputs.size() > hi || n.inputs[0].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": expects ", lo, "..", hi,
                                                   " inputs, got ", n.inputs.size()));
  }
  return absl::OkStatus();
}

void AddReduce(OpRegistry& r, const std::string& type, Reduce op) {
  AddOp(
      r, type, [op](BuildContext& ctx) { return BuildReduce(ctx, op); },
      [](const Node& n, int64_t) -> absl::Status {
        if (auto s = CheckAttributes(n, {"axes", "keepdims", "noop_with_empty_axes"}); !s.ok()) {
          return s;
        }
        if (n.HasAttr("axes") && n.HasInput(1)) {
          return absl::InvalidArgumentError(n.Label() + ": axes given both as attribute and input");
        }
        return ValidateInputs(n, 1, 2);
      });
}

}  // namespace

void RegisterReduceOps(OpRegistry& r) {
  AddReduce(r, "ReduceSum", Reduce::kSum);
  AddReduce(r, "ReduceMean", Reduce::kMean);
  AddReduce(r, "ReduceMax", Reduce::kMax);
  AddReduce(r, "ReduceMin", Reduce::kMin);
  AddReduce(r, "ReduceProd", Reduce::kProd);
  AddReduce(r, "ReduceL1", Reduce::kL1);
  AddReduce(r, "ReduceL2", Reduce::kL2);
  AddReduce(r, "ReduceSumSquare", Reduce::kSumSquare);
  AddReduce(r, "ReduceLogSum", Reduce::kLogSum);
  AddReduce(r, "ReduceLogSumExp", Reduce::kLogSumExp);
  for (bool is_max : {true, false}) {
    AddOp(
        r, is_max ? "ArgMax" : "ArgMin",
        [is_max](BuildContext& ctx) { return BuildArg(ctx, is_max); },
        [](const Node& n, int64_t) -> absl::Status {
          if (auto s = CheckAttributes(n, {"axis", "keepdims", "select_last_index"}); !s.ok()) {
            return s;
          }
          return ValidateInputs(n, 1, 1);
        });
  }
  const std::pair<const char*, Soft> soft[] = {
      {"Softmax", Soft::kSoftmax}, {"LogSoftmax", Soft::kLogSoftmax}, {"Hardmax", Soft::kHardmax}};
  for (const auto& [name, op] : soft) {
    AddOp(
        r, name, [op = op](BuildContext& ctx) { return BuildSoftmax(ctx, op); },
        [](const Node& n, int64_t) -> absl::Status {
          if (auto s = CheckAttributes(n, {"axis"}); !s.ok()) return s;
          return ValidateInputs(n, 1, 1);
        });
  }
}

}  // namespace octet
