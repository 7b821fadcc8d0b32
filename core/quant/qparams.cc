#include "core/quant/qparams.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

int64_t QMin(DType dtype) {
  switch (dtype) {
    case DType::kU8:
      return 0;
    case DType::kS8:
      return -128;
    case DType::kS32:
      return INT32_MIN;
    default:
      return 0;
  }
}

int64_t QMax(DType dtype) {
  switch (dtype) {
    case DType::kU8:
      return 255;
    case DType::kS8:
      return 127;
    case DType::kS32:
      return INT32_MAX;
    default:
      return 0;
  }
}

bool QuantParams::symmetric() const {
  return std::all_of(zero_points.begin(), zero_points.end(), [](int32_t z) { return z == 0; });
}

absl::Status ValidateQuantParams(const std::string& what, const QuantParams& p) {
  if (p.dtype != DType::kU8 && p.dtype != DType::kS8 && p.dtype != DType::kS32) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": quantized type must be uint8, int8 or int32, got ",
                     DTypeName(p.dtype)));
  }
  if (p.scales.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no scale"));
  if (p.zero_points.size() != p.scales.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", p.scales.size(), " scales but ",
                                                   p.zero_points.size(), " zero points"));
  }
  for (size_t i = 0; i < p.scales.size(); ++i) {
    const float s = p.scales[i];
    if (!std::isfinite(s) || s <= 0.0f) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": scale", p.scales.size() > 1 ? absl::StrCat("[", i, "]") : "", " is ", s,
          "; scales must be finite and > 0"));
    }
    const int64_t z = p.zero_points[i];
    if (z < QMin(p.dtype) || z > QMax(p.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": zero point ", z,
                                                     " is out of range for ", DTypeName(p.dtype)));
    }
    if (p.dtype == DType::kS32 && z != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": int32 tensors must have zero point 0, got ", z));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantParams> ReadQuantParams(const std::string& what, const Tensor& scale,
                                            const Tensor* zero_point, DType default_dtype,
                                            int64_t axis, const Shape& data_shape) {
  if (scale.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": scale must be float32, got ", DTypeName(scale.dtype())));
  }
  if (scale.rank() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": scale must be a scalar or 1-D, got shape ", ShapeToString(scale.shape())));
  }
  QuantParams p;
  const int64_t n = scale.num_elements();
  p.scales.assign(scale.data_as<float>(), scale.data_as<float>() + n);
  p.dtype = default_dtype;
  if (zero_point != nullptr) {
    p.dtype = zero_point->dtype();
    if (p.dtype != DType::kU8 && p.dtype != DType::kS8 && p.dtype != DType::kS32) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": zero point must be uint8, int8 or int32, got ", DTypeName(p.dtype)));
    }
    if (zero_point->num_elements() != n || zero_point->rank() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": zero point shape ", ShapeToString(zero_point->shape()),
                       " does not match scale shape ", ShapeToString(scale.shape())));
    }
    for (int64_t i = 0; i < n; ++i) {
      p.zero_points.push_back(static_cast<int32_t>(zero_point->GetAsInt64(i)));
    }
  } else {
    p.zero_points.assign(n, 0);
  }
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(what, ": scale is empty"));
  if (n > 1) {
    const int64_t rank = static_cast<int64_t>(data_shape.size());
    if (axis < -rank || axis >= rank) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": axis ", axis, " is out of range for rank ", rank));
    }
    p.axis = axis < 0 ? axis + rank : axis;
    if (data_shape[p.axis] != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", n, " scales for axis ", p.axis, " of size ",
                       data_shape[p.axis], " (shape ", ShapeToString(data_shape), ")"));
    }
  }
  if (auto s = ValidateQuantParams(what, p); !s.ok()) return s;
  return p;
}

bool ToSymmetricS8(const Tensor& w, const QuantParams& wq, Tensor* out) {
  if (w.rank() < 1 || (w.dtype() != DType::kU8 && w.dtype() != DType::kS8)) return false;
  const int64_t oc = w.dim(0);
  if (!wq.per_tensor() && static_cast<int64_t>(wq.zero_points.size()) != oc) return false;
  const int64_t per = oc == 0 ? 0 : w.num_elements() / oc;
  Tensor r = Tensor::Zeros(DType::kS8, w.shape());
  int8_t* dst = r.data_as<int8_t>();
  for (int64_t o = 0; o < oc; ++o) {
    const int32_t zp = wq.zero_point(o);
    for (int64_t i = 0; i < per; ++i) {
      const int64_t k = o * per + i;
      const int32_t v = (w.dtype() == DType::kU8 ? w.data_as<uint8_t>()[k]
                                                 : w.data_as<int8_t>()[k]) - zp;
      if (v < -128 || v > 127) return false;
      dst[k] = static_cast<int8_t>(v);
    }
  }
  *out = std::move(r);
  return true;
}

bool ReduceTo7Bits(Tensor* w, std::vector<float>* scales) {
  const int64_t oc = w->dim(0);
  const int64_t per = oc == 0 ? 0 : w->num_elements() / oc;
  int8_t* p = w->data_as<int8_t>();
  bool changed = false;
  for (int64_t o = 0; o < oc; ++o) {
    int32_t m = 0;
    for (int64_t i = 0; i < per; ++i) m = std::max(m, std::abs(static_cast<int32_t>(p[o * per + i])));
    if (m <= 63) continue;
    changed = true;
    // w_real = s * w = (s * m / 63) * (w * 63 / m): same real weight, 7-bit integer part.
    const float f = 63.0f / static_cast<float>(m);
    for (int64_t i = 0; i < per; ++i) {
      p[o * per + i] = static_cast<int8_t>(std::nearbyint(p[o * per + i] * f));
    }
    (*scales)[o] *= static_cast<float>(m) / 63.0f;
  }
  return changed;
}

bool CpuHasInt8Vnni() {
  using isa = dnnl::cpu_isa;
  const isa i = dnnl::get_effective_cpu_isa();
  return i == isa::avx512_core_vnni || i == isa::avx512_core_bf16 ||
         i == isa::avx512_core_amx || i == isa::avx2_vnni;
}

}  // namespace octet
