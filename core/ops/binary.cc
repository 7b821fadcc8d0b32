// Binary operators. (Being implemented; registers nothing yet.)
#include "core/ops/op_util.h"

namespace octet {

void RegisterBinaryOps(OpRegistry& r) { (void)r; }

}  // namespace octet
