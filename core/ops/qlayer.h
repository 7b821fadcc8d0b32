// Shared preparation of quantized layers (QLinearConv/QLinearMatMul and Octet's fused
// octet:QConv/octet:QMatMul) for oneDNN's int8 convolution and matmul primitives.
//
// Inputs of these ops (QLinearConv's order, extended by Octet for fused residuals):
//   0 x, 1 x_scale, 2 x_zero_point, 3 w, 4 w_scale, 5 w_zero_point, 6 y_scale, 7 y_zero_point,
//   8 bias, 9 residual, 10 residual_scale, 11 residual_zero_point.
// octet ops may omit y_scale (then the output is FP32: the layer dequantizes where FP32 leaves)
// and may give the bias as FP32 real values (it is converted to the accumulator domain).
#ifndef OCTET_CORE_OPS_QLAYER_H_
#define OCTET_CORE_OPS_QLAYER_H_

#include <string>
#include <vector>

#include "core/op_kernel.h"
#include "core/ops/qref.h"
#include "core/quant/qparams.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

enum QLayerInput { kQX = 0, kQXs, kQXzp, kQW, kQWs, kQWzp, kQYs, kQYzp, kQBias, kQR, kQRs, kQRzp };

// The constant parameters of a layer, ready for oneDNN.
struct Int8Layer {
  QuantParams x;                 // per tensor; u8 (an s8 input is shifted: zero point + 128)
  bool shift_x = false;          // x is s8: convert to u8 by adding 128 before the primitive
  std::vector<float> w_scales;   // per output channel, for the weights in `w_s8`
  Tensor w_s8;                   // [OC, ...] symmetric s8 weights (7-bit without VNNI)
  bool reduced_7bit = false;
  std::vector<float> bias_acc;   // per output channel, accumulator domain of w_s8; empty = none
  DType y_dtype = DType::kF32;   // u8/s8 quantized output, or f32
  float y_scale = 1.0f;
  int32_t y_zero_point = 0;
  bool has_residual = false;
  DType r_dtype = DType::kF32;
  float r_scale = 1.0f;
  int32_t r_zero_point = 0;
  std::vector<PostOp> post_ops;
};

// Reads the constant parameters for a layer whose weights, reshaped to output-channel-major
// [OC, ...], are `w_oc_major`. Returns false with `why_not` when the oneDNN path cannot compute
// the layer exactly (then use the reference kernel); an error when the parameters are invalid.
absl::StatusOr<bool> PrepareInt8Layer(BuildContext& ctx, const Tensor& w_oc_major,
                                      int64_t out_channels, Int8Layer* out, std::string* why_not);

// The primitive attributes of the layer. The formula, in oneDNN 2.6's order:
//   dst = saturate(round(post_ops((acc + bias_acc) * x_scale * w_scale[oc] / y_scale)) + y_zp)
// with acc = sum (x - x_zp) * w_s8 and the post-ops in the y/y_scale domain: Relu unchanged,
// Clip bounds divided by y_scale, residual sum with scale r_scale / y_scale and zero point r_zp.
// `oc_mask` is the output-scale mask of the output-channel dimension.
dnnl::primitive_attr MakeInt8Attr(const Int8Layer& layer, int oc_mask);

// Post-ops the int8 path (and the reference kernel) can apply; others are refused.
absl::Status CheckInt8PostOps(const BuildContext& ctx, const std::vector<PostOp>& post_ops);

// Reads the QLinearConv/QLinearMatMul-style parameters (x/w scales and zero points, y scale and
// zero point, bias of `out_channels`, fused residual of `out_shape` with its scale and zero point,
// post-ops) of the current node into `spec`. Refuses a bias or residual of the wrong shape.
absl::Status ReadQLinearParams(BuildContext& ctx, int64_t out_channels, const Shape& out_shape,
                               RefQLayerKernel::Spec* spec);

// Weights (or bias) prepared once per model in `target_md` from a plain tensor described by
// `user_md` (WeightCache: shared by every plan and context). `tag` distinguishes variants.
absl::StatusOr<dnnl::memory> CacheConstant(BuildContext& ctx, const std::string& tag,
                                           const Tensor& src, const dnnl::memory::desc& user_md,
                                           const dnnl::memory::desc& target_md);

// A kernel converting an s8 value to u8 (+128) in layout `md` (dims of the value), for layers
// fed with int8 activations: (x + 128) - (x_zp + 128) = x - x_zp exactly.
std::unique_ptr<OpKernel> MakeShiftS8ToU8(const dnnl::engine& eng, PlanValue& x,
                                          const dnnl::memory::desc& u8_md, dnnl::memory* out);

}  // namespace octet

#endif  // OCTET_CORE_OPS_QLAYER_H_
