// Resize (opset 10, 11, 13) and Upsample (7, 9).
//
// Resize is separable: along each axis, output coordinate x maps to an input coordinate x_ori
// (coordinate_transformation_mode) and is a weighted sum of a few input neighbours (1 for
// nearest, 2 for linear, 4 for cubic). The neighbour indices and weights are computed once per
// plan, following the ONNX reference (onnx/backend/test/case/node/resize.py): neighbours are
// taken from the edge-padded axis, an integral x_ori uses ratio 1, and tf_crop_and_resize
// returns extrapolation_value outside the input.
//   nearest: one IndexedCopy over all axes (any dtype).
//   linear/cubic (f32): one 1-D pass per resized axis, through buffers allocated at build.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/ops/indexed_copy.h"
#include "core/ops/op_util.h"

namespace octet {
namespace {

using KernelOr = absl::StatusOr<std::unique_ptr<OpKernel>>;

struct ResizeParams {
  std::string mode = "nearest";      // nearest | linear | cubic
  std::string coord = "half_pixel";  // coordinate_transformation_mode
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

// Neighbours of every output coordinate of one axis: taps input indices (kOutside =
// extrapolate) and weights per output coordinate.
struct AxisTaps {
  static constexpr int64_t kOutside = -1;
  int taps = 1;
  std::vector<int64_t> index;  // out * taps
  std::vector<float> weight;   // out * taps
  bool identity = false;
};

AxisTaps ComputeTaps(const ResizeParams& p, int64_t in, int64_t out, double scale, double roi_lo,
                     double roi_hi) {
  AxisTaps t;
  t.taps = p.mode == "nearest" ? 1 : p.mode == "linear" ? 2 : 4;
  const double out_width = scale * static_cast<double>(in);  // the reference's float width
  t.identity = in == out;
  for (int64_t x = 0; x < out; ++x) {
    double xo;
    const double xd = static_cast<double>(x);
    if (p.coord == "align_corners") {
      xo = out_width == 1 ? 0.0 : xd * (in - 1) / (out_width - 1);
    } else if (p.coord == "asymmetric") {
      xo = xd / scale;
    } else if (p.coord == "tf_crop_and_resize") {
      xo = out_width == 1 ? (roi_hi - roi_lo) * (in - 1) / 2
                          : xd * (roi_hi - roi_lo) * (in - 1) / (out_width - 1);
      xo += roi_lo * (in - 1);
    } else if (p.coord == "pytorch_half_pixel") {
      xo = out_width == 1 ? -0.5 : (xd + 0.5) / scale - 0.5;
    } else if (p.coord == "tf_half_pixel_for_nn") {
      xo = (xd + 0.5) / scale;
    } else {  // half_pixel
      xo = (xd + 0.5) / scale - 0.5;
    }
    if (p.coord == "tf_crop_and_resize" && (xo < 0 || xo > in - 1)) {
      for (int k = 0; k < t.taps; ++k) {
        t.index.push_back(AxisTaps::kOutside);
        t.weight.push_back(k == 0 ? 1.0f : 0.0f);
      }
      t.identity = false;
      continue;
    }
    // Prefer the neighbour on the left: an integral x_ori is "ratio 1 past x_ori - 1".
    double base = std::floor(xo);
    double ratio = xo - base;
    if (ratio == 0) {
      base -= 1;
      ratio = 1;
    }
    const int64_t b = static_cast<int64_t>(base);
    std::vector<double> w;
    std::vector<int64_t> idx;
    if (p.mode == "nearest") {
      bool ceil_side;
      if (ratio == 1) {
        ceil_side = true;
      } else if (p.nearest_mode == "round_prefer_ceil") {
        ceil_side = ratio >= 0.5;
      } else if (p.nearest_mode == "floor") {
        ceil_side = false;
      } else if (p.nearest_mode == "ceil") {
        ceil_side = true;
      } else {  // round_prefer_floor
        ceil_side = ratio > 0.5;
      }
      idx = {ceil_side ? b + 1 : b};
      w = {1.0};
    } else if (p.mode == "linear") {
      idx = {b, b + 1};
      w = {1 - ratio, ratio};
    } else {
      const double a = p.cubic_a, r = ratio, s = 1 - ratio;
      idx = {b - 1, b, b + 1, b + 2};
      w = {((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
           ((a + 2) * r - (a + 3)) * r * r + 1, ((a + 2) * s - (a + 3)) * s * s + 1,
           ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a};
    }
    if (p.exclude_outside) {
      double sum = 0;
      for (size_t k = 0; k < idx.size(); ++k) {
        if (idx[k] < 0 || idx[k] >= in) w[k] = 0;
        sum += w[k];
      }
      if (sum != 0) {
        for (double& v : w) v /= sum;
      }
    }
    for (size_t k = 0; k < idx.size(); ++k) {
      const int64_t i = std::clamp<int64_t>(idx[k], 0, in - 1);
      t.index.push_back(i);
      t.weight.push_back(static_cast<float>(w[k]));
      if (w[k] != 0 && i != x) t.identity = false;
      if (i == x && w[k] != 1 && w[k] != 0) t.identity = false;
    }
  }
  return t;
}

// One 1-D interpolation pass along an axis: dst[o, j, i] = sum_k w[j,k] * src[o, idx[j,k], i].
struct Pass {
  int64_t outer, in_len, out_len, inner;
  AxisTaps taps;
  const float* src;
  float* dst;
};

void RunPass(const Pass& p, float extrapolation, int num_threads) {
  const int64_t rows = p.outer * p.out_len;
  const int k = p.taps.taps;
  const bool parallel = num_threads > 1 && rows * p.inner >= (1 << 15);
#pragma omp parallel for num_threads(num_threads) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r / p.out_len, j = r % p.out_len;
    float* d = p.dst + r * p.inner;
    const int64_t* idx = &p.taps.index[j * k];
    const float* w = &p.taps.weight[j * k];
    if (idx[0] == AxisTaps::kOutside) {
      std::fill(d, d + p.inner, extrapolation);
      continue;
    }
    const float* s = p.src + o * p.in_len * p.inner;
    if (p.inner == 1) {
      float acc = 0;
      for (int t = 0; t < k; ++t) acc += w[t] * s[idx[t]];
      d[0] = acc;
      continue;
    }
    std::fill(d, d + p.inner, 0.0f);
    for (int t = 0; t < k; ++t) {
      if (w[t] == 0) continue;
      const float* row = s + idx[t] * p.inner;
      const float wt = w[t];
      for (int64_t i = 0; i < p.inner; ++i) d[i] += wt * row[i];
    }
  }
}

absl::Status CheckParams(const Node& n, const ResizeParams& p) {
  auto bad = [&](const char* attr, const std::string& v, const char* ok) {
    return absl::UnimplementedError(absl::StrCat(n.Label(), ": attribute '", attr, "' value '", v,
                                                 "' is not supported (", ok, ")"));
  };
  if (p.mode != "nearest" && p.mode != "linear" && p.mode != "cubic") {
    return bad("mode", p.mode, "nearest, linear, cubic");
  }
  static const char* kCoords[] = {"half_pixel",           "asymmetric",
                                  "align_corners",        "pytorch_half_pixel",
                                  "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (std::find(std::begin(kCoords), std::end(kCoords), p.coord) == std::end(kCoords)) {
    return bad("coordinate_transformation_mode", p.coord,
               "half_pixel, asymmetric, align_corners, pytorch_half_pixel, tf_half_pixel_for_nn, "
               "tf_crop_and_resize");
  }
  if (p.nearest_mode != "round_prefer_floor" && p.nearest_mode != "round_prefer_ceil" &&
      p.nearest_mode != "floor" && p.nearest_mode != "ceil") {
    return bad("nearest_mode", p.nearest_mode,
               "round_prefer_floor, round_prefer_ceil, floor, ceil");
  }
  return absl::OkStatus();
}

// Resize-10 and Upsample are asymmetric with floor for nearest (PyTorch's and the Upsample
// reference's behaviour); opset 11+ reads the attributes.
ResizeParams ParamsOf(const Node& n, int64_t opset) {
  ResizeParams p;
  p.mode = n.GetString("mode", "nearest");
  if (p.mode == "bilinear") p.mode = "linear";  // Upsample-7 spelling
  if (n.op_type == "Upsample" || opset < 11) {
    p.coord = "asymmetric";
    p.nearest_mode = "floor";
    return p;
  }
  p.coord = n.GetString("coordinate_transformation_mode", "half_pixel");
  p.nearest_mode = n.GetString("nearest_mode", "round_prefer_floor");
  p.cubic_a = n.GetFloat("cubic_coeff_a", -0.75f);
  p.exclude_outside = n.GetInt("exclude_outside", 0) != 0;
  p.extrapolation = n.GetFloat("extrapolation_value", 0.0f);
  return p;
}

absl::Status ValidateResize(const Node& n, int64_t opset) {
  absl::Status s;
  if (n.op_type == "Upsample") {
    s = CheckAttributes(n, {"mode", "scales"});
    if (s.ok() && n.inputs.size() != (opset < 9 ? 1u : 2u)) {
      s = absl::InvalidArgumentError(n.Label() + ": wrong number of inputs");
    }
    if (s.ok() && ParamsOf(n, opset).mode == "cubic")
      s = absl::UnimplementedError(n.Label() + ": cubic Upsample");
  } else if (opset < 11) {
    s = CheckAttributes(n, {"mode"});
    if (s.ok() && n.inputs.size() != 2)
      s = absl::InvalidArgumentError(n.Label() + ": needs 2 inputs");
  } else {
    s = CheckAttributes(n, {"mode", "coordinate_transformation_mode", "cubic_coeff_a",
                            "exclude_outside", "extrapolation_value", "nearest_mode"});
    if (s.ok() && (n.inputs.empty() || n.inputs.size() > 4)) {
      s = absl::InvalidArgumentError(n.Label() + ": needs 1-4 inputs");
    }
  }
  if (!s.ok()) return s;
  return CheckParams(n, ParamsOf(n, opset));
}

// Non-empty constant input i, or an empty vector when it is omitted or has no elements.
absl::StatusOr<std::vector<float>> OptionalFloats(BuildContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return std::vector<float>();
  return ConstantFloats(ctx, i, what);
}

KernelOr BuildResize(BuildContext& ctx) {
  const Node& node = ctx.node();
  const ResizeParams p = ParamsOf(node, ctx.opset());
  PlanValue& x = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<float> scales, roi;
  std::vector<int64_t> sizes;
  const bool v11 = node.op_type == "Resize" && ctx.opset() >= 11;
  if (node.op_type == "Upsample" && ctx.opset() < 9) {
    scales = node.GetFloats("scales");
  } else {
    auto s = OptionalFloats(ctx, v11 ? 2 : 1, "scales");
    if (!s.ok()) return s.status();
    scales = *s;
  }
  if (v11) {
    if (p.coord == "tf_crop_and_resize") {
      auto r = OptionalFloats(ctx, 1, "roi");
      if (!r.ok()) return r.status();
      roi = *r;
      if (static_cast<int64_t>(roi.size()) != 2 * rank) {
        return ctx.Invalid(absl::StrCat("roi must have ", 2 * rank, " values"));
      }
    }
    if (ctx.has_input(3)) {
      auto s = ConstantInts(ctx, 3, "sizes");
      if (!s.ok()) return s.status();
      sizes = *s;
    }
  }
  if (!sizes.empty() && !scales.empty())
    return ctx.Invalid("only one of scales and sizes may be given");
  Shape out_shape(rank);
  std::vector<double> scale(rank);
  if (!sizes.empty()) {
    if (static_cast<int64_t>(sizes.size()) != rank)
      return ctx.Invalid("sizes must have one value per axis");
    for (int64_t k = 0; k < rank; ++k) {
      if (sizes[k] < 0) return ctx.Invalid("sizes must be >= 0");
      out_shape[k] = sizes[k];
      scale[k] = x.shape[k] == 0 ? 1.0 : static_cast<double>(sizes[k]) / x.shape[k];
    }
  } else {
    if (static_cast<int64_t>(scales.size()) != rank) {
      return ctx.Invalid(absl::StrCat("scales must have ", rank, " values, got ", scales.size()));
    }
    for (int64_t k = 0; k < rank; ++k) {
      if (!(scales[k] > 0)) return ctx.Invalid("scales must be > 0");
      scale[k] = scales[k];
      out_shape[k] = static_cast<int64_t>(std::floor(scale[k] * x.shape[k]));
    }
  }
  for (int64_t k = 0; k < rank; ++k) {
    if (out_shape[k] > 0 && x.shape[k] == 0) return ctx.Invalid("cannot resize an empty axis");
  }
  std::vector<AxisTaps> taps(rank);
  for (int64_t k = 0; k < rank; ++k) {
    taps[k] = ComputeTaps(p, x.shape[k], out_shape[k], scale[k], roi.empty() ? 0 : roi[k],
                          roi.empty() ? 1 : roi[k + rank]);
  }
  PlanValue& out = ctx.DefineOutput(0, x.dtype, out_shape);
  const int nt = ctx.num_threads();
  if (p.mode == "nearest") {
    const std::vector<int64_t> strides = IndexedCopy::Strides(x.shape);
    std::vector<std::vector<int64_t>> offsets(rank);
    for (int64_t k = 0; k < rank; ++k) {
      for (int64_t i : taps[k].index) {
        offsets[k].push_back(i == AxisTaps::kOutside ? IndexedCopy::kFill : i * strides[k]);
      }
    }
    return MakeIndexedCopyKernel(IndexedCopy(DTypeSize(x.dtype), out_shape, std::move(offsets),
                                             FillBits(x.dtype, p.extrapolation)),
                                 x.buffer.data(), out.buffer.data(), nt, "ref:nearest");
  }
  if (x.dtype != DType::kF32) {
    return ctx.Unsupported(absl::StrCat(p.mode, " resize of ", DTypeName(x.dtype),
                                        " (only nearest works on integer tensors)"));
  }
  // Passes along the axes that change, innermost first; intermediates owned by the kernel.
  std::vector<Pass> passes;
  std::vector<Tensor> scratch;
  Shape cur = x.shape;
  const float* src = x.buffer.data_as<float>();
  std::vector<int64_t> todo;
  for (int64_t k = rank - 1; k >= 0; --k) {
    if (!taps[k].identity) todo.push_back(k);
  }
  for (size_t n = 0; n < todo.size(); ++n) {
    const int64_t k = todo[n];
    Pass pass;
    pass.outer = 1;
    pass.inner = 1;
    for (int64_t i = 0; i < k; ++i) pass.outer *= cur[i];
    for (int64_t i = k + 1; i < rank; ++i) pass.inner *= cur[i];
    pass.in_len = cur[k];
    pass.out_len = out_shape[k];
    pass.taps = std::move(taps[k]);
    cur[k] = out_shape[k];
    pass.src = src;
    if (n + 1 == todo.size()) {
      pass.dst = out.buffer.data_as<float>();
    } else {
      scratch.push_back(Tensor::Zeros(DType::kF32, cur));
      pass.dst = scratch.back().data_as<float>();
    }
    src = pass.dst;
    passes.push_back(std::move(pass));
  }
  if (passes.empty()) {
    return MakeCopyKernel(x.buffer.data(), out.buffer.data(), out.buffer.byte_size());
  }
  const float extrapolation = static_cast<float>(p.extrapolation);
  return std::unique_ptr<OpKernel>(std::make_unique<LambdaKernel>(
      [passes = std::move(passes), scratch = std::move(scratch), extrapolation, nt]() {
        for (const Pass& pass : passes) RunPass(pass, extrapolation, nt);
        return absl::OkStatus();
      },
      absl::StrCat("ref:", p.mode)));
}

}  // namespace

void RegisterResizeOps(OpRegistry& r) {
  AddOp(r, "Resize", BuildResize, ValidateResize);
  AddOp(r, "Upsample", BuildResize, ValidateResize);
}

}  // namespace octet
