// Internal to core/quant: the state QuantizeModel and the guards share between the quantized
// models they build for different exclusion sets.
#ifndef OCTET_CORE_QUANT_QUANT_SESSION_H_
#define OCTET_CORE_QUANT_QUANT_SESSION_H_

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "core/graph.h"
#include "core/quant/calibrator.h"
#include "core/quant/qdq_rewriter.h"
#include "core/quant/qparams.h"
#include "core/quant/quantizer.h"

namespace octet::quant_internal {

// Everything that does not depend on which layers are excluded: the prepared graph, the
// calibration data and the u8 parameters of every tensor that any plan may quantize.
struct Session {
  Graph prepared;
  std::unique_ptr<Calibrator> calibrator;
  std::map<std::string, CalibratedRange> ranges;
  std::map<std::string, QuantParams> params;
};

// Validates `options`, prepares the graph and calibrates every tensor the plan for
// options.exclude quantizes.
absl::StatusOr<std::unique_ptr<Session>> StartSession(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options);

// Writes the QDQ model for `exclude` and (if `measure_sqnr`) measures every quantized tensor's
// SQNR; without it, `layers` is left empty. `plan_out` (may be null) receives the plan.
absl::StatusOr<QuantizeResult> BuildModel(const Session& session,
                                          const std::set<std::string>& exclude,
                                          const QuantizeOptions& options, QdqPlan* plan_out,
                                          bool measure_sqnr = true);

}  // namespace octet::quant_internal

#endif  // OCTET_CORE_QUANT_QUANT_SESSION_H_
