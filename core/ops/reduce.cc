// Reduce operators. (Being implemented; registers nothing yet.)
#include "core/ops/op_util.h"

namespace octet {

void RegisterReduceOps(OpRegistry& r) { (void)r; }

}  // namespace octet
