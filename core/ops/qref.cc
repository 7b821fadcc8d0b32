#include "core/ops/qref.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace octet {

void RefIntConv(const IntConvGeometry& g, const int32_t* xi, const int32_t* wi, int32_t* acc,
                int num_threads) {
  const int64_t cg = g.c / g.groups, ocg = g.oc / g.groups;
  const int64_t in_sz = g.in[0] * g.in[1] * g.in[2];
  const int64_t out_sz = g.out[0] * g.out[1] * g.out[2];
  const int64_t k_sz = g.k[0] * g.k[1] * g.k[2];
#pragma omp parallel for collapse(2) num_threads(num_threads) if (g.n * g.oc * out_sz > 4096)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oc = 0; oc < g.oc; ++oc) {
      const int64_t grp = oc / ocg;
      int32_t* dst = acc + (n * g.oc + oc) * out_sz;
      for (int64_t o0 = 0; o0 < g.out[0]; ++o0) {
        for (int64_t o1 = 0; o1 < g.out[1]; ++o1) {
          for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
            int32_t sum = 0;
            for (int64_t c = 0; c < cg; ++c) {
              const int32_t* x = xi + (n * g.c + grp * cg + c) * in_sz;
              const int32_t* w = wi + (oc * cg + c) * k_sz;
              for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
                const int64_t i0 = o0 * g.stride[0] + k0 * g.dil[0] - g.pad[0];
                if (i0 < 0 || i0 >= g.in[0]) continue;
                for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
                  const int64_t i1 = o1 * g.stride[1] + k1 * g.dil[1] - g.pad[1];
                  if (i1 < 0 || i1 >= g.in[1]) continue;
                  for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
                    const int64_t i2 = o2 * g.stride[2] + k2 * g.dil[2] - g.pad[2];
                    if (i2 < 0 || i2 >= g.in[2]) continue;
                    sum += x[(i0 * g.in[1] + i1) * g.in[2] + i2] *
                           w[(k0 * g.k[1] + k1) * g.k[2] + k2];
                  }
                }
              }
            }
            dst[(o0 * g.out[1] + o1) * g.out[2] + o2] = sum;
          }
        }
      }
    }
  }
}

void RefIntMatMul(const IntMatMulGeometry& g, const int32_t* ai, const int32_t* bi, int32_t* acc,
                  int num_threads) {
  const int64_t batches = static_cast<int64_t>(g.a_offsets.size());
#pragma omp parallel for collapse(2) num_threads(num_threads) if (batches * g.m * g.n > 4096)
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t i = 0; i < g.m; ++i) {
      const int32_t* a = ai + g.a_offsets[b] + i * g.k;
      const int32_t* bm = bi + g.b_offsets[b];
      int32_t* dst = acc + (b * g.m + i) * g.n;
      for (int64_t j = 0; j < g.n; ++j) dst[j] = 0;
      for (int64_t kk = 0; kk < g.k; ++kk) {
        const int32_t av = a[kk];
        const int32_t* brow = bm + kk * g.n;
        for (int64_t j = 0; j < g.n; ++j) dst[j] += av * brow[j];
      }
    }
  }
}

void SubtractZeroPoint(const void* q, DType dtype, int64_t count,
                       const std::vector<int32_t>& zero_points, ChannelMap map, int32_t* out) {
  auto zp = [&](int64_t i) { return zero_points.size() == 1 ? zero_points[0] : zero_points[map(i)]; };
  switch (dtype) {
    case DType::kU8:
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<const uint8_t*>(q)[i] - zp(i);
      break;
    case DType::kS8:
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<const int8_t*>(q)[i] - zp(i);
      break;
    default:
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<const int32_t*>(q)[i] - zp(i);
      break;
  }
}

RefQLayerKernel::RefQLayerKernel(Spec spec) : spec_(std::move(spec)) {
  xi_.resize(NumElements(spec_.x.value->shape));
  wi_.resize(NumElements(spec_.w.value->shape));
  acc_.resize(NumElements(spec_.y->shape));
}

absl::StatusOr<QuantParams> RefQLayerKernel::Read(const QOperand& op, const char* what) const {
  auto p = ReadUnchecked(op, what);
  if (!p.ok()) return p.status();
  const int64_t n = static_cast<int64_t>(p->zero_points.size());
  if (n > 1 && (n != op.zp_map.count || (op.scale != nullptr && n != op.out_map.count))) {
    return absl::InvalidArgumentError(absl::StrCat(spec_.label, ": ", what, " has ", n,
                                                   " scales/zero points where ",
                                                   std::max(op.zp_map.count, op.out_map.count) == 1
                                                       ? std::string("1 (per tensor)")
                                                       : std::to_string(op.zp_map.count),
                                                   " are allowed"));
  }
  return p;
}

absl::StatusOr<QuantParams> RefQLayerKernel::ReadUnchecked(const QOperand& op,
                                                           const char* what) const {
  const std::string label = absl::StrCat(spec_.label, ": ", what);
  if (op.scale == nullptr) {
    // Integer-only layer: only a zero point (default 0 of the operand's type).
    QuantParams p;
    p.dtype = op.value->dtype;
    p.scales = {1.0f};
    p.zero_points = {0};
    if (op.zero_point != nullptr) {
      const Tensor z = View(*op.zero_point);
      if (z.rank() > 1 || z.num_elements() < 1) {
        return absl::InvalidArgumentError(absl::StrCat(label, " zero point must be a scalar or 1-D"));
      }
      if (z.dtype() != op.value->dtype) {
        return absl::InvalidArgumentError(absl::StrCat(label, " zero point type ", DTypeName(z.dtype()),
                                                       " differs from the data type ",
                                                       DTypeName(op.value->dtype)));
      }
      p.zero_points.clear();
      for (int64_t i = 0; i < z.num_elements(); ++i) {
        p.zero_points.push_back(static_cast<int32_t>(z.GetAsInt64(i)));
      }
      p.scales.assign(p.zero_points.size(), 1.0f);
      if (p.zero_points.size() > 1) {
        const int64_t rank = static_cast<int64_t>(op.value->shape.size());
        const int64_t axis = op.axis < 0 ? op.axis + rank : op.axis;
        if (axis < 0 || axis >= rank ||
            op.value->shape[axis] != static_cast<int64_t>(p.zero_points.size())) {
          return absl::InvalidArgumentError(absl::StrCat(
              label, " has ", p.zero_points.size(), " zero points for shape ",
              ShapeToString(op.value->shape)));
        }
      }
    }
    return p;
  }
  const Tensor scale = View(*op.scale);
  const std::optional<Tensor> zp =
      op.zero_point ? std::optional<Tensor>(View(*op.zero_point)) : std::nullopt;
  auto p = ReadQuantParams(label, scale, zp ? &*zp : nullptr, DType::kU8, op.axis,
                           op.value->shape);
  if (!p.ok()) return p.status();
  if (op.zero_point != nullptr && p->dtype != op.value->dtype) {
    return absl::InvalidArgumentError(absl::StrCat(label, " zero point type ", DTypeName(p->dtype),
                                                   " differs from the data type ",
                                                   DTypeName(op.value->dtype)));
  }
  return p;
}

absl::Status RefQLayerKernel::Run(dnnl::stream&) {
  auto xq = Read(spec_.x, "x");
  if (!xq.ok()) return xq.status();
  auto wq = Read(spec_.w, "w");
  if (!wq.ok()) return wq.status();
  SubtractZeroPoint(spec_.x.value->buffer.data(), spec_.x.value->dtype,
                    static_cast<int64_t>(xi_.size()), xq->zero_points, spec_.x.zp_map, xi_.data());
  SubtractZeroPoint(spec_.w.value->buffer.data(), spec_.w.value->dtype,
                    static_cast<int64_t>(wi_.size()), wq->zero_points, spec_.w.zp_map, wi_.data());
  const bool integer_only = spec_.x.scale == nullptr;
  int32_t* acc = integer_only ? spec_.y->buffer.data_as<int32_t>() : acc_.data();
  spec_.compute(xi_.data(), wi_.data(), acc);
  if (integer_only) return absl::OkStatus();

  // y = saturate(round(v) + y_zp) with v = (acc + bias_acc) * x_scale * w_scale / y_scale.
  float y_scale = 1.0f;
  int32_t y_zp = 0;
  const DType y_type = spec_.y->dtype;
  if (spec_.y_scale != nullptr) {
    const Tensor ys = View(*spec_.y_scale);
    const std::optional<Tensor> yz =
        spec_.y_zero_point ? std::optional<Tensor>(View(*spec_.y_zero_point)) : std::nullopt;
    auto yq = ReadQuantParams(absl::StrCat(spec_.label, ": y"), ys, yz ? &*yz : nullptr,
                              DType::kU8, -1, spec_.y->shape);
    if (!yq.ok()) return yq.status();
    if (!yq->per_tensor()) {
      return absl::InvalidArgumentError(absl::StrCat(spec_.label, ": y scale must be per tensor"));
    }
    y_scale = yq->scales[0];
    y_zp = yq->zero_points[0];
  }
  QuantParams rq;
  const int32_t* ri = nullptr;
  std::vector<int32_t> rbuf;
  if (spec_.residual.value != nullptr) {
    if (spec_.residual.scale != nullptr) {
      auto r = Read(spec_.residual, "residual");
      if (!r.ok()) return r.status();
      rq = *r;
      rbuf.resize(acc_.size());
      SubtractZeroPoint(spec_.residual.value->buffer.data(), spec_.residual.value->dtype,
                        static_cast<int64_t>(rbuf.size()), rq.zero_points, ChannelMap{}, rbuf.data());
      ri = rbuf.data();
    }
  }
  const std::optional<Tensor> bias_view =
      spec_.bias ? std::optional<Tensor>(View(*spec_.bias)) : std::nullopt;
  const Tensor* bias = bias_view ? &*bias_view : nullptr;
  const int64_t count = static_cast<int64_t>(acc_.size());
  const float lo = static_cast<float>(QMin(y_type)), hi = static_cast<float>(QMax(y_type));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t cx = spec_.x.out_map(i), cw = spec_.w.out_map(i);
    const float xs = xq->scale(cx), ws = wq->scale(cw);
    const float m = xs * ws / y_scale;
    float b = 0.0f;
    if (bias != nullptr) {
      const int64_t cb = bias->num_elements() == 1 ? 0 : spec_.bias_map(i);
      b = bias->dtype() == DType::kF32 ? bias->data_as<float>()[cb] / (xs * ws)
                                       : static_cast<float>(bias->data_as<int32_t>()[cb]);
    }
    float v = (static_cast<float>(acc[i]) + b) * m;
    for (const PostOp& p : spec_.post_ops) {
      switch (p.kind) {
        case PostOp::Kind::kRelu:
          v = std::max(v, 0.0f);
          break;
        case PostOp::Kind::kLeakyRelu:
          v = v < 0 ? v * p.alpha : v;
          break;
        case PostOp::Kind::kClip:
          v = std::min(std::max(v, p.alpha / y_scale), p.beta / y_scale);
          break;
        case PostOp::Kind::kSum:
          if (ri != nullptr) {
            v += rq.scales[0] / y_scale * static_cast<float>(ri[i]);
          } else {
            v += spec_.residual.value->buffer.data_as<float>()[i] / y_scale;
          }
          break;
        default:
          break;  // refused at build
      }
    }
    if (y_type == DType::kF32) {
      spec_.y->buffer.data_as<float>()[i] = v;
    } else {
      const int32_t r = RoundSaturate(v, static_cast<int32_t>(lo) - y_zp,
                                      static_cast<int32_t>(hi) - y_zp) + y_zp;
      if (y_type == DType::kU8) {
        spec_.y->buffer.data_as<uint8_t>()[i] = static_cast<uint8_t>(r);
      } else {
        spec_.y->buffer.data_as<int8_t>()[i] = static_cast<int8_t>(r);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace octet
