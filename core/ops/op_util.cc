#include "core/ops/op_util.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/weight_cache.h"

namespace octet {

absl::StatusOr<WindowGeometry> ResolveWindow(const Node& node, const std::vector<int64_t>& in,
                                             const std::vector<int64_t>& kernel, bool ceil_mode) {
  const size_t n = in.size();
  WindowGeometry g;
  g.kernel = kernel;
  g.strides = node.GetInts("strides", std::vector<int64_t>(n, 1));
  g.dilations = node.GetInts("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = node.GetInts("pads", std::vector<int64_t>(2 * n, 0));
  if (g.kernel.size() != n || g.strides.size() != n || g.dilations.size() != n ||
      pads.size() != 2 * n) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Label(), ": kernel_shape/strides/dilations/pads do not match ", n,
                     " spatial dimensions"));
  }
  for (size_t i = 0; i < n; ++i) {
    if (g.kernel[i] < 1 || g.strides[i] < 1 || g.dilations[i] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Label(), ": kernel, strides and dilations must be >= 1"));
    }
  }
  g.pad_begin.assign(pads.begin(), pads.begin() + n);
  g.pad_end.assign(pads.begin() + n, pads.end());
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  g.out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t ext = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[i] = (in[i] + g.strides[i] - 1) / g.strides[i];
      int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.strides[i] + ext - in[i]);
      int64_t small = total / 2;
      g.pad_begin[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      g.pad_end[i] = total - g.pad_begin[i];
    } else if (auto_pad == "VALID") {
      g.pad_begin[i] = g.pad_end[i] = 0;
      g.out[i] = (in[i] - ext) / g.strides[i] + 1;
    } else if (auto_pad == "NOTSET") {
      int64_t span = in[i] + g.pad_begin[i] + g.pad_end[i] - ext;
      g.out[i] = (ceil_mode ? (span + g.strides[i] - 1) / g.strides[i] : span / g.strides[i]) + 1;
      if (ceil_mode && (g.out[i] - 1) * g.strides[i] >= in[i] + g.pad_begin[i]) {
        --g.out[i];  // the last window must start inside the input or left padding
      }
    } else {
      return absl::UnimplementedError(
          absl::StrCat(node.Label(), ": auto_pad '", auto_pad, "' is not supported"));
    }
    if (g.out[i] < 1 || in[i] + g.pad_begin[i] + g.pad_end[i] < ext) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Label(), ": window (extent ", ext, ") does not fit input size ", in[i],
                       " with padding ", g.pad_begin[i], "+", g.pad_end[i]));
    }
    // oneDNN wants pad_end such that (in + pb + pe - ext) / s + 1 == out exactly.
    g.pad_end[i] = (g.out[i] - 1) * g.strides[i] + ext - in[i] - g.pad_begin[i];
  }
  return g;
}

void AppendPostOps(const std::vector<PostOp>& post_ops, dnnl::post_ops& ops, float sum_scale) {
  using alg = dnnl::algorithm;
  for (const PostOp& p : post_ops) {
    switch (p.kind) {
      case PostOp::Kind::kRelu:
        ops.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f);
        break;
      case PostOp::Kind::kLeakyRelu:
        ops.append_eltwise(1.0f, alg::eltwise_relu, p.alpha, 0.0f);
        break;
      case PostOp::Kind::kClip:
        ops.append_eltwise(1.0f, alg::eltwise_clip_v2, p.alpha, p.beta);
        break;
      case PostOp::Kind::kSigmoid:
        ops.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f);
        break;
      case PostOp::Kind::kTanh:
        ops.append_eltwise(1.0f, alg::eltwise_tanh, 0.0f, 0.0f);
        break;
      case PostOp::Kind::kHardSigmoid:
        // max(0, min(1, alpha*x + beta)) = clip(linear(x)).
        ops.append_eltwise(1.0f, alg::eltwise_linear, p.alpha, p.beta);
        ops.append_eltwise(1.0f, alg::eltwise_clip_v2, 0.0f, 1.0f);
        break;
      case PostOp::Kind::kHardSwish:
        ops.append_eltwise(1.0f, alg::eltwise_hardswish, 0.0f, 0.0f);
        break;
      case PostOp::Kind::kSum:
        ops.append_sum(sum_scale);
        break;
    }
  }
}

bool HasSumPostOp(const Node& node) {
  return std::any_of(node.post_ops.begin(), node.post_ops.end(),
                     [](const PostOp& p) { return p.kind == PostOp::Kind::kSum; });
}

void AddOp(OpRegistry& r, const std::string& op_type,
           std::function<absl::StatusOr<std::unique_ptr<OpKernel>>(BuildContext&)> build,
           std::function<absl::Status(const Node&, int64_t)> validate, const std::string& domain) {
  OpSchema s;
  s.op_type = op_type;
  s.domain = domain;
  s.build = std::move(build);
  s.validate = std::move(validate);
  r.Register(std::move(s));
}

absl::Status CheckAttributes(const Node& node, const std::vector<std::string>& allowed) {
  for (const auto& [name, attr] : node.attrs) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::UnimplementedError(
          absl::StrCat(node.Label(), ": attribute '", name,
                       "' is not supported (supported: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NormalizeAxis(const BuildContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    return ctx.Invalid(absl::StrCat("axis ", axis, " is out of range for rank ", rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Weights prepared once per model in the primitive's layout (shared by all plans/contexts when the
// weights are initializers; reordered per run when they are a graph input).
absl::StatusOr<dnnl::memory> PrepareWeights(BuildContext& ctx, size_t index,
                                            const dnnl::memory::desc& user_md,
                                            const dnnl::memory::desc& target_md,
                                            std::vector<std::unique_ptr<OpKernel>>* pre_steps) {
  PlanValue& w = ctx.input(index);
  const dnnl::engine& eng = ctx.engine();
  if (w.is_constant) {
    Tensor src = w.buffer;
    auto entry = ctx.weights().GetOrCreate(
        WeightCache::Key(absl::StrCat(w.name, "#", ctx.node().name), target_md),
        [&]() -> absl::StatusOr<WeightCache::Entry> {
          WeightCache::Entry e;
          e.storage = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(target_md.get_size())});
          e.memory = dnnl::memory(target_md, eng, e.storage.data());
          dnnl::memory user(user_md, eng, src.data());
          dnnl::stream s(eng);
          dnnl::reorder(user, e.memory).execute(s, user, e.memory);
          s.wait();
          return e;
        });
    if (!entry.ok()) return entry.status();
    ctx.KeepAlive(entry->storage);
    return entry->memory;
  }
  // Runtime weights: reorder into a kernel-owned buffer before each execution.
  Tensor storage = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(target_md.get_size())});
  dnnl::memory target(target_md, eng, storage.data());
  dnnl::memory user(user_md, eng, w.buffer.data());
  pre_steps->push_back(std::make_unique<OwningReorderKernel>(user, target, std::move(storage)));
  return target;
}

}  // namespace octet
