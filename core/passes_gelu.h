// Graph pass: the exact (erf) GELU that exporters write out as five nodes,
//   y = x * 0.5 * (1 + Erf(x / sqrt(2)))
// becomes one Gelu node (oneDNN eltwise_gelu_erf, in any layout).
#ifndef OCTET_CORE_PASSES_GELU_H_
#define OCTET_CORE_PASSES_GELU_H_

#include "absl/status/status.h"
#include "core/graph.h"

namespace octet {

// Recognizes Div(x, sqrt 2) or Mul(x, 1/sqrt 2) -> Erf -> Add 1 -> and the product of x, 0.5 and
// that sum in any of the orders exporters produce. Constants must be one-element f32
// initializers; intermediate values must have no other consumer.
absl::Status FuseGelu(Graph& graph);

}  // namespace octet

#endif  // OCTET_CORE_PASSES_GELU_H_
