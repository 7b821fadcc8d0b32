// Calibrator: runs an FP32 graph on the engine over calibration samples and observes chosen
// intermediate tensors (made extra graph outputs) — to calibrate their ranges, and to compare a
// quantized model's tensors against FP32 (SQNR).
#ifndef OCTET_CORE_QUANT_CALIBRATOR_H_
#define OCTET_CORE_QUANT_CALIBRATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph.h"
#include "core/quant/range_estimator.h"
#include "core/tensor.h"

namespace octet {

struct CalibratorOptions {
  // Samples per engine run. >= 1 (a model with a fixed batch dimension uses that instead).
  int64_t batch = 16;
  // Engine threads. >= 1.
  int num_threads = 1;
};

class Calibrator {
 public:
  // Checks `samples` against the graph inputs: every input given, no unknown name, dtype and
  // non-batch dimensions as declared, the same sample count N >= 1 along dimension 0 for all.
  // `fp32` is copied.
  static absl::StatusOr<Calibrator> Create(const Graph& fp32,
                                           const std::map<std::string, Tensor>& samples,
                                           const CalibratorOptions& options);

  int64_t num_samples() const { return num_samples_; }

  // Calibrated range of every tensor in `tensors` over all samples. `progress` (may be empty)
  // is called after each batch with (samples done, total).
  absl::StatusOr<std::map<std::string, CalibratedRange>> Calibrate(
      const std::vector<std::string>& tensors, const RangeEstimatorOptions& options,
      const std::function<void(int64_t, int64_t)>& progress) const;

  // 10 log10(sum x^2 / sum (x - y)^2) in dB for each pair in `tensors`: x is the first tensor
  // in the FP32 graph, y the second in `other` (e.g. its QDQ version, run unoptimized so Q/DQ
  // are simulated in FP32; same inputs), over the first `max_samples` samples. +inf when equal.
  // Keyed by the first name.
  absl::StatusOr<std::map<std::string, double>> CompareSqnr(
      const Graph& other, const std::vector<std::pair<std::string, std::string>>& tensors,
      int64_t max_samples) const;

  // Runs the graph given to Create (optimized) over all samples, batch by batch, and hands
  // `visit` the samples [begin, end) and that batch's values of `tensors`.
  using Visitor =
      std::function<absl::Status(int64_t begin, int64_t end, const std::vector<Tensor>& values)>;
  absl::Status ForEachBatch(const std::vector<std::string>& tensors, const Visitor& visit) const;

 private:
  Calibrator() = default;

  Graph fp32_;
  std::vector<Tensor> inputs_;  // in the order of fp32_.inputs
  int64_t num_samples_ = 0;
  int64_t batch_ = 1;
  bool fixed_batch_ = false;
  int num_threads_ = 1;
};

// Rows [begin, end) of `t` along dimension 0 (a copy).
Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end);

}  // namespace octet

#endif  // OCTET_CORE_QUANT_CALIBRATOR_H_
