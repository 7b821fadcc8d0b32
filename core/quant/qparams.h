// Quantization parameters and the integer arithmetic shared by Octet's INT8 operators.
//
// Everywhere in Octet a quantized tensor q stands for the real tensor
//   real = scale * (q - zero_point)
// with one (scale, zero_point) for the whole tensor or one per slice along `axis`.
#ifndef OCTET_CORE_QUANT_QPARAMS_H_
#define OCTET_CORE_QUANT_QPARAMS_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace octet {

// Smallest / largest value of an integer dtype (u8, s8, s32).
int64_t QMin(DType dtype);
int64_t QMax(DType dtype);

struct QuantParams {
  DType dtype = DType::kU8;           // type of q: u8, s8 (s32 for biases)
  std::vector<float> scales;          // 1 (per tensor) or one per slice along `axis`
  std::vector<int32_t> zero_points;   // same count as `scales`
  int64_t axis = -1;                  // normalized axis, -1 when per tensor

  bool per_tensor() const { return scales.size() == 1; }
  float scale(int64_t c) const { return scales[per_tensor() ? 0 : c]; }
  int32_t zero_point(int64_t c) const { return zero_points[per_tensor() ? 0 : c]; }
  bool symmetric() const;  // every zero point is 0
};

// Reads and checks quantization parameters. `scale` must be f32, every value finite and > 0;
// `zero_point` (may be null: 0 of `default_dtype`) must be u8/s8/s32 with as many values as the
// scale. With more than one value, `axis` (may be negative) selects the dimension of a tensor of
// shape `data_shape` they apply to, and the count must equal that dimension. `what` names the
// tensor in errors ("x_scale of QLinearConv node 'c1'").
absl::StatusOr<QuantParams> ReadQuantParams(const std::string& what, const Tensor& scale,
                                            const Tensor* zero_point, DType default_dtype,
                                            int64_t axis, const Shape& data_shape);

// Checks values after the fact (for parameters built in code, e.g. by the QDQ pass).
absl::Status ValidateQuantParams(const std::string& what, const QuantParams& p);

// Round half to even then saturate to [lo, hi]: ONNX QuantizeLinear's rounding. NaN maps to lo.
inline int32_t RoundSaturate(float v, int32_t lo, int32_t hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (!(v <= static_cast<float>(hi))) return hi;
  return static_cast<int32_t>(std::nearbyint(v));  // default rounding mode: half to even
}

// Weights w (u8/s8) with zero points wzp per output channel (dimension 0) as symmetric s8:
// w_s8 = w - wzp[oc]. Fails (returns false) when a value falls outside [-128, 127]; then the
// caller must use an exact reference kernel.
bool ToSymmetricS8(const Tensor& w, const QuantParams& wq, Tensor* out);

// Makes s8 weights fit in 7 bits (|w| <= 63) for CPUs without VNNI, where oneDNN's u8 x s8
// path adds pairs of products in 16 bits and can saturate. Channels already within range are
// unchanged; others are requantized: w7 = round(w * 63 / max|w|), scale *= max|w| / 63.
// `scales` has one value per output channel (dimension 0 of w). Returns true if anything changed.
bool ReduceTo7Bits(Tensor* w_s8, std::vector<float>* scales);

// True when oneDNN's int8 kernels on this CPU compute u8 x s8 products without 16-bit
// saturation (avx512_core_vnni, avx2_vnni or newer), honouring ONEDNN_MAX_CPU_ISA.
bool CpuHasInt8Vnni();

}  // namespace octet

#endif  // OCTET_CORE_QUANT_QPARAMS_H_
