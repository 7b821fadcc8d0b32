// Exact reference kernels for integer layers (ConvInteger, MatMulInteger, QLinearConv,
// QLinearMatMul and Octet's fused QConv/QMatMul) for the cases oneDNN's int8 primitives cannot
// take exactly: runtime scales or weights, asymmetric weights outside s8, per-row zero points.
#ifndef OCTET_CORE_OPS_QREF_H_
#define OCTET_CORE_OPS_QREF_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/graph.h"
#include "core/op_kernel.h"
#include "core/quant/qparams.h"

namespace octet {

// A typed view of a plain plan value. (PlanValue::buffer may be raw bytes when the producer
// declared a layout, so its own dtype/shape are not the value's.)
inline Tensor View(const PlanValue& v) {
  return Tensor::Borrow(v.dtype, v.shape, const_cast<void*>(v.buffer.data()));
}

// Constant input i of the current node as a typed tensor (empty optional if not constant).
inline std::optional<Tensor> ConstantInput(BuildContext& ctx, size_t i) {
  if (!ctx.has_input(i) || ctx.constant(i) == nullptr) return std::nullopt;
  return View(ctx.input(i));
}

// Which of `count` channels element i of a row-major tensor belongs to: (i / inner) % count.
struct ChannelMap {
  int64_t inner = 1;
  int64_t count = 1;
  int64_t operator()(int64_t i) const { return count == 1 ? 0 : (i / inner) % count; }
};

// Grouped N-d convolution geometry; spatial dimensions padded to 3 (size 1, no padding).
struct IntConvGeometry {
  int64_t n = 1, c = 1, oc = 1, groups = 1;
  int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad[3] = {0, 0, 0};
};
// acc[n, oc, o] = sum_{c in group(oc), k} xi[n, c, o*stride + k*dil - pad] * wi[oc, c, k];
// positions in the padding contribute 0 (ONNX pads quantized inputs with their zero point).
void RefIntConv(const IntConvGeometry& g, const int32_t* xi, const int32_t* wi, int32_t* acc,
                int num_threads);

// Batched matmul with numpy broadcasting of the batch dimensions: for batch b,
// acc[b] (m x n) = ai[a_offsets[b]] (m x k) * bi[b_offsets[b]] (k x n).
struct IntMatMulGeometry {
  int64_t m = 1, k = 1, n = 1;
  std::vector<int64_t> a_offsets, b_offsets;  // element offsets, one per output batch
};
void RefIntMatMul(const IntMatMulGeometry& g, const int32_t* ai, const int32_t* bi, int32_t* acc,
                  int num_threads);

// out[i] = q[i] - zero_points[map(i)] for u8/s8/s32 q.
void SubtractZeroPoint(const void* q, DType dtype, int64_t count,
                       const std::vector<int32_t>& zero_points, ChannelMap map, int32_t* out);

// Where the quantization parameters of one layer operand come from (plan values, read at run
// time because they may be graph inputs). `zero_point` may be null.
struct QOperand {
  const PlanValue* value = nullptr;
  const PlanValue* scale = nullptr;
  const PlanValue* zero_point = nullptr;
  int64_t axis = -1;     // axis a per-channel scale/zero point applies to
  ChannelMap zp_map;     // channel of each element of `value` (for its zero points)
  ChannelMap out_map;    // channel of each output element (for its scale)
};

// The whole integer layer, computed exactly:
//   acc    = sum (x - x_zp) * (w - w_zp)                      (int32, by `compute`)
//   v      = (float(acc) + bias_acc[oc]) * x_scale * w_scale[oc] / y_scale
//   v      = post_ops(v)   (Relu; Clip on bounds / y_scale; Sum: v += r_scale / y_scale * (r - r_zp))
//   y      = saturate(round_half_even(v) + y_zp)              (u8/s8 output)
// With no scales at all (ConvInteger, MatMulInteger) y = acc (s32). With no y_scale (Octet's
// layers that dequantize where FP32 leaves) y_scale = 1 and y = v (f32).
class RefQLayerKernel : public OpKernel {
 public:
  struct Spec {
    std::string label;  // for errors
    QOperand x, w;
    const PlanValue* y_scale = nullptr;
    const PlanValue* y_zero_point = nullptr;
    const PlanValue* bias = nullptr;  // s32 in the accumulator domain, or f32 real values
    ChannelMap bias_map;              // channel of each output element for the bias
    std::vector<PostOp> post_ops;
    QOperand residual;  // for a kSum post-op (value/scale/zero_point; out_map unused)
    PlanValue* y = nullptr;
    std::function<void(const int32_t* xi, const int32_t* wi, int32_t* acc)> compute;
  };
  explicit RefQLayerKernel(Spec spec);
  absl::Status Run(dnnl::stream& stream) override;
  std::string Describe() const override {
    return note_.empty() ? "ref:int8" : "ref:int8 (" + note_ + ")";
  }
  // Why the reference kernel was chosen (shown by Describe()).
  void set_note(std::string note) { note_ = std::move(note); }

 private:
  absl::StatusOr<QuantParams> Read(const QOperand& op, const char* what) const;
  absl::StatusOr<QuantParams> ReadUnchecked(const QOperand& op, const char* what) const;
  Spec spec_;
  std::vector<int32_t> xi_, wi_, acc_;
  std::string note_;
};

}  // namespace octet

#endif  // OCTET_CORE_OPS_QREF_H_
