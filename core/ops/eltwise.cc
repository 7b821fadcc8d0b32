// Eltwise operators. (Being implemented; registers nothing yet.)
#include "core/ops/op_util.h"

namespace octet {

void RegisterEltwiseOps(OpRegistry& r) { (void)r; }

}  // namespace octet
