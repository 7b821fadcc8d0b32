#include "core/quant/range_estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet {
namespace {

// Half width of the range given to a tensor that was constant 0 during calibration.
constexpr float kZeroHalfRange = 1e-4f;
// Narrower ranges would give a denormal (or zero) scale.
constexpr double kMinSpan = 1e-30;
// u8 levels: the quantized grid has 255 steps over the range.
constexpr double kSteps = 255.0;
// Cap on MSE candidates per side (the search is over pairs for signed data).
constexpr int64_t kMaxMseCandidates = 1024;

// A read-only view of the histogram for the range choices: counts in double, and each bin's
// value extent clamped to the observed [min, max] (the outermost bins are only partly used).
class HistView {
 public:
  HistView(const std::vector<int64_t>& hist, double width, int64_t zero_bin, double mn, double mx,
           int64_t zeros)
      : width_(width), zero_bin_(zero_bin), min_(mn), max_(mx), zeros_(zeros) {
    const int64_t n = static_cast<int64_t>(hist.size());
    count_.resize(n);
    lo_.resize(n);
    hi_.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      count_[i] = static_cast<double>(hist[i]);
      total_ += count_[i];
      const double a = (i - zero_bin_) * width_, b = a + width_;
      lo_[i] = std::min(std::max(a, min_), max_);
      hi_[i] = std::max(std::min(b, max_), lo_[i]);
    }
  }

  int64_t size() const { return static_cast<int64_t>(count_.size()); }
  double total() const { return total_; }
  double min() const { return min_; }
  double max() const { return max_; }

  // Number of values above v (values assumed uniform inside a bin).
  double CountAbove(double v) const {
    double n = 0;
    for (int64_t i = size() - 1; i >= 0; --i) {
      if (hi_[i] <= v) break;
      if (lo_[i] >= v) {
        n += count_[i];
      } else {
        n += count_[i] * (hi_[i] - v) / (hi_[i] - lo_[i]);
      }
    }
    return n;
  }
  double CountBelow(double v) const {
    double n = 0;
    for (int64_t i = 0; i < size(); ++i) {
      if (lo_[i] >= v) break;
      if (hi_[i] <= v) {
        n += count_[i];
      } else {
        n += count_[i] * (v - lo_[i]) / (hi_[i] - lo_[i]);
      }
    }
    return n;
  }

  // The value below which a fraction q of the values lies (linear inside a bin).
  double Quantile(double q) const {
    if (q <= 0) return min_;
    if (q >= 1) return max_;
    const double target = q * total_;
    double cum = 0;
    for (int64_t i = 0; i < size(); ++i) {
      if (count_[i] > 0 && cum + count_[i] >= target) {
        return lo_[i] + (target - cum) / count_[i] * (hi_[i] - lo_[i]);
      }
      cum += count_[i];
    }
    return max_;
  }

  // Histogram of |x| (bins [t w, (t+1) w)), trimmed after its last non-empty bin.
  std::vector<double> AbsHistogram() const {
    const int64_t m = std::max(zero_bin_, size() - zero_bin_);
    std::vector<double> abs(m, 0.0);
    for (int64_t t = 0; t < m; ++t) {
      if (zero_bin_ + t < size()) abs[t] += count_[zero_bin_ + t];
      if (zero_bin_ - 1 - t >= 0) abs[t] += count_[zero_bin_ - 1 - t];
    }
    while (!abs.empty() && abs.back() == 0) abs.pop_back();
    return abs;
  }

  // TensorRT's entropy calibration on the |x| histogram: the threshold T = i * width (i bins
  // kept, the rest folded into the last kept bin) minimizing KL(P || Q), where Q is the kept
  // bins (without the clipped values) merged into `levels` quantization bins and spread back over
  // their non-empty bins.
  double EntropyThreshold(int levels) const {
    std::vector<double> abs = AbsHistogram();
    // Exact zeros (half of a ReLU output) are represented exactly by any range; left in bin 0
    // they dominate the search (merging bin 0 with its neighbours smears them).
    if (!abs.empty()) abs[0] = std::max(0.0, abs[0] - static_cast<double>(zeros_));
    while (!abs.empty() && abs.back() == 0) abs.pop_back();
    const int64_t m = static_cast<int64_t>(abs.size());
    if (m <= levels) return std::numeric_limits<double>::infinity();
    std::vector<double> suffix(m + 1, 0.0);  // suffix[i] = sum of abs[i..m)
    for (int64_t i = m - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + abs[i];
    std::vector<double> p(m), q(m);
    double best_kl = std::numeric_limits<double>::infinity();
    int64_t best_i = m;
    for (int64_t i = levels; i <= m; ++i) {
      // P: the first i bins with the clipped values added to the last one.
      std::copy(abs.begin(), abs.begin() + i, p.begin());
      p[i - 1] += suffix[i];
      // Q: `levels` groups of (nearly) equal size over the unclipped first i bins.
      for (int g = 0; g < levels; ++g) {
        const int64_t b = g * i / levels, e = (g + 1) * i / levels;
        double sum = 0;
        int64_t nonzero = 0;
        for (int64_t j = b; j < e; ++j) {
          sum += abs[j];
          nonzero += p[j] > 0;
        }
        for (int64_t j = b; j < e; ++j) q[j] = p[j] > 0 && nonzero > 0 ? sum / nonzero : 0;
      }
      // KL(P || Q) with both divided by the number of values: Q then sums to the unclipped
      // fraction only. (Normalizing Q to 1 hides the clipping: a threshold below all the data
      // makes P and Q the same single bin, KL 0.) Q can be empty where P is not (the clipped
      // mass landing on an empty group): a small epsilon instead of infinity.
      constexpr double kEps = 1e-4;
      const double total = suffix[0];
      double kl = 0;
      for (int64_t j = 0; j < i; ++j) {
        if (p[j] <= 0) continue;
        const double pj = p[j] / total;
        const double qj = q[j] > 0 ? q[j] / total : kEps / i;
        kl += pj * std::log(pj / qj);
      }
      if (kl < best_kl - 1e-12) {
        best_kl = kl;
        best_i = i;
      }
    }
    return static_cast<double>(best_i) * width_;
  }

  // The range [lo, hi] (lo <= 0 <= hi, bin edges or the observed extremes) minimizing the
  // expected squared error of u8 quantization: step^2 / 12 rounding noise for every value inside
  // except exact zeros, plus (x - edge)^2 for every value clipped.
  void MseRange(double* lo, double* hi) const {
    // Prefix sums over bins: count, count * center, count * E[x^2 in bin].
    const int64_t n = size();
    std::vector<double> s0(n + 1, 0.0), s1(n + 1, 0.0), s2(n + 1, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double c = 0.5 * (lo_[i] + hi_[i]), w = hi_[i] - lo_[i];
      s0[i + 1] = s0[i] + count_[i];
      s1[i + 1] = s1[i] + count_[i] * c;
      s2[i + 1] = s2[i] + count_[i] * (c * c + w * w / 12);
    }
    // Candidate upper edges: bin index k (values in bins >= k are clipped to hi), hi = edge of k.
    struct Candidate {
      double edge;
      int64_t bin;  // first clipped bin (above) / one past the last clipped bin (below)
    };
    std::vector<Candidate> uppers, lowers;
    auto add_strided = [](std::vector<Candidate>* out, int64_t count, auto make) {
      const int64_t stride =
          std::max<int64_t>(1, (count + kMaxMseCandidates - 1) / kMaxMseCandidates);
      for (int64_t k = 0; k < count; k += stride) out->push_back(make(k));
      if (count > 0 && (count - 1) % stride != 0) out->push_back(make(count - 1));
    };
    if (max_ > 0) {
      // Edges zero_bin_ + 1 .. strictly below max, then max itself (nothing clipped).
      const int64_t top = zero_bin_ + static_cast<int64_t>(std::ceil(max_ / width_));
      const int64_t k_end = std::min(top, n);  // edges (k - zero_bin_) * width < max for k < top
      add_strided(&uppers, std::max<int64_t>(0, k_end - zero_bin_ - 1), [&](int64_t k) {
        const int64_t bin = zero_bin_ + 1 + k;
        return Candidate{(bin - zero_bin_) * width_, bin};
      });
      uppers.push_back({max_, n});
    } else {
      uppers.push_back({0.0, n});
    }
    if (min_ < 0) {
      const int64_t bottom = zero_bin_ - static_cast<int64_t>(std::ceil(-min_ / width_));
      const int64_t k_begin = std::max<int64_t>(bottom, 0);
      add_strided(&lowers, std::max<int64_t>(0, zero_bin_ - 1 - k_begin), [&](int64_t k) {
        const int64_t bin = zero_bin_ - 1 - k;
        return Candidate{(bin - zero_bin_) * width_, bin};
      });
      lowers.push_back({min_, 0});
    } else {
      lowers.push_back({0.0, 0});
    }
    const double nonzero_fraction = total_ > 0 ? (total_ - zeros_) / total_ : 0;
    double best = std::numeric_limits<double>::infinity();
    *lo = min_ < 0 ? min_ : 0;
    *hi = max_ > 0 ? max_ : 0;
    for (const Candidate& l : lowers) {
      // Bins [0, l.bin) lie below lo: error sum c (x - lo)^2.
      const double clip_lo = s2[l.bin] - 2 * l.edge * s1[l.bin] + l.edge * l.edge * s0[l.bin];
      for (const Candidate& u : uppers) {
        const double a0 = s0[n] - s0[u.bin], a1 = s1[n] - s1[u.bin], a2 = s2[n] - s2[u.bin];
        const double clip_hi = a2 - 2 * u.edge * a1 + u.edge * u.edge * a0;
        const double inside = (s0[u.bin] - s0[l.bin]) * nonzero_fraction;
        const double step = (u.edge - l.edge) / kSteps;
        const double err =
            inside * step * step / 12 + std::max(0.0, clip_lo) + std::max(0.0, clip_hi);
        if (err < best) {
          best = err;
          *lo = l.edge;
          *hi = u.edge;
        }
      }
    }
  }

 private:
  double width_;
  int64_t zero_bin_;
  double min_, max_;
  int64_t zeros_;
  double total_ = 0;
  std::vector<double> count_, lo_, hi_;
};

}  // namespace

absl::StatusOr<CalibrationMethod> ParseCalibrationMethod(absl::string_view name) {
  for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                              CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
    if (name == CalibrationMethodName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown calibration method '", name,
                                                 "'; expected minmax, percentile, entropy or mse"));
}

const char* CalibrationMethodName(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kEntropy:
      return "entropy";
    case CalibrationMethod::kMse:
      return "mse";
  }
  return "unknown";
}

absl::StatusOr<RangeEstimator> RangeEstimator::Create(const RangeEstimatorOptions& options) {
  switch (options.method) {
    case CalibrationMethod::kMinMax:
    case CalibrationMethod::kPercentile:
    case CalibrationMethod::kEntropy:
    case CalibrationMethod::kMse:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("invalid calibration method ", static_cast<int>(options.method)));
  }
  if (!(options.percentile > 0 && options.percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("percentile must be in (0, 100], got ", options.percentile));
  }
  constexpr int kMaxBins = 1 << 14;  // entropy's search is quadratic in the bins
  if (options.num_bins < 256 || options.num_bins > kMaxBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_bins must be in [256, ", kMaxBins, "], got ", options.num_bins));
  }
  return RangeEstimator(options);
}

void RangeEstimator::CreateHistogram(double lo, double hi) {
  const int64_t n = options_.num_bins;
  hist_.assign(n, 0);
  // Two spare bins so that rounding in ceil() below cannot leave either end uncovered.
  bin_width_ = (hi - lo) / static_cast<double>(n - 2);
  zero_bin_ = std::min<int64_t>(static_cast<int64_t>(std::ceil(-lo / bin_width_)), n - 1);
}

void RangeEstimator::Widen(double lo, double hi) {
  const int64_t n = static_cast<int64_t>(hist_.size());
  const double old_neg = static_cast<double>(zero_bin_),
               old_pos = static_cast<double>(n - zero_bin_);
  for (double k = 2;; k *= 2) {
    const double wide = bin_width_ * k;
    // Bins needed on each side of 0: the old extent (merged k to 1) and the new values.
    const double neg = std::max(std::ceil(old_neg / k), std::ceil(std::max(0.0, -lo) / wide));
    const double pos = std::max(std::ceil(old_pos / k), std::ceil(std::max(0.0, hi) / wide));
    if (neg + pos > static_cast<double>(n)) continue;
    // Spare bins go to both sides in proportion, for the next batches.
    const double spare = static_cast<double>(n) - neg - pos;
    const int64_t new_zero = static_cast<int64_t>(neg + std::floor(spare * neg / (neg + pos)));
    std::vector<int64_t> merged(n, 0);
    for (int64_t t = 0; t < n; ++t) {
      if (hist_[t] == 0) continue;
      // Old bin t covers [(t - z) w, (t - z + 1) w), inside new bin z' + floor((t - z) / k).
      const int64_t r = static_cast<int64_t>(std::floor(static_cast<double>(t - zero_bin_) / k));
      merged[new_zero + r] += hist_[t];
    }
    hist_.swap(merged);
    bin_width_ = wide;
    zero_bin_ = new_zero;
    return;
  }
}

int64_t RangeEstimator::BinIndex(float v) const {
  const double r = std::floor(static_cast<double>(v) / bin_width_) + static_cast<double>(zero_bin_);
  const double last = static_cast<double>(hist_.size() - 1);
  return static_cast<int64_t>(std::min(std::max(r, 0.0), last));
}

void RangeEstimator::Observe(absl::Span<const float> values) {
  float batch_min = std::numeric_limits<float>::infinity();
  float batch_max = -std::numeric_limits<float>::infinity();
  int64_t finite = 0, zeros = 0;
  for (float v : values) {
    if (!std::isfinite(v)) {
      ++non_finite_;
      continue;
    }
    batch_min = std::min(batch_min, v);
    batch_max = std::max(batch_max, v);
    ++finite;
    zeros += v == 0;
  }
  if (finite == 0) return;
  if (count_ == 0) {
    min_ = batch_min;
    max_ = batch_max;
  } else {
    min_ = std::min(min_, batch_min);
    max_ = std::max(max_, batch_max);
  }
  const int64_t before = count_;
  count_ += finite;
  zeros_ += zeros;
  if (bin_width_ == 0) {
    if (min_ == 0 && max_ == 0) return;  // all zeros so far: binned when a histogram exists
    CreateHistogram(std::min(0.0, static_cast<double>(min_)),
                    std::max(0.0, static_cast<double>(max_)));
    hist_[zero_bin_] += before;  // the earlier values, all exactly 0
  } else if (batch_min < -zero_bin_ * bin_width_ ||
             batch_max >= (static_cast<double>(hist_.size()) - zero_bin_) * bin_width_) {
    Widen(batch_min, batch_max);
  }
  for (float v : values) {
    if (std::isfinite(v)) ++hist_[BinIndex(v)];
  }
}

absl::StatusOr<CalibratedRange> RangeEstimator::Finish() const {
  if (count_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no finite value observed (", non_finite_, " non-finite values ignored)"));
  }
  CalibratedRange r;
  r.observed_min = min_;
  r.observed_max = max_;
  r.count = count_;
  if (bin_width_ == 0) {  // constant zero
    r.lo = -kZeroHalfRange;
    r.hi = kZeroHalfRange;
    return r;
  }
  const HistView h(hist_, bin_width_, zero_bin_, min_, max_, zeros_);
  const double mn = min_, mx = max_;
  double lo = std::min(mn, 0.0), hi = std::max(mx, 0.0);
  switch (options_.method) {
    case CalibrationMethod::kMinMax:
      break;
    case CalibrationMethod::kPercentile: {
      const double keep = options_.percentile / 100.0;
      if (mn >= 0) {
        hi = h.Quantile(keep);
      } else if (mx <= 0) {
        lo = h.Quantile(1 - keep);
      } else {
        lo = h.Quantile((1 - keep) / 2);
        hi = h.Quantile(1 - (1 - keep) / 2);
      }
      break;
    }
    case CalibrationMethod::kEntropy: {
      // One-sided data uses all 256 levels on one side; signed data gets a symmetric threshold
      // over |x| with 128 levels per side.
      const bool one_sided = mn >= 0 || mx <= 0;
      const double t = h.EntropyThreshold(one_sided ? 256 : 128);
      lo = std::max(mn, -t);
      hi = std::min(mx, t);
      break;
    }
    case CalibrationMethod::kMse:
      h.MseRange(&lo, &hi);
      break;
  }
  lo = std::min(std::max(lo, std::min(mn, 0.0)), 0.0);
  hi = std::max(std::min(hi, std::max(mx, 0.0)), 0.0);
  if (hi - lo < kMinSpan) {
    lo = -kZeroHalfRange;
    hi = kZeroHalfRange;
  }
  r.lo = static_cast<float>(lo);
  r.hi = static_cast<float>(hi);
  const double clipped = (lo > mn ? h.CountBelow(lo) : 0) + (hi < mx ? h.CountAbove(hi) : 0);
  r.clipped_fraction = std::min(1.0, std::max(0.0, clipped / h.total()));
  return r;
}

QuantParams U8ParamsForRange(const CalibratedRange& range) {
  const double lo = std::min(0.0, static_cast<double>(range.lo));
  const double hi = std::max(0.0, static_cast<double>(range.hi));
  double scale = (hi - lo) / kSteps;
  if (!(scale > 0) || !std::isfinite(scale)) scale = 2.0 * kZeroHalfRange / kSteps;
  QuantParams p;
  p.dtype = DType::kU8;
  p.scales = {static_cast<float>(scale)};
  // zero_point = round(-lo / scale), half to even like QuantizeLinear, clamped to [0, 255]; from
  // the unrounded scale, so that [-1, 1] gives exactly 127.5 -> 128.
  const double zp = std::nearbyint(-lo / scale);
  p.zero_points = {static_cast<int32_t>(std::min(255.0, std::max(0.0, zp)))};
  p.axis = -1;
  return p;
}

}  // namespace octet
