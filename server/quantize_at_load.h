// Quantization at load: a config.pbtxt `quantize { ... }` block (QuantizeConfig in
// proto/octet/model_config.proto) turns the version's FP32 model.onnx into an INT8 QDQ model in
// memory with the engine's quantizer, before the server loads it. Nothing is cached on disk
// (containers run with a read-only root filesystem).
#ifndef OCTET_SERVER_QUANTIZE_AT_LOAD_H_
#define OCTET_SERVER_QUANTIZE_AT_LOAD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/quant/quantizer.h"
#include "octet/model_config.pb.h"

namespace octet::server {

// Quantizes `fp32_onnx_bytes`, whose graph inputs are `inputs`, with the calibration samples and
// options of `config`. Relative calibration paths are looked up in `version_dir`, then in its
// parent (the model directory). Errors are INVALID_ARGUMENT / NOT_FOUND with a message that
// starts with "quantize:" and names the file, input or option at fault.
absl::StatusOr<QuantizeResult> QuantizeAtLoad(const std::string& fp32_onnx_bytes,
                                              const std::vector<TensorSpec>& inputs,
                                              const std::string& version_dir,
                                              const config::QuantizeConfig& config);

// The report as log lines: one summary line, then one short line per layer.
std::vector<std::string> QuantizeSummary(const QuantizeResult& result,
                                         const config::QuantizeConfig& config);

}  // namespace octet::server

#endif  // OCTET_SERVER_QUANTIZE_AT_LOAD_H_
