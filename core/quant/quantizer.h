// Static post-training quantization: turns an FP32 ONNX model into a standard ONNX QDQ model
// (QuantizeLinear/DequantizeLinear around Conv/Gemm/MatMul and the data-movement ops between
// them), calibrated by running the FP32 engine over sample inputs. Octet's FuseQdq pass runs the
// result in INT8; ONNX Runtime loads it as well.
//
// Quantization scheme (what the written Q/DQ nodes mean, real = scale * (q - zero_point)):
//  - activations: u8 asymmetric, one (scale, zero point) per tensor from the calibrated range;
//  - weights: s8 symmetric, scale = max|w| / 127 per output channel (or per tensor);
//  - biases: s32, scale = s_x * s_w[oc], zero point 0.
#ifndef OCTET_CORE_QUANT_QUANTIZER_H_
#define OCTET_CORE_QUANT_QUANTIZER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/range_estimator.h"
#include "core/tensor.h"

namespace octet {

struct QuantizeOptions {
  // Calibration method for the activation ranges.
  RangeEstimatorOptions range;
  // Weights: one scale per output channel (true) or one per tensor (false).
  bool per_channel = true;
  // Node names kept in FP32. A name that is not a node of the model is INVALID_ARGUMENT.
  std::vector<std::string> exclude;
  // Samples per FP32 engine run during calibration. >= 1.
  int64_t calibration_batch = 16;
  // Engine (OpenMP) threads used for the calibration and validation runs. >= 1.
  int num_threads = 1;
  // Samples used to measure each layer's SQNR (the first ones of the calibration set). >= 1.
  int64_t sqnr_samples = 64;
  // Optional; called after each calibration batch with samples done and the total.
  std::function<void(int64_t done, int64_t total)> progress;
};

// One per quantized activation tensor (and one per excluded layer, with quantized = false).
struct LayerReport {
  std::string node;     // the node producing `tensor` (the Conv of a fused Conv->Relu)
  std::string op_type;  // its op type ("Conv", "Gemm", "MaxPool"...; "input" for graph inputs)
  std::string tensor;   // the quantized tensor
  float scale = 0;
  int32_t zero_point = 0;
  double clipped_percent = 0;  // calibration values outside the quantized range, in %
  double sqnr_db = 0;          // 10 log10(sum x^2 / sum (x - x_qdq)^2) against FP32; inf if exact
  bool quantized = true;
};

struct QuantizeResult {
  std::string onnx_bytes;  // the serialized QDQ ModelProto
  std::vector<LayerReport> layers;
  // Weight bytes (initializers) of the input model and of the written one.
  int64_t fp32_weight_bytes = 0;
  int64_t int8_weight_bytes = 0;
};

// Quantizes `fp32_onnx_bytes`. `calibration` maps every graph input name to a tensor [N, ...]
// holding N samples along dimension 0 (the other dimensions as the model declares them).
// Errors: INVALID_ARGUMENT for unknown/missing inputs, wrong dtype or shape, unknown exclude
// names, bad options; UNIMPLEMENTED for models that cannot be written as QDQ (opset < 13 with ops
// whose definition changed, control flow).
absl::StatusOr<QuantizeResult> QuantizeModel(const std::string& fp32_onnx_bytes,
                                             const std::map<std::string, Tensor>& calibration,
                                             const QuantizeOptions& options);

// Labelled data to measure top-1 accuracy on: inputs as for calibration, labels [N] integers.
// The model's first output is the class scores (argmax over its last dimension).
struct ValidationSet {
  std::map<std::string, Tensor> inputs;
  Tensor labels;
};

struct AccuracyGuardOptions {
  // Largest allowed top-1 drop of the INT8 model against FP32, in percentage points. >= 0.
  double max_accuracy_drop = 0.5;
  // Give up after this many layers were moved back to FP32. >= 0.
  int max_fp32_layers = 1000;
};

struct AccuracyGuardResult {
  QuantizeResult result;                    // the final model
  double fp32_accuracy = 0;                 // top-1 in %, FP32 model
  double int8_accuracy = 0;                 // top-1 in %, the final model on Octet's INT8 engine
  double initial_int8_accuracy = 0;         // before any layer was moved back
  std::vector<std::string> moved_to_fp32;   // layers added to the exclusions, in order
  std::vector<double> accuracy_after_move;  // INT8 top-1 after each move
  bool within_budget = false;
};

// Quantizes, then while INT8 top-1 on `validation` is more than max_accuracy_drop points below
// FP32, moves the quantized layer with the lowest SQNR to FP32 and quantizes again.
absl::StatusOr<AccuracyGuardResult> QuantizeWithAccuracyGuard(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options, const ValidationSet& validation,
    const AccuracyGuardOptions& guard);

// Label-free fidelity guard: INT8 must follow FP32 on unlabelled validation inputs.
struct FidelityGuardOptions {
  // Smallest allowed mean cosine similarity between the FP32 and the INT8 model's first output
  // (per sample, flattened) over the validation samples, both run on Octet's engine. In (0, 1].
  double min_cosine = 0.995;
  // Layers whose sensitivity is measured, one quantize + validation run each: the first
  // `max_probes` quantized Conv/Gemm/MatMul layers in topological order (early layers feed their
  // noise through the whole network); 0 measures every layer. >= 0.
  int max_probes = 0;
  // How a layer's sensitivity is measured. kFp32Alone: the full INT8 model with only this layer
  // in FP32 (gain = its cosine - full INT8's). kInt8Alone: the FP32 model with only this layer in
  // INT8 (gain = 1 - its cosine: the damage its quantization does on its own; such damages add
  // up roughly like noise powers, where single FP32 layers interact: the tensor between two
  // quantized layers stays quantized until both are FP32).
  enum class Probe { kFp32Alone, kInt8Alone };
  Probe probe = Probe::kInt8Alone;
  // Validation samples the probes run on (the first ones; the ranking needs less precision than
  // the stopping test, which always uses all). 0 = all. >= 0.
  int64_t probe_samples = 0;
  // Give up after this many layers were moved back to FP32. >= 0.
  int max_fp32_layers = 1000;
};

// One probed layer: the metric with it alone kept in FP32.
struct LayerSensitivity {
  std::string node;
  double cosine = 0;  // mean cosine with only this layer in FP32 / in INT8 (see Probe)
  double gain = 0;    // expected gain of moving it to FP32 (see Probe)
  int64_t macs = 0;   // multiply-accumulates per sample
};

struct FidelityGuardResult {
  QuantizeResult result;      // the final model
  double initial_cosine = 0;  // full INT8 (only the user's exclusions)
  double cosine = 0;          // the final model
  // Probed layers, highest gain first: the order in which layers are moved.
  std::vector<LayerSensitivity> ranking;
  std::vector<std::string> moved_to_fp32;    // layers added to the exclusions, in order
  std::vector<double> cosine_after_move;     // mean cosine after each move
  std::vector<double> int8_macs_after_move;  // fraction of MACs still INT8 after each move
  double int8_mac_fraction = 0;              // of all Conv/Gemm/MatMul MACs, in the final model
  double int8_weight_fraction = 0;           // of their weight elements, in the final model
  bool within_budget = false;
};

// Quantizes, then while the mean cosine on `validation` is below min_cosine: measures each
// candidate layer's gain when kept alone in FP32 (once), and moves layers to FP32 in order of
// decreasing gain (then the layers not probed, in topological order), re-measuring after each
// move, until the target holds. `validation` maps every graph input to [N, ...] samples as for
// calibration.
absl::StatusOr<FidelityGuardResult> QuantizeWithFidelityGuard(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options, const std::map<std::string, Tensor>& validation,
    const FidelityGuardOptions& guard);

// Mean cosine similarity between the first outputs of two models (the optimized engine) over
// `inputs`, per sample.
absl::StatusOr<double> MeasureCosine(const std::string& reference_onnx_bytes,
                                     const std::string& onnx_bytes,
                                     const std::map<std::string, Tensor>& inputs, int num_threads,
                                     int64_t batch);

// Top-1 accuracy in % of a model (the optimized engine) on `validation`.
absl::StatusOr<double> MeasureTop1(const std::string& onnx_bytes, const ValidationSet& validation,
                                   int num_threads, int64_t batch);

}  // namespace octet

#endif  // OCTET_CORE_QUANT_QUANTIZER_H_
