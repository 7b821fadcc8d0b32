// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool on oneDNN pooling primitives, in
// whatever layout the producer chose. Two cases use a reference loop on plain layouts instead:
// MaxPool's Indices output, and AveragePool with count_include_pad and ceil_mode where the
// ceil-mode extension reaches past the declared padding (ONNX does not count that extension in
// the divisor; oneDNN's include_padding would).
#include <algorithm>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using dnnl::memory;
using alg = dnnl::algorithm;

absl::Status ValidatePool(const Node& n, int64_t opset) {
  std::vector<std::string> attrs = {"auto_pad", "kernel_shape", "pads", "strides"};
  if (n.op_type == "MaxPool") {
    attrs.insert(attrs.end(), {"ceil_mode", "dilations", "storage_order"});
  } else if (n.op_type == "AveragePool") {
    attrs.insert(attrs.end(), {"ceil_mode", "count_include_pad", "dilations"});
  } else {
    attrs.clear();  // Global pools have no attributes.
  }
  if (auto s = CheckAttributes(n, attrs); !s.ok()) return s;
  if (n.inputs.size() != 1 || !n.HasInput(0)) {
    return absl::InvalidArgumentError(n.Label() + ": needs exactly one input");
  }
  if ((n.op_type == "MaxPool" || n.op_type == "AveragePool") && !n.HasAttr("kernel_shape")) {
    return absl::InvalidArgumentError(n.Label() + ": kernel_shape is required");
  }
  (void)opset;
  return absl::OkStatus();
}

// Reference pooling on plain NC[D]HW data with up to 3 spatial dimensions (padded with 1s).
struct RefPoolParams {
  int64_t outer = 0;  // N * C
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
          d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
  bool max = true;
  bool include_pad = false;
  bool column_major_indices = false;  // MaxPool storage_order = 1
};

template <typename T>
void RefPool(const RefPoolParams& p, const T* x, T* y, int64_t* indices, int threads) {
  const int64_t in_sz = p.in[0] * p.in[1] * p.in[2];
  const int64_t out_sz = p.out[0] * p.out[1] * p.out[2];
#pragma omp parallel for num_threads(threads) if (p.outer * out_sz > 4096)
  for (int64_t nc = 0; nc < p.outer; ++nc) {
    const T* xp = x + nc * in_sz;
    for (int64_t o0 = 0; o0 < p.out[0]; ++o0) {
      for (int64_t o1 = 0; o1 < p.out[1]; ++o1) {
        for (int64_t o2 = 0; o2 < p.out[2]; ++o2) {
          const int64_t o[3] = {o0, o1, o2};
          int64_t start[3], divisor = 1;
          for (int i = 0; i < 3; ++i) {
            start[i] = o[i] * p.s[i] - p.pb[i];
            // Positions inside input + declared padding (ONNX/ORT count_include_pad divisor).
            int64_t end = std::min(start[i] + (p.k[i] - 1) * p.d[i] + 1, p.in[i] + p.pe[i]);
            divisor *= (end - start[i] + p.d[i] - 1) / p.d[i];
          }
          float best = -std::numeric_limits<float>::infinity(), sum = 0;
          int64_t best_idx = 0, count = 0;
          for (int64_t k0 = 0; k0 < p.k[0]; ++k0) {
            const int64_t i0 = start[0] + k0 * p.d[0];
            if (i0 < 0 || i0 >= p.in[0]) continue;
            for (int64_t k1 = 0; k1 < p.k[1]; ++k1) {
              const int64_t i1 = start[1] + k1 * p.d[1];
              if (i1 < 0 || i1 >= p.in[1]) continue;
              for (int64_t k2 = 0; k2 < p.k[2]; ++k2) {
                const int64_t i2 = start[2] + k2 * p.d[2];
                if (i2 < 0 || i2 >= p.in[2]) continue;
                const int64_t off = (i0 * p.in[1] + i1) * p.in[2] + i2;
                const float v = static_cast<float>(xp[off]);
                if (p.max) {
                  if (v > best || count == 0) {
                    best = v;
                    best_idx = p.column_major_indices ? (i2 * p.in[1] + i1) * p.in[0] + i0 : off;
                  }
                } else {
                  sum += v;
                }
                ++count;
              }
            }
          }
          const int64_t oi = nc * out_sz + (o0 * p.out[1] + o1) * p.out[2] + o2;
          if (p.max) {
            y[oi] = static_cast<T>(best);
            if (indices != nullptr) indices[oi] = nc * in_sz + best_idx;
          } else {
            y[oi] = static_cast<T>(count == 0 ? 0.0f : sum / (p.include_pad ? divisor : count));
          }
        }
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<OpKernel>> BuildPool(BuildContext& ctx) {
  const Node& node = ctx.node();
  const bool global = node.op_type == "GlobalAveragePool" || node.op_type == "GlobalMaxPool";
  const bool is_max = node.op_type == "MaxPool" || node.op_type == "GlobalMaxPool";
  PlanValue& x = ctx.input_any_layout(0);
  const int rank = static_cast<int>(x.shape.size());
  if (rank < 3 || rank > 5) {
    return ctx.Unsupported(
        absl::StrCat("input ", ShapeToString(x.shape), ": only 1 to 3 spatial dimensions"));
  }
  const bool int8 = x.dtype == DType::kU8 || x.dtype == DType::kS8;
  if (x.dtype != DType::kF32 && !(is_max && int8)) {
    return ctx.Unsupported(absl::StrCat("input type ", DTypeName(x.dtype)));
  }
  const std::vector<int64_t> in_sp(x.shape.begin() + 2, x.shape.end());
  const size_t n_sp = in_sp.size();
  WindowGeometry g;
  if (global) {
    g.kernel = in_sp;
    g.strides.assign(n_sp, 1);
    g.dilations.assign(n_sp, 1);
    g.pad_begin.assign(n_sp, 0);
    g.pad_end.assign(n_sp, 0);
    g.out.assign(n_sp, 1);
  } else {
    const bool ceil_mode = node.GetInt("ceil_mode", 0) != 0;
    auto geo = ResolveWindow(node, in_sp, node.GetInts("kernel_shape"), ceil_mode);
    if (!geo.ok()) return geo.status();
    g = *geo;
  }
  Shape out_shape = {x.shape[0], x.shape[1]};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());

  const bool include_pad = node.GetInt("count_include_pad", 0) != 0;
  // Declared end padding (auto_pad's or the pads attribute) vs what ResolveWindow gave oneDNN.
  std::vector<int64_t> declared_end = g.pad_end;
  if (!global && node.GetString("auto_pad", "NOTSET") == "NOTSET") {
    std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * n_sp, 0));
    declared_end.assign(pads.begin() + n_sp, pads.end());
  }
  bool extended = false;
  for (size_t i = 0; i < n_sp; ++i) extended |= g.pad_end[i] > declared_end[i];
  const bool want_indices = node.outputs.size() > 1 && !node.outputs[1].empty();
  if (want_indices || (!is_max && include_pad && extended)) {
    if (want_indices && x.dtype != DType::kF32) {
      return ctx.Unsupported("MaxPool Indices output for integer input");
    }
    RefPoolParams p;
    p.outer = x.shape[0] * x.shape[1];
    const size_t off = 3 - n_sp;
    for (size_t i = 0; i < n_sp; ++i) {
      p.in[off + i] = in_sp[i];
      p.out[off + i] = g.out[i];
      p.k[off + i] = g.kernel[i];
      p.s[off + i] = g.strides[i];
      p.d[off + i] = g.dilations[i];
      p.pb[off + i] = g.pad_begin[i];
      // Divisor counts only the declared padding.
      p.pe[off + i] = std::min(g.pad_end[i], declared_end[i]);
    }
    p.max = is_max;
    p.include_pad = include_pad;
    if (node.GetInt("storage_order", 0) != 0) {
      if (n_sp != 2) return ctx.Unsupported("storage_order = 1 needs 2 spatial dimensions");
      p.column_major_indices = true;
    }
    const float* xp = ctx.input(0).buffer.data_as<const float>();
    float* yp = ctx.DefineOutput(0, DType::kF32, out_shape).buffer.data_as<float>();
    int64_t* ip = want_indices
                      ? ctx.DefineOutput(1, DType::kS64, out_shape).buffer.data_as<int64_t>()
                      : nullptr;
    const int threads = ctx.num_threads();
    return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
        [p, xp, yp, ip, threads]() {
          RefPool<float>(p, xp, yp, ip, threads);
          return absl::OkStatus();
        },
        "ref:pool"));
  }

  memory::dims strides(g.strides.begin(), g.strides.end()),
      kernel(g.kernel.begin(), g.kernel.end()), dil, pl(g.pad_begin.begin(), g.pad_begin.end()),
      pr(g.pad_end.begin(), g.pad_end.end());
  for (int64_t d : g.dilations) dil.push_back(d - 1);
  const alg a =
      is_max ? alg::pooling_max
             : (include_pad ? alg::pooling_avg_include_padding : alg::pooling_avg_exclude_padding);
  memory::desc dst_any(ToDims(out_shape), ToDnnl(x.dtype), memory::format_tag::any);
  const dnnl::engine& eng = ctx.engine();
  dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, a, x.md, dst_any, strides,
                                   kernel, dil, pl, pr);
  dnnl::pooling_v2_forward::primitive_desc pd(d, eng);
  const memory::desc dst_md = pd.dst_desc();
  PlanValue& y = ctx.DefineOutput(0, x.dtype, out_shape, &dst_md);
  std::string impl = ImplName(pd);
  return std::unique_ptr<OpKernel>(std::make_unique<PrimitiveKernel>(
      dnnl::pooling_v2_forward(pd),
      std::unordered_map<int, memory>{{DNNL_ARG_SRC, x.Memory(eng)}, {DNNL_ARG_DST, y.Memory(eng)}},
      impl));
}

}  // namespace

void RegisterPoolOps(OpRegistry& r) {
  for (const char* op : {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}) {
    AddOp(r, op, BuildPool, ValidatePool);
  }
}

}  // namespace octet
