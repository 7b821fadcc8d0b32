// Shape operators: ops that compute shapes or only rearrange/relabel data (Shape, Size,
// Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Expand, Identity, Dropout,
// ConstantOfShape, Range, EyeLike). Cast/CastLike live in cast_ops.cc.
//
// Shape-only results (Shape, Size, EyeLike, ConstantOfShape, Range) are set as constants at plan
// build, so the Shape->Gather->Unsqueeze->Concat->Reshape chains exporters emit fold away.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/dnnl_util.h"
#include "core/ops/indexed_copy.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using KernelOr = absl::StatusOr<std::unique_ptr<OpKernel>>;

absl::Status NeedInputs(const Node& n, size_t min, size_t max) {
  size_t count = n.inputs.size();
  while (count > 0 && n.inputs[count - 1].empty()) --count;
  if (count < min || count > max) {
    return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": expects ", min,
                                                   min == max ? "" : absl::StrCat("-", max),
                                                   " inputs, got ", count));
  }
  for (size_t i = 0; i < min; ++i) {
    if (n.inputs[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": input ", i, " is required"));
    }
  }
  return absl::OkStatus();
}

// Attribute check + input count, the common validation shape.
std::function<absl::Status(const Node&, int64_t)> Validator(std::vector<std::string> attrs,
                                                            size_t min_in, size_t max_in) {
  return [attrs = std::move(attrs), min_in, max_in](const Node& n, int64_t) -> absl::Status {
    if (auto s = CheckAttributes(n, attrs); !s.ok()) return s;
    return NeedInputs(n, min_in, max_in);
  };
}

// Output 0 = input 0 relabelled with `shape` (same bytes, row-major).
KernelOr BuildRelabel(BuildContext& ctx, const Shape& shape) {
  PlanValue& in = ctx.input(0);
  if (NumElements(shape) != NumElements(in.shape)) {
    return ctx.Invalid(
        absl::StrCat("cannot reshape ", ShapeToString(in.shape), " to ", ShapeToString(shape)));
  }
  // When this node is the input's last reader, the output takes over the input's buffer: the
  // bytes are already in place. Otherwise the input lives on and the output is a copy.
  if (PlanValue* alias = ctx.DefineOutputInPlace(0, &in); alias != nullptr) {
    alias->shape = shape;
    alias->buffer = Tensor::Borrow(in.dtype, shape, alias->buffer.data());
    if (IsDnnlType(in.dtype)) alias->md = PlainDesc(in.dtype, shape);
    // A step still marks the node in the plan (and keeps any reorder feeding it).
    return std::unique_ptr<OpKernel>(
        new LambdaKernel([] { return absl::OkStatus(); }, "in place (no copy)"));
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, shape);
  return MakeCopyKernel(in.buffer.data(), out.buffer.data(), out.buffer.byte_size());
}

// ---- Shape, Size ----

KernelOr BuildShape(BuildContext& ctx) {
  const Shape& s = ctx.input_any_layout(0).shape;
  const int64_t rank = static_cast<int64_t>(s.size());
  auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = clamp(ctx.node().GetInt("start", 0));
  const int64_t end = clamp(ctx.node().GetInt("end", rank));
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(s[i]);
  ctx.SetConstantOutput(0, Tensor::FromInt64s({static_cast<int64_t>(dims.size())}, dims));
  return std::unique_ptr<OpKernel>();
}

KernelOr BuildSize(BuildContext& ctx) {
  ctx.SetConstantOutput(0, Tensor::FromInt64s({}, {NumElements(ctx.input_any_layout(0).shape)}));
  return std::unique_ptr<OpKernel>();
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze ----

absl::Status ValidateReshape(const Node& n, int64_t opset) {
  if (opset < 5) {
    if (auto s = CheckAttributes(n, {"shape"}); !s.ok()) return s;
    return NeedInputs(n, 1, 1);
  }
  if (auto s = CheckAttributes(n, {"allowzero"}); !s.ok()) return s;
  return NeedInputs(n, 2, 2);
}

KernelOr BuildReshape(BuildContext& ctx) {
  const Node& node = ctx.node();
  std::vector<int64_t> spec;
  if (ctx.opset() < 5) {
    spec = node.GetInts("shape");
  } else {
    auto c = ConstantInts(ctx, 1, "shape");
    if (!c.ok()) return c.status();
    spec = *c;
  }
  const Shape& in = ctx.input_any_layout(0).shape;
  const bool allow_zero = node.GetInt("allowzero", 0) != 0;
  Shape out(spec.size());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == 0 && !allow_zero) {
      if (i >= in.size())
        return ctx.Invalid(absl::StrCat("shape[", i, "] = 0 but input rank is ", in.size()));
      d = in[i];
    } else if (d == -1) {
      if (infer >= 0) return ctx.Invalid("shape has more than one -1");
      infer = static_cast<int>(i);
      continue;
    } else if (d < -1) {
      return ctx.Invalid(absl::StrCat("shape[", i, "] = ", d, " is negative"));
    }
    out[i] = d;
    known *= d;
  }
  const int64_t total = NumElements(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      return ctx.Invalid(absl::StrCat("cannot infer the -1 dimension reshaping ", ShapeToString(in),
                                      " with shape spec of ", spec.size(), " dims"));
    }
    out[infer] = total / known;
  }
  return BuildRelabel(ctx, out);
}

KernelOr BuildFlatten(BuildContext& ctx) {
  const Shape& in = ctx.input_any_layout(0).shape;
  const int64_t rank = static_cast<int64_t>(in.size());
  int64_t axis = ctx.node().GetInt("axis", 1);
  if (axis < -rank || axis > rank) {
    return ctx.Invalid(absl::StrCat("axis ", axis, " is out of range for rank ", rank));
  }
  if (axis < 0) axis += rank;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= in[i];
  return BuildRelabel(ctx, {outer, inner});
}

absl::Status ValidateSqueeze(const Node& n, int64_t opset) {
  if (opset < 13) {
    if (auto s = CheckAttributes(n, {"axes"}); !s.ok()) return s;
    if (n.op_type == "Unsqueeze" && !n.HasAttr("axes")) {
      return absl::InvalidArgumentError(n.Label() + ": attribute 'axes' is required");
    }
    return NeedInputs(n, 1, 1);
  }
  if (auto s = CheckAttributes(n, {}); !s.ok()) return s;
  return n.op_type == "Unsqueeze" ? NeedInputs(n, 2, 2) : NeedInputs(n, 1, 2);
}

// Axes for Squeeze/Unsqueeze: attribute before opset 13, input 1 from 13. `present` is false
// when Squeeze got no axes.
absl::StatusOr<std::vector<int64_t>> SqueezeAxes(BuildContext& ctx, bool* present) {
  *present = true;
  if (ctx.opset() < 13) {
    *present = ctx.node().HasAttr("axes");
    return ctx.node().GetInts("axes");
  }
  if (!ctx.has_input(1)) {
    *present = false;
    return std::vector<int64_t>();
  }
  return ConstantInts(ctx, 1, "axes");
}

KernelOr BuildSqueeze(BuildContext& ctx) {
  const Shape& in = ctx.input_any_layout(0).shape;
  const int64_t rank = static_cast<int64_t>(in.size());
  bool present = false;
  auto axes = SqueezeAxes(ctx, &present);
  if (!axes.ok()) return axes.status();
  std::vector<bool> drop(rank, false);
  for (int64_t a : *axes) {
    auto ax = NormalizeAxis(ctx, a, rank);
    if (!ax.ok()) return ax.status();
    if (in[*ax] != 1) {
      return ctx.Invalid(absl::StrCat("cannot squeeze axis ", a, " of size ", in[*ax]));
    }
    drop[*ax] = true;
  }
  Shape out;
  for (int64_t i = 0; i < rank; ++i) {
    if (present ? !drop[i] : in[i] != 1) out.push_back(in[i]);
  }
  return BuildRelabel(ctx, out);
}

KernelOr BuildUnsqueeze(BuildContext& ctx) {
  const Shape& in = ctx.input_any_layout(0).shape;
  bool present = false;
  auto axes = SqueezeAxes(ctx, &present);
  if (!axes.ok()) return axes.status();
  const int64_t out_rank = static_cast<int64_t>(in.size() + axes->size());
  std::vector<bool> inserted(out_rank, false);
  for (int64_t a : *axes) {
    auto ax = NormalizeAxis(ctx, a, out_rank);
    if (!ax.ok()) return ax.status();
    if (inserted[*ax]) return ctx.Invalid(absl::StrCat("axis ", a, " is repeated"));
    inserted[*ax] = true;
  }
  Shape out;
  size_t next = 0;
  for (int64_t i = 0; i < out_rank; ++i) out.push_back(inserted[i] ? 1 : in[next++]);
  return BuildRelabel(ctx, out);
}

// ---- Identity, Dropout ----

KernelOr BuildIdentity(BuildContext& ctx) {
  return BuildRelabel(ctx, ctx.input_any_layout(0).shape);
}

absl::Status ValidateDropout(const Node& n, int64_t) {
  if (auto s = CheckAttributes(n, {"ratio", "seed", "is_test"}); !s.ok()) return s;
  return NeedInputs(n, 1, 3);
}

// Inference-mode Dropout: output = input and, if asked for, a mask of all ones.
KernelOr BuildDropout(BuildContext& ctx) {
  if (ctx.has_input(2)) {
    const Tensor* training = ctx.constant(2);
    if (training == nullptr) {
      return ctx.Unsupported("training_mode must be a constant (Octet only runs inference)");
    }
    double ratio = 0.5;
    if (ctx.has_input(1)) {
      const Tensor* r = ctx.constant(1);
      if (r == nullptr) return ctx.Unsupported("ratio must be a constant");
      ratio = r->GetAsDouble(0);
    }
    if (training->GetAsInt64(0) != 0 && ratio != 0) {
      return ctx.Unsupported("training-mode dropout (random masks) is not supported");
    }
  }
  auto copy = BuildRelabel(ctx, ctx.input_any_layout(0).shape);
  if (!copy.ok() || ctx.node().outputs.size() < 2 || ctx.node().outputs[1].empty()) return copy;
  // Mask: bool from opset 10, the input's type before.
  const PlanValue& in = ctx.input_any_layout(0);
  DType mask_type = ctx.opset() >= 10 ? DType::kBool : in.dtype;
  Tensor mask = Tensor::Zeros(mask_type, in.shape);
  const uint64_t one = FillBits(mask_type, 1.0);
  for (int64_t i = 0; i < mask.num_elements(); ++i) {
    std::memcpy(static_cast<char*>(mask.data()) + i * DTypeSize(mask_type), &one,
                DTypeSize(mask_type));
  }
  ctx.SetConstantOutput(1, std::move(mask));
  return copy;
}

// ---- Transpose ----

KernelOr BuildTranspose(BuildContext& ctx) {
  PlanValue& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  std::vector<int64_t> perm = ctx.node().GetInts("perm");
  if (perm.empty()) {
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int64_t>(perm.size()) != rank) {
    return ctx.Invalid(absl::StrCat("perm has ", perm.size(), " entries for rank ", rank));
  }
  std::vector<bool> seen(rank, false);
  for (int64_t& p : perm) {
    if (p < 0) p += rank;
    if (p < 0 || p >= rank || seen[p]) return ctx.Invalid("perm is not a permutation");
    seen[p] = true;
  }
  const std::vector<int64_t> strides = IndexedCopy::Strides(in.shape);
  Shape out_shape;
  std::vector<std::vector<int64_t>> offsets;
  for (int64_t k = 0; k < rank; ++k) {
    out_shape.push_back(in.shape[perm[k]]);
    offsets.push_back(IndexedCopy::Linear(in.shape[perm[k]], strides[perm[k]]));
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(in.dtype), out_shape, std::move(offsets)),
                               in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

// ---- Expand ----

KernelOr BuildExpand(BuildContext& ctx) {
  auto target = ConstantInts(ctx, 1, "shape");
  if (!target.ok()) return target.status();
  PlanValue& in = ctx.input(0);
  const size_t rank = std::max(in.shape.size(), target->size());
  Shape out_shape(rank);
  std::vector<std::vector<int64_t>> offsets(rank);
  const std::vector<int64_t> strides = IndexedCopy::Strides(in.shape);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t ik = static_cast<int64_t>(k + in.shape.size()) - static_cast<int64_t>(rank);
    const int64_t tk = static_cast<int64_t>(k + target->size()) - static_cast<int64_t>(rank);
    const int64_t a = ik >= 0 ? in.shape[ik] : 1;
    const int64_t b = tk >= 0 ? (*target)[tk] : 1;
    if (a != b && a != 1 && b != 1) {
      return ctx.Invalid(
          absl::StrCat("cannot expand ", ShapeToString(in.shape), " to ", ShapeToString(*target)));
    }
    out_shape[k] = a == 1 ? b : a;
    offsets[k] = IndexedCopy::Linear(out_shape[k], a == 1 ? 0 : strides[ik]);
  }
  PlanValue& out = ctx.DefineOutput(0, in.dtype, out_shape);
  return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(in.dtype), out_shape, std::move(offsets)),
                               in.buffer.data(), out.buffer.data(), ctx.num_threads(), "ref");
}

// ---- Concat ----

// Channel concatenation of oneDNN types on oneDNN's concat, keeping the producers' layouts.
KernelOr BuildDnnlConcat(BuildContext& ctx, int axis, const Shape& out_shape, DType dtype) {
  std::vector<dnnl::memory::desc> mds;
  std::unordered_map<int, dnnl::memory> args;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) mds.push_back(ctx.input_any_layout(i).md);
  dnnl::concat::primitive_desc pd(axis, mds, ctx.engine());
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] =
        ctx.input_any_layout(i).Memory(ctx.engine());
  }
  dnnl::memory::desc dst_md = pd.dst_desc();
  PlanValue& out = ctx.DefineOutput(0, dtype, out_shape, &dst_md);
  args[DNNL_ARG_DST] = out.Memory(ctx.engine());
  return std::unique_ptr<OpKernel>(
      std::make_unique<PrimitiveKernel>(dnnl::concat(pd), std::move(args), ImplName(pd)));
}

KernelOr BuildConcat(BuildContext& ctx) {
  const size_t n = ctx.num_inputs();
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.has_input(i)) return ctx.Invalid("inputs may not be omitted");
  }
  const PlanValue& first = ctx.input_any_layout(0);
  const int64_t rank = static_cast<int64_t>(first.shape.size());
  auto axis_or = NormalizeAxis(ctx, ctx.node().GetInt("axis", 1), rank);
  if (!axis_or.ok()) return axis_or.status();
  const int64_t axis = *axis_or;
  Shape out_shape = first.shape;
  out_shape[axis] = 0;
  bool any_empty = false;
  for (size_t i = 0; i < n; ++i) {
    const PlanValue& v = ctx.input_any_layout(i);
    bool match = v.dtype == first.dtype && static_cast<int64_t>(v.shape.size()) == rank;
    for (int64_t k = 0; match && k < rank; ++k) match = k == axis || v.shape[k] == first.shape[k];
    if (!match) {
      return ctx.Invalid(absl::StrCat("input ", i, " (", DTypeName(v.dtype), ShapeToString(v.shape),
                                      ") does not match input 0 (", DTypeName(first.dtype),
                                      ShapeToString(first.shape), ") off axis ", axis));
    }
    out_shape[axis] += v.shape[axis];
    any_empty = any_empty || NumElements(v.shape) == 0;
  }
  if (IsDnnlType(first.dtype) && axis == 1 && rank >= 3 && n >= 2 && !any_empty) {
    return BuildDnnlConcat(ctx, static_cast<int>(axis), out_shape, first.dtype);
  }
  // Plain path: each outer row of the output is the inputs' rows back to back.
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= out_shape[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= out_shape[k];
  const size_t es = DTypeSize(first.dtype);
  struct Part {
    const char* src;
    size_t bytes;
  };
  std::vector<Part> parts;
  for (size_t i = 0; i < n; ++i) {
    PlanValue& v = ctx.input(i);
    parts.push_back({static_cast<const char*>(v.buffer.data()),
                     static_cast<size_t>(v.shape[axis] * inner) * es});
  }
  PlanValue& out = ctx.DefineOutput(0, first.dtype, out_shape);
  char* dst = static_cast<char*>(out.buffer.data());
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [parts = std::move(parts), dst, outer]() {
        char* d = dst;
        for (int64_t o = 0; o < outer; ++o) {
          for (const Part& p : parts) {
            if (p.bytes > 0) std::memcpy(d, p.src + o * p.bytes, p.bytes);
            d += p.bytes;
          }
        }
        return absl::OkStatus();
      },
      "memcpy"));
}

// ---- ConstantOfShape, Range, EyeLike (constant at build) ----

KernelOr BuildConstantOfShape(BuildContext& ctx) {
  auto dims = ConstantInts(ctx, 0, "input");
  if (!dims.ok()) return dims.status();
  for (int64_t d : *dims) {
    if (d < 0) return ctx.Invalid(absl::StrCat("negative dimension ", d));
  }
  const Tensor* value = ctx.node().GetTensor("value");
  if (value != nullptr && value->num_elements() != 1) {
    return ctx.Invalid("attribute 'value' must have exactly one element");
  }
  const DType dtype = value != nullptr ? value->dtype() : DType::kF32;
  Tensor out = Tensor::Zeros(dtype, *dims);
  if (value != nullptr) {
    const size_t es = DTypeSize(dtype);
    char* p = static_cast<char*>(out.data());
    for (int64_t i = 0; i < out.num_elements(); ++i) std::memcpy(p + i * es, value->data(), es);
  }
  ctx.SetConstantOutput(0, std::move(out));
  return std::unique_ptr<OpKernel>();
}

template <typename T>
Tensor RangeOf(DType dtype, T start, T limit, T delta, int64_t n) {
  Tensor out = Tensor::Zeros(dtype, {n});
  T* p = out.data_as<T>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  (void)limit;
  return out;
}

KernelOr BuildRange(BuildContext& ctx) {
  const Tensor* t[3];
  for (size_t i = 0; i < 3; ++i) {
    t[i] = ctx.constant(i);
    if (t[i] == nullptr) {
      return ctx.Unsupported(
          "start, limit and delta must be constants or computable from shapes "
          "(the output size depends on them)");
    }
    if (t[i]->num_elements() != 1 || t[i]->dtype() != t[0]->dtype()) {
      return ctx.Invalid("start, limit and delta must be scalars of one type");
    }
  }
  const DType dtype = t[0]->dtype();
  Tensor out;
  if (dtype == DType::kF32) {
    const float s = t[0]->data_as<float>()[0], l = t[1]->data_as<float>()[0],
                d = t[2]->data_as<float>()[0];
    if (d == 0) return ctx.Invalid("delta is zero");
    const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l - s) / d)));
    out = RangeOf<float>(dtype, s, l, d, n);
  } else if (dtype == DType::kS32 || dtype == DType::kS64) {
    const int64_t s = t[0]->GetAsInt64(0), l = t[1]->GetAsInt64(0), d = t[2]->GetAsInt64(0);
    if (d == 0) return ctx.Invalid("delta is zero");
    // ceil((l - s) / d) in integers.
    const int64_t span = l - s;
    int64_t n = span / d + ((span % d != 0) && ((span < 0) == (d < 0)) ? 1 : 0);
    n = std::max<int64_t>(n, 0);
    out = dtype == DType::kS32
              ? RangeOf<int32_t>(dtype, static_cast<int32_t>(s), static_cast<int32_t>(l),
                                 static_cast<int32_t>(d), n)
              : RangeOf<int64_t>(dtype, s, l, d, n);
  } else {
    return ctx.Unsupported(absl::StrCat("Range of ", DTypeName(dtype)));
  }
  ctx.SetConstantOutput(0, std::move(out));
  return std::unique_ptr<OpKernel>();
}

KernelOr BuildEyeLike(BuildContext& ctx) {
  const PlanValue& in = ctx.input_any_layout(0);
  if (in.shape.size() != 2) return ctx.Invalid("input must be 2-D");
  DType dtype = in.dtype;
  if (ctx.node().HasAttr("dtype")) {
    // Same numbering as TensorProto.DataType.
    static const std::pair<int64_t, DType> kTypes[] = {{1, DType::kF32}, {2, DType::kU8},
                                                       {3, DType::kS8},  {6, DType::kS32},
                                                       {7, DType::kS64}, {9, DType::kBool}};
    const int64_t want = ctx.node().GetInt("dtype", 1);
    auto it = std::find_if(std::begin(kTypes), std::end(kTypes),
                           [want](const auto& p) { return p.first == want; });
    if (it == std::end(kTypes)) {
      return ctx.Unsupported(
          absl::StrCat("dtype ", want, " (supported: f32, u8, s8, s32, s64, bool)"));
    }
    dtype = it->second;
  }
  const int64_t k = ctx.node().GetInt("k", 0);
  Tensor out = Tensor::Zeros(dtype, in.shape);
  const uint64_t one = FillBits(dtype, 1.0);
  const size_t es = DTypeSize(dtype);
  for (int64_t r = 0; r < in.shape[0]; ++r) {
    const int64_t c = r + k;
    if (c < 0 || c >= in.shape[1]) continue;
    std::memcpy(static_cast<char*>(out.data()) + (r * in.shape[1] + c) * es, &one, es);
  }
  ctx.SetConstantOutput(0, std::move(out));
  return std::unique_ptr<OpKernel>();
}

}  // namespace

void RegisterCastOps(OpRegistry& r);

void RegisterShapeOps(OpRegistry& r) {
  AddOp(r, "Shape", BuildShape, Validator({"start", "end"}, 1, 1));
  AddOp(r, "Size", BuildSize, Validator({}, 1, 1));
  AddOp(r, "Reshape", BuildReshape, ValidateReshape);
  AddOp(r, "Flatten", BuildFlatten, Validator({"axis"}, 1, 1));
  AddOp(r, "Squeeze", BuildSqueeze, ValidateSqueeze);
  AddOp(r, "Unsqueeze", BuildUnsqueeze, ValidateSqueeze);
  AddOp(r, "Identity", BuildIdentity, Validator({}, 1, 1));
  AddOp(r, "Dropout", BuildDropout, ValidateDropout);
  AddOp(r, "Transpose", BuildTranspose, Validator({"perm"}, 1, 1));
  AddOp(r, "Expand", BuildExpand, Validator({}, 2, 2));
  AddOp(r, "Concat", BuildConcat, Validator({"axis"}, 1, 1 << 20));
  AddOp(r, "ConstantOfShape", BuildConstantOfShape, Validator({"value"}, 1, 1));
  AddOp(r, "Range", BuildRange, Validator({}, 3, 3));
  AddOp(r, "EyeLike", BuildEyeLike, Validator({"dtype", "k"}, 1, 1));
  RegisterCastOps(r);
}

}  // namespace octet
