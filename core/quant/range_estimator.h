// Calibration statistics for one activation tensor, and the choice of the real range a
// uint8 asymmetric quantization of it should cover.
//
// A RangeEstimator sees every value the tensor takes over the calibration samples (one call per
// batch), keeps a bounded summary of them (min, max and a histogram; memory does not grow with
// the number of samples), and at the end picks [lo, hi] by one of the methods below. The
// quantizer then uses   scale = (hi - lo) / 255,  zero_point = round(-lo / scale)   (u8).
#ifndef OCTET_CORE_QUANT_RANGE_ESTIMATOR_H_
#define OCTET_CORE_QUANT_RANGE_ESTIMATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/quant/qparams.h"

namespace octet {

enum class CalibrationMethod {
  kMinMax,      // [min, max] of every value seen
  kPercentile,  // clip the tails: keep `percentile` % of the values (each side for signed data)
  kEntropy,     // TensorRT-style: the clip threshold minimizing KL(P || Q) of the histogram
  kMse,         // the clip range minimizing the expected squared quantization error
};

// "minmax", "percentile", "entropy", "mse"; anything else is INVALID_ARGUMENT listing them.
absl::StatusOr<CalibrationMethod> ParseCalibrationMethod(absl::string_view name);
const char* CalibrationMethodName(CalibrationMethod method);

struct RangeEstimatorOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  // kPercentile: percentage of values kept inside the range, in (0, 100].
  double percentile = 99.99;
  // Histogram resolution (bins over the observed range). >= 256.
  int num_bins = 2048;
};

// The chosen range. Always lo <= 0 <= hi (zero must be exactly representable) and hi > lo.
struct CalibratedRange {
  float lo = 0;
  float hi = 0;
  float observed_min = 0;  // over every value seen
  float observed_max = 0;
  double clipped_fraction = 0;  // fraction of seen values outside [lo, hi], in [0, 1]
  int64_t count = 0;            // values seen
};

class RangeEstimator {
 public:
  // Fails on invalid options (percentile out of range, too few bins).
  static absl::StatusOr<RangeEstimator> Create(const RangeEstimatorOptions& options);

  // Adds a batch of values. Non-finite values are counted and ignored (reported by Finish).
  void Observe(absl::Span<const float> values);

  // The range by the configured method. FAILED_PRECONDITION if nothing finite was observed.
  // A tensor that is constant zero gets a tiny symmetric range so the scale stays > 0.
  absl::StatusOr<CalibratedRange> Finish() const;

  int64_t non_finite_count() const { return non_finite_; }

 private:
  friend class RangeEstimatorPeer;  // tests read the histogram
  explicit RangeEstimator(const RangeEstimatorOptions& options) : options_(options) {}

  // Lays the first histogram out over [lo, hi] (lo <= 0 <= hi, lo < hi).
  void CreateHistogram(double lo, double hi);
  // Merges bins k at a time (k = 2, 4, ...) until [lo, hi] fits; every old bin lies inside
  // exactly one new bin, so counts stay exact.
  void Widen(double lo, double hi);
  int64_t BinIndex(float v) const;

  RangeEstimatorOptions options_;
  int64_t non_finite_ = 0;
  int64_t count_ = 0;  // finite values seen
  int64_t zeros_ = 0;  // values exactly 0 (exactly representable: no rounding error)
  float min_ = 0, max_ = 0;
  // Bin i covers [(i - zero_bin_) * bin_width_, (i - zero_bin_ + 1) * bin_width_): 0 is always a
  // bin edge, so the |x| histogram is a fold and widening keeps the edges aligned. No histogram
  // (bin_width_ == 0) while every value seen is 0.
  double bin_width_ = 0;
  int64_t zero_bin_ = 0;
  std::vector<int64_t> hist_;
};

// u8 asymmetric parameters for a range: scale = (hi - lo) / 255, zero point = round(-lo / scale)
// clamped to [0, 255]. The range must satisfy lo <= 0 <= hi, hi > lo.
QuantParams U8ParamsForRange(const CalibratedRange& range);

}  // namespace octet

#endif  // OCTET_CORE_QUANT_RANGE_ESTIMATOR_H_
