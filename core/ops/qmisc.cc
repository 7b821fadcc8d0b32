// Octet's int8 data-movement ops created by the QDQ pass.
#include "core/ops/op_util.h"
#include "core/ops/quant_ops.h"

namespace octet {

void RegisterQMiscOps(OpRegistry& r) { (void)r; }

}  // namespace octet
