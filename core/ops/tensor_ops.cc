// Tensor operators that select or rearrange elements: Gather, GatherElements, Slice, Split, Tile,
// Pad, DepthToSpace, SpaceToDepth. (Resize/Upsample are in resize.cc.)
//
// Everything whose source positions depend only on shapes and constant arguments is an
// IndexedCopy with tables built here once per plan; Gather/GatherElements read runtime indices
// and check each one (an out-of-range index is an INVALID_ARGUMENT status, never a stray read).
#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/ops/indexed_copy.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using KernelOr = absl::StatusOr<std::unique_ptr<OpKernel>>;

absl::Status NeedInputs(const Node& n, size_t min, size_t max) {
  size_t count = n.inputs.size();
  while (count > 0 && n.inputs[count - 1].empty()) --count;
  if (count < min || count > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(n.Label(), ": expects ", min, "-", max, " inputs, got ", count));
  }
  return absl::OkStatus();
}

// Reads index i of a s32/s64 buffer.
inline int64_t IndexAt(const void* p, bool is64, int64_t i) {
  return is64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

// ---- Gather ----

absl::Status ValidateGather(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"axis"}); !s.ok()) return s;
  return NeedInputs(n, 2, 2);
}

absl::Status CheckIndexType(BuildContext& ctx, DType t) {
  if (t != DType::kS32 && t != DType::kS64) {
    return ctx.Invalid(absl::StrCat("indices must be int32 or int64, got ", DTypeName(t)));
  }
  return absl::OkStatus();
}

KernelOr BuildGather(BuildContext& ctx) {
  PlanValue& data = ctx.input(0);
  PlanValue& idx = ctx.input(1);
  if (auto s = CheckIndexType(ctx, idx.dtype); !s.ok()) return s;
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  if (rank == 0) return ctx.Invalid("data must have rank >= 1");
  auto axis_or = NormalizeAxis(ctx, ctx.node().GetInt("axis", 0), rank);
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  Shape out_shape(data.shape.begin(), data.shape.begin() + axis);
  out_shape.insert(out_shape.end(), idx.shape.begin(), idx.shape.end());
  out_shape.insert(out_shape.end(), data.shape.begin() + axis + 1, data.shape.end());
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= data.shape[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= data.shape[k];
  const int64_t dim = data.shape[axis];
  const int64_t m = NumElements(idx.shape);
  const bool is64 = idx.dtype == DType::kS64;
  if (idx.is_constant) {
    for (int64_t j = 0; j < m; ++j) {
      const int64_t v = IndexAt(idx.buffer.data(), is64, j);
      if (v < -dim || v >= dim) {
        return ctx.Invalid(
            absl::StrCat("index ", v, " is out of range for axis ", axis, " of size ", dim));
      }
    }
  }
  PlanValue& out = ctx.DefineOutput(0, data.dtype, out_shape);
  const size_t block = static_cast<size_t>(inner) * DTypeSize(data.dtype);
  const char* src = static_cast<const char*>(data.buffer.data());
  const void* ind = idx.buffer.data();
  char* dst = static_cast<char*>(out.buffer.data());
  const std::string label = ctx.node().Label();
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [=]() -> absl::Status {
        for (int64_t j = 0; j < m; ++j) {
          const int64_t v = IndexAt(ind, is64, j);
          if (v < -dim || v >= dim) {
            return absl::InvalidArgumentError(absl::StrCat(
                label, ": index ", v, " is out of range for axis ", axis, " of size ", dim));
          }
        }
        if (block == 0) return absl::OkStatus();
        char* d = dst;
        for (int64_t o = 0; o < outer; ++o) {
          const char* s = src + o * dim * block;
          for (int64_t j = 0; j < m; ++j, d += block) {
            int64_t v = IndexAt(ind, is64, j);
            if (v < 0) v += dim;
            std::memcpy(d, s + v * block, block);
          }
        }
        return absl::OkStatus();
      },
      "ref"));
}

KernelOr BuildGatherElements(BuildContext& ctx) {
  PlanValue& data = ctx.input(0);
  PlanValue& idx = ctx.input(1);
  if (auto s = CheckIndexType(ctx, idx.dtype); !s.ok()) return s;
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  if (rank == 0 || static_cast<int64_t>(idx.shape.size()) != rank) {
    return ctx.Invalid("data and indices must have the same rank >= 1");
  }
  auto axis_or = NormalizeAxis(ctx, ctx.node().GetInt("axis", 0), rank);
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  for (int64_t k = 0; k < rank; ++k) {
    if (k != axis && idx.shape[k] > data.shape[k]) {
      return ctx.Invalid(absl::StrCat("indices ", ShapeToString(idx.shape), " exceed data ",
                                      ShapeToString(data.shape), " off axis"));
    }
  }
  PlanValue& out = ctx.DefineOutput(0, data.dtype, idx.shape);
  const std::vector<int64_t> strides = IndexedCopy::Strides(data.shape);
  const Shape shape = idx.shape;
  const size_t es = DTypeSize(data.dtype);
  const int64_t dim = data.shape[axis], n = NumElements(shape);
  const bool is64 = idx.dtype == DType::kS64;
  const char* src = static_cast<const char*>(data.buffer.data());
  const void* ind = idx.buffer.data();
  char* dst = static_cast<char*>(out.buffer.data());
  const std::string label = ctx.node().Label();
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [=]() -> absl::Status {
        int64_t coord[16] = {0};
        if (rank > 16) return absl::UnimplementedError(label + ": rank > 16");
        for (int64_t i = 0; i < n; ++i) {
          int64_t v = IndexAt(ind, is64, i);
          if (v < -dim || v >= dim) {
            return absl::InvalidArgumentError(absl::StrCat(
                label, ": index ", v, " is out of range for axis ", axis, " of size ", dim));
          }
          if (v < 0) v += dim;
          int64_t off = 0;
          for (int64_t k = 0; k < rank; ++k) off += (k == axis ? v : coord[k]) * strides[k];
          std::memcpy(dst + i * es, src + off * es, es);
          for (int64_t k = rank - 1; k >= 0; --k) {
            if (++coord[k] < shape[k]) break;
            coord[k] = 0;
          }
        }
        return absl::OkStatus();
      },
      "ref"));
}

// ---- Slice ----

absl::Status ValidateSlice(const Node& n, int64_t opset) {
  if (opset < 10) {
    if (auto s = CheckAttributes(n, {"starts", "ends", "axes"}); !s.ok()) return s;
    if (!n.HasAttr("starts") || !n.HasAttr("ends")) {
      return absl::InvalidArgumentError(n.Label() +
                                        ": attributes 'starts' and 'ends' are required");
    }
    return NeedInputs(n, 1, 1);
  }
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  return NeedInputs(n, 3, 5);
}

KernelOr BuildSlice(BuildContext& ctx) {
  const Node& node = ctx.node();
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = node.GetInts("starts");
    ends = node.GetInts("ends");
    axes = node.GetInts("axes");
  } else {
    const char* names[] = {"starts", "ends", "axes", "steps"};
    std::vector<int64_t>* dst[] = {&starts, &ends, &axes, &steps};
    for (size_t i = 1; i <= 4; ++i) {
      if (!ctx.has_input(i)) continue;
      auto v = ConstantInts(ctx, i, names[i - 1]);
      if (!v.ok()) return v.status();
      *dst[i - 1] = *std::move(v);
    }
  }
  PlanValue& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return ctx.Invalid("starts, ends, axes and steps must have the same length");
  }
  std::vector<int64_t> first(rank, 0), step(rank, 1);
  Shape out_shape = in.shape;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    auto ax = NormalizeAxis(ctx, axes[i], rank);
    if (!ax.ok()) return ax.status();
    const int64_t a = *ax, dim = in.shape[a];
    if (seen[a]) return ctx.Invalid(absl::StrCat("axis ", axes[i], " is repeated"));
    seen[a] = true;
    if (steps[i] == 0) return ctx.Invalid("steps must not be 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e = e < std::numeric_limits<int64_t>::min() + dim ? -1 : e + dim;
    if (steps[i] > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out_shape[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out_shape[a] = s > e ? (s - e + (-steps[i]) - 1) / (-steps[i]) : 0;
    }
    first[a] = s;
    step[a] = steps[i];
  }
  const std::vector<int64_t> strides = IndexedCopy::Strides(in.shape);
  std::vector<std::vector<int64_t>> offsets;
  for (int64_t k = 0; k < rank; ++k) {
    offsets.push_back(IndexedCopy::Linear(out_shape[k], strides[k], first[k], step[k]));
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(in.dtype), out_shape, std::move(offsets)),
                               in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

// ---- Split ----

absl::Status ValidateSplit(const Node& n, int64_t opset) {
  if (opset < 13) {
    if (auto s = CheckAttributes(n, {"axis", "split"}); !s.ok()) return s;
    return NeedInputs(n, 1, 2);  // Split-1 took `split` as an optional input
  }
  if (auto s = CheckAttributes(n, {"axis"}); !s.ok()) return s;
  return NeedInputs(n, 1, 2);
}

KernelOr BuildSplit(BuildContext& ctx) {
  const Node& node = ctx.node();
  PlanValue& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  auto axis_or = NormalizeAxis(ctx, node.GetInt("axis", 0), rank);
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or, dim = in.shape[axis];
  const int64_t n_out = static_cast<int64_t>(node.outputs.size());
  std::vector<int64_t> split = node.GetInts("split");
  if (ctx.has_input(1)) {
    auto v = ConstantInts(ctx, 1, "split");
    if (!v.ok()) return v.status();
    split = *v;
  }
  if (split.empty()) {
    if (dim % n_out != 0) {
      return ctx.Invalid(
          absl::StrCat("axis size ", dim, " does not split into ", n_out, " equal parts"));
    }
    split.assign(n_out, dim / n_out);
  }
  int64_t total = 0;
  for (int64_t s : split) {
    if (s < 0) return ctx.Invalid("split sizes must be >= 0");
    total += s;
  }
  if (static_cast<int64_t>(split.size()) != n_out || total != dim) {
    return ctx.Invalid(
        absl::StrCat("split sizes do not sum to axis size ", dim, " over ", n_out, " outputs"));
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= in.shape[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= in.shape[k];
  const size_t es = DTypeSize(in.dtype);
  struct Part {
    char* dst;
    size_t bytes;
  };
  std::vector<Part> parts;
  for (int64_t i = 0; i < n_out; ++i) {
    Shape shape = in.shape;
    shape[axis] = split[i];
    char* dst = nullptr;
    if (!node.outputs[i].empty()) {
      dst = static_cast<char*>(ctx.DefineOutput(i, in.dtype, shape).buffer.data());
    }
    parts.push_back({dst, static_cast<size_t>(split[i] * inner) * es});
  }
  const char* src = static_cast<const char*>(in.buffer.data());
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [parts = std::move(parts), src, outer]() {
        const char* s = src;
        for (int64_t o = 0; o < outer; ++o) {
          for (const Part& p : parts) {
            if (p.dst != nullptr && p.bytes > 0) std::memcpy(p.dst + o * p.bytes, s, p.bytes);
            s += p.bytes;
          }
        }
        return absl::OkStatus();
      },
      "memcpy"));
}

// ---- Tile ----

KernelOr BuildTile(BuildContext& ctx) {
  if (ctx.opset() < 6) return ctx.Unsupported("Tile-1 (tiles/axis inputs) is not supported");
  auto repeats = ConstantInts(ctx, 1, "repeats");
  if (!repeats.ok()) return repeats.status();
  PlanValue& in = ctx.input(0);
  const size_t rank = in.shape.size();
  if (repeats->size() != rank) {
    return ctx.Invalid(absl::StrCat("repeats has ", repeats->size(), " entries for rank ", rank));
  }
  const std::vector<int64_t> strides = IndexedCopy::Strides(in.shape);
  Shape out_shape(rank);
  std::vector<std::vector<int64_t>> offsets(rank);
  for (size_t k = 0; k < rank; ++k) {
    if ((*repeats)[k] < 0) return ctx.Invalid("repeats must be >= 0");
    out_shape[k] = in.shape[k] * (*repeats)[k];
    for (int64_t j = 0; j < out_shape[k]; ++j) offsets[k].push_back(j % in.shape[k] * strides[k]);
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(in.dtype), out_shape, std::move(offsets)),
                               in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

// ---- Pad ----

absl::Status ValidatePad(const Node& n, int64_t opset) {
  auto s = opset < 11 ? CheckAttributes(n, {"mode", "pads", "paddings", "value"})
                      : CheckAttributes(n, {"mode"});
  if (!s.ok()) return s;
  const std::string mode = n.GetString("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge") {
    return absl::UnimplementedError(absl::StrCat(n.Label(), ": attribute 'mode' value '", mode,
                                                 "' is not supported (constant, reflect, edge)"));
  }
  return opset < 11 ? NeedInputs(n, 1, 1) : NeedInputs(n, 2, 3);
}

KernelOr BuildPad(BuildContext& ctx) {
  const Node& node = ctx.node();
  std::vector<int64_t> pads;
  double value = 0;
  if (ctx.opset() < 11) {
    pads = node.HasAttr("pads") ? node.GetInts("pads") : node.GetInts("paddings");
    value = node.GetFloat("value", 0.0f);
  } else {
    auto p = ConstantInts(ctx, 1, "pads");
    if (!p.ok()) return p.status();
    pads = *p;
    if (ctx.has_input(2)) {
      const Tensor* v = ctx.constant(2);
      if (v == nullptr) return ctx.Unsupported("constant_value must be a constant");
      if (v->num_elements() > 0) value = v->GetAsDouble(0);
    }
  }
  PlanValue& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  if (static_cast<int64_t>(pads.size()) != 2 * rank) {
    return ctx.Invalid(absl::StrCat("pads has ", pads.size(), " entries for rank ", rank));
  }
  const std::string mode = node.GetString("mode", "constant");
  const std::vector<int64_t> strides = IndexedCopy::Strides(in.shape);
  Shape out_shape(rank);
  std::vector<std::vector<int64_t>> offsets(rank);
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t d = in.shape[k], before = pads[k];
    out_shape[k] = d + before + pads[k + rank];
    if (out_shape[k] < 0) return ctx.Invalid("negative pads remove more than the whole axis");
    const bool grows = before > 0 || pads[k + rank] > 0;
    if (mode != "constant" && grows && d == 0) {
      return ctx.Invalid(absl::StrCat(mode, " padding of an empty axis"));
    }
    for (int64_t j = 0; j < out_shape[k]; ++j) {
      int64_t i = j - before;
      if (i < 0 || i >= d) {
        if (mode == "constant") {
          offsets[k].push_back(IndexedCopy::kFill);
          continue;
        }
        if (mode == "edge" || d == 1) {
          i = std::clamp<int64_t>(i, 0, d - 1);
        } else {  // reflect (mirror without repeating the edge), periodic for large pads
          const int64_t period = 2 * (d - 1);
          i = ((i % period) + period) % period;
          if (i >= d) i = period - i;
        }
      }
      offsets[k].push_back(i * strides[k]);
    }
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(
      IndexedCopy(DTypeSize(in.dtype), out_shape, std::move(offsets), FillBits(in.dtype, value)),
      in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

// ---- DepthToSpace, SpaceToDepth ----

absl::Status ValidateDepthToSpace(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"blocksize", "mode"}); !s.ok()) return s;
  const std::string mode = n.GetString("mode", "DCR");
  if (n.op_type == "DepthToSpace" && mode != "DCR" && mode != "CRD") {
    return absl::UnimplementedError(absl::StrCat(n.Label(), ": attribute 'mode' value '", mode,
                                                 "' is not supported (DCR, CRD)"));
  }
  if (n.op_type == "SpaceToDepth" && n.HasAttr("mode")) {
    return absl::InvalidArgumentError(n.Label() + ": SpaceToDepth has no 'mode'");
  }
  if (n.GetInt("blocksize", 0) < 1) {
    return absl::InvalidArgumentError(n.Label() + ": attribute 'blocksize' must be >= 1");
  }
  return NeedInputs(n, 1, 1);
}

// Both ops are a 6-D transpose; the output is written as a 6-D view whose row-major order
// equals the 4-D output's.
KernelOr BuildDepthToSpace(BuildContext& ctx) {
  PlanValue& in = ctx.input(0);
  if (in.shape.size() != 4) return ctx.Invalid("input must be 4-D (NCHW)");
  const int64_t b = ctx.node().GetInt("blocksize", 1);
  const int64_t n = in.shape[0], c = in.shape[1], h = in.shape[2], w = in.shape[3];
  const int64_t sn = c * h * w, sc = h * w, sh = w;
  Shape out_shape, view;
  std::vector<std::vector<int64_t>> off;
  using L = IndexedCopy;
  if (ctx.node().op_type == "DepthToSpace") {
    if (c % (b * b) != 0) return ctx.Invalid("channels are not divisible by blocksize^2");
    const int64_t co = c / (b * b);
    const bool dcr = ctx.node().GetString("mode", "DCR") == "DCR";
    // View [N, C', H, b(i), W, b(j)]; source channel DCR: (i*b + j)*C' + c', CRD: c'*b*b + i*b + j.
    view = {n, co, h, b, w, b};
    off = {L::Linear(n, sn), L::Linear(co, dcr ? sc : b * b * sc),
           L::Linear(h, sh), L::Linear(b, dcr ? b * co * sc : b * sc),
           L::Linear(w, 1),  L::Linear(b, dcr ? co * sc : sc)};
    out_shape = {n, co, h * b, w * b};
  } else {
    if (h % b != 0 || w % b != 0) return ctx.Invalid("H and W are not divisible by blocksize");
    // View [N, b(i), b(j), C, H/b, W/b]; source (n, c, h*b + i, w*b + j).
    view = {n, b, b, c, h / b, w / b};
    off = {L::Linear(n, sn), L::Linear(b, sh),         L::Linear(b, 1),
           L::Linear(c, sc), L::Linear(h / b, b * sh), L::Linear(w / b, b)};
    out_shape = {n, c * b * b, h / b, w / b};
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(in.dtype), view, std::move(off)),
                               in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

}  // namespace

void RegisterResizeOps(OpRegistry& r);

void RegisterTensorOps(OpRegistry& r) {
  AddOp(r, "Gather", BuildGather, ValidateGather);
  AddOp(r, "GatherElements", BuildGatherElements, ValidateGather);
  AddOp(r, "Slice", BuildSlice, ValidateSlice);
  AddOp(r, "Split", BuildSplit, ValidateSplit);
  AddOp(r, "Tile", BuildTile, [](const Node& n, int64_t) -> absl::Status {
    if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
    return NeedInputs(n, 2, 3);
  });
  AddOp(r, "Pad", BuildPad, ValidatePad);
  AddOp(r, "DepthToSpace", BuildDepthToSpace, ValidateDepthToSpace);
  AddOp(r, "SpaceToDepth", BuildDepthToSpace, ValidateDepthToSpace);
  RegisterResizeOps(r);
}

}  // namespace octet
