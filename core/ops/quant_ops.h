// Registration of the quantized operator families (called from RegisterQuantOps).
#ifndef OCTET_CORE_OPS_QUANT_OPS_H_
#define OCTET_CORE_OPS_QUANT_OPS_H_

#include "core/op_kernel.h"

namespace octet {

// ConvInteger, QLinearConv and Octet's fused octet:QConv (core/ops/qconv.cc).
void RegisterQConvOps(OpRegistry& r);
// MatMulInteger, QLinearMatMul and Octet's fused octet:QMatMul (core/ops/qmatmul.cc).
void RegisterQMatMulOps(OpRegistry& r);
// Octet's int8 data-movement ops: octet:QPool, octet:QConcat, octet:Requantize (core/ops/qmisc.cc).
void RegisterQMiscOps(OpRegistry& r);

// Domain of Octet's internal ops created by graph passes.
inline constexpr char kOctetDomain[] = "octet";

}  // namespace octet

#endif  // OCTET_CORE_OPS_QUANT_OPS_H_
