// RangeEstimator: calibration statistics and the range each method picks, against values
// computed by hand (exact extremes, quantiles of evenly spaced sets, the MSE optimum of a
// closed-form error curve) and against a histogram recomputed from all the data at once.
#include "core/quant/range_estimator.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {

// Reads the private histogram (declared a friend in range_estimator.h).
class RangeEstimatorPeer {
 public:
  static const std::vector<int64_t>& Hist(const RangeEstimator& e) { return e.hist_; }
  static double BinWidth(const RangeEstimator& e) { return e.bin_width_; }
  static int64_t ZeroBin(const RangeEstimator& e) { return e.zero_bin_; }
};

namespace {

using ::testing::HasSubstr;

RangeEstimator Make(CalibrationMethod method, double percentile = 99.99, int num_bins = 2048) {
  RangeEstimatorOptions o;
  o.method = method;
  o.percentile = percentile;
  o.num_bins = num_bins;
  absl::StatusOr<RangeEstimator> e = RangeEstimator::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

CalibratedRange FinishOk(const RangeEstimator& e) {
  absl::StatusOr<CalibratedRange> r = e.Finish();
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CalibratedRange{};
}

// n evenly spaced values lo, lo + step, ... (an exactly uniform histogram).
std::vector<float> Evenly(int n, double lo, double step) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(lo + i * step);
  return v;
}

TEST(CalibrationMethodTest, ParsesNamesAndRejectsOthers) {
  for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                              CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
    absl::StatusOr<CalibrationMethod> parsed = ParseCalibrationMethod(CalibrationMethodName(m));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_STREQ(CalibrationMethodName(CalibrationMethod::kEntropy), "entropy");
  for (const char* bad : {"kl", "", "MinMax", "mse "}) {
    absl::StatusOr<CalibrationMethod> parsed = ParseCalibrationMethod(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("minmax, percentile, entropy or mse"));
  }
}

TEST(RangeEstimatorTest, CreateValidatesOptions) {
  RangeEstimatorOptions o;
  for (double p : {0.0, -1.0, 100.01, std::nan("")}) {
    o.percentile = p;
    absl::StatusOr<RangeEstimator> e = RangeEstimator::Create(o);
    ASSERT_FALSE(e.ok()) << p;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(e.status().message(), HasSubstr("percentile"));
  }
  o.percentile = 100;
  EXPECT_TRUE(RangeEstimator::Create(o).ok());
  o.num_bins = 255;
  absl::StatusOr<RangeEstimator> e = RangeEstimator::Create(o);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("num_bins"));
  o.num_bins = 256;
  EXPECT_TRUE(RangeEstimator::Create(o).ok());
}

TEST(RangeEstimatorTest, MinMaxIsExactOverBatches) {
  RangeEstimator e = Make(CalibrationMethod::kMinMax);
  e.Observe(std::vector<float>{0.5f, 2.0f});
  e.Observe(std::vector<float>{-1.5f, 3.25f, 1.0f});
  CalibratedRange r = FinishOk(e);
  EXPECT_EQ(r.lo, -1.5f);
  EXPECT_EQ(r.hi, 3.25f);
  EXPECT_EQ(r.observed_min, -1.5f);
  EXPECT_EQ(r.observed_max, 3.25f);
  EXPECT_EQ(r.clipped_fraction, 0.0);
  EXPECT_EQ(r.count, 5);

  // Zero is always inside: positive data starts at 0, negative data ends at 0.
  RangeEstimator pos = Make(CalibrationMethod::kMinMax);
  pos.Observe(std::vector<float>{1.0f, 2.0f, 3.0f});
  r = FinishOk(pos);
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_EQ(r.hi, 3.0f);
  EXPECT_EQ(r.observed_min, 1.0f);
  RangeEstimator neg = Make(CalibrationMethod::kMinMax);
  neg.Observe(std::vector<float>{-4.0f, -2.0f});
  r = FinishOk(neg);
  EXPECT_EQ(r.lo, -4.0f);
  EXPECT_EQ(r.hi, 0.0f);
}

TEST(RangeEstimatorTest, NonFiniteValuesAreCountedAndIgnored) {
  const float inf = std::numeric_limits<float>::infinity();
  RangeEstimator e = Make(CalibrationMethod::kMinMax);
  e.Observe(std::vector<float>{1.0f, std::nanf(""), inf, -inf, -2.0f});
  EXPECT_EQ(e.non_finite_count(), 3);
  CalibratedRange r = FinishOk(e);
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.lo, -2.0f);
  EXPECT_EQ(r.hi, 1.0f);

  RangeEstimator empty = Make(CalibrationMethod::kEntropy);
  EXPECT_EQ(empty.Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  empty.Observe(std::vector<float>{std::nanf(""), inf});
  absl::StatusOr<CalibratedRange> failed = empty.Finish();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(failed.status().message(), HasSubstr("2 non-finite"));
}

TEST(RangeEstimatorTest, ConstantZeroGetsATinyRangeWithPositiveScale) {
  for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                              CalibrationMethod::kEntropy, CalibrationMethod::kMse}) {
    RangeEstimator e = Make(m);
    e.Observe(std::vector<float>(100, 0.0f));
    CalibratedRange r = FinishOk(e);
    EXPECT_LT(r.lo, 0.0f) << CalibrationMethodName(m);
    EXPECT_GT(r.hi, 0.0f);
    EXPECT_EQ(r.lo, -r.hi);
    EXPECT_LE(r.hi, 1e-3f);
    QuantParams q = U8ParamsForRange(r);
    EXPECT_GT(q.scales[0], 0.0f);
    EXPECT_TRUE(std::isfinite(q.scales[0]));
    EXPECT_EQ(q.zero_points[0], 128);  // round(127.5), half to even
  }
}

TEST(RangeEstimatorTest, PercentileOfUnsignedDataClipsOnlyTheTop) {
  // 1, 2, ..., 10000: 99 % of them are <= 9900.
  RangeEstimator e = Make(CalibrationMethod::kPercentile, 99.0);
  e.Observe(Evenly(10000, 1, 1));
  CalibratedRange r = FinishOk(e);
  const double bin = 10000.0 / 2046;  // histogram over [0, 10000]
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_NEAR(r.hi, 9900.0, bin);
  EXPECT_NEAR(r.clipped_fraction, 0.01, bin / 10000);

  RangeEstimator all = Make(CalibrationMethod::kPercentile, 100.0);
  all.Observe(Evenly(10000, 1, 1));
  r = FinishOk(all);
  EXPECT_EQ(r.hi, 10000.0f);
  EXPECT_EQ(r.clipped_fraction, 0.0);
}

TEST(RangeEstimatorTest, PercentileOfSignedDataClipsEachTail) {
  // -4999.5, ..., 4999.5: keeping 98 % clips 1 % = 100 values on each side, i.e. [-4899.5, 4899.5]
  // up to interpolation inside a bin.
  RangeEstimator e = Make(CalibrationMethod::kPercentile, 98.0);
  e.Observe(Evenly(10000, -4999.5, 1));
  CalibratedRange r = FinishOk(e);
  const double bin = 9999.0 / 2046;
  EXPECT_NEAR(r.lo, -4900.0, bin);
  EXPECT_NEAR(r.hi, 4900.0, bin);
  EXPECT_NEAR(r.clipped_fraction, 0.02, 2 * bin / 10000);

  // Mostly positive data with one negative value: the low quantile is positive, and the range
  // still has to contain 0.
  RangeEstimator skew = Make(CalibrationMethod::kPercentile, 99.0);
  std::vector<float> v = Evenly(999, 1.0, 0.001);
  v.push_back(-1.0f);
  skew.Observe(v);
  r = FinishOk(skew);
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_NEAR(r.hi, 1.0 + 0.995 * 0.998, 2.0 * 3.0 / 2046);
  EXPECT_EQ(r.observed_min, -1.0f);
}

TEST(RangeEstimatorTest, WideningKeepsEveryCountInTheRightBin) {
  std::mt19937 rng(7);
  RangeEstimator e = Make(CalibrationMethod::kMinMax, 99.99, 512);
  std::vector<float> all;
  // Zeros first (no histogram yet), then batches that push the range out on both sides.
  const std::vector<std::pair<float, float>> ranges = {{0, 0},    {-1, 2},    {-0.5f, 10}, {-30, 5},
                                                       {-2, 400}, {-1e4f, 1}, {-3, 3}};
  double first_width = 0;
  for (auto [lo, hi] : ranges) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> batch(3000);
    for (float& x : batch) x = lo == hi ? lo : u(rng);
    e.Observe(batch);
    all.insert(all.end(), batch.begin(), batch.end());
    if (first_width == 0) first_width = RangeEstimatorPeer::BinWidth(e);
  }
  const std::vector<int64_t>& hist = RangeEstimatorPeer::Hist(e);
  const double w = RangeEstimatorPeer::BinWidth(e);
  const int64_t z = RangeEstimatorPeer::ZeroBin(e);
  ASSERT_EQ(hist.size(), 512u);
  EXPECT_GT(w, 100 * first_width);  // it did widen, several times
  // Every value inside the final layout, and the same histogram as binning everything at once.
  std::vector<int64_t> direct(hist.size(), 0);
  for (float x : all) {
    const int64_t i = z + static_cast<int64_t>(std::floor(static_cast<double>(x) / w));
    ASSERT_GE(i, 0);
    ASSERT_LT(i, 512);
    ++direct[i];
  }
  EXPECT_EQ(hist, direct);

  // The same data in one batch: identical extremes; quantiles agree within the coarser bin.
  RangeEstimator once = Make(CalibrationMethod::kPercentile, 99.0, 512);
  RangeEstimator batched = Make(CalibrationMethod::kPercentile, 99.0, 512);
  once.Observe(all);
  for (size_t i = 0; i < all.size(); i += 3000) {
    batched.Observe(absl::MakeConstSpan(all).subspan(i, 3000));
  }
  CalibratedRange a = FinishOk(once), b = FinishOk(batched);
  EXPECT_EQ(a.observed_min, b.observed_min);
  EXPECT_EQ(a.observed_max, b.observed_max);
  EXPECT_EQ(a.count, b.count);
  EXPECT_NEAR(a.lo, b.lo, w);
  EXPECT_NEAR(a.hi, b.hi, w);
}

TEST(RangeEstimatorTest, EntropyClipsAHeavyOutlierButKeepsAUniformRange) {
  RangeEstimator uniform = Make(CalibrationMethod::kEntropy);
  uniform.Observe(Evenly(100000, 0, 1e-5));  // [0, 1)
  CalibratedRange r = FinishOk(uniform);
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_GE(r.hi, 0.99 * r.observed_max);

  RangeEstimator signed_uniform = Make(CalibrationMethod::kEntropy);
  signed_uniform.Observe(Evenly(100000, -1, 2e-5));  // [-1, 1)
  r = FinishOk(signed_uniform);
  EXPECT_LE(r.lo, -0.99f);
  EXPECT_GE(r.hi, 0.99f);

  // Data away from 0 ([0.3, 0.5)): a threshold below all of it puts everything in one bin, where
  // P and a normalized Q agree (KL 0); Q is not renormalized, so clipping is paid for.
  RangeEstimator shifted = Make(CalibrationMethod::kEntropy);
  shifted.Observe(Evenly(100000, 0.3, 2e-6));
  r = FinishOk(shifted);
  EXPECT_GE(r.hi, 0.49f);
  EXPECT_LT(r.clipped_fraction, 0.01);

  // ReLU-like: half exact zeros, half uniform in (0, 1]. The zeros are exact in any range and
  // must not pull the threshold down (smeared over merged bins they would dominate KL).
  RangeEstimator relu = Make(CalibrationMethod::kEntropy);
  std::vector<float> half_zero(100000, 0.0f);
  const std::vector<float> positive = Evenly(100000, 1e-5, 1e-5);
  half_zero.insert(half_zero.end(), positive.begin(), positive.end());
  relu.Observe(half_zero);
  r = FinishOk(relu);
  EXPECT_GE(r.hi, 0.99f);

  // The bulk in [0, 1) and one value at 1000: with 2046 bins over [0, 1000] the bulk fills the
  // first 3 bins, and the best threshold keeps the fewest bins allowed (256 levels): 256 bins.
  RangeEstimator outlier = Make(CalibrationMethod::kEntropy);
  std::vector<float> v = Evenly(100000, 0, 1e-5);
  v.push_back(1000.0f);
  outlier.Observe(v);
  r = FinishOk(outlier);
  EXPECT_NEAR(r.hi, 256 * 1000.0 / 2046, 1e-3);
  EXPECT_NEAR(r.clipped_fraction, 1.0 / 100001, 1e-9);

  // Signed: symmetric threshold from |x|, then clamped to the observed extremes.
  RangeEstimator signed_outlier = Make(CalibrationMethod::kEntropy);
  v = Evenly(100000, -1, 2e-5);
  v.push_back(1000.0f);
  signed_outlier.Observe(v);
  r = FinishOk(signed_outlier);
  EXPECT_EQ(r.lo, -1.0f);
  EXPECT_GT(r.hi, 1.0f);
  EXPECT_LT(r.hi, 200.0f);
}

TEST(RangeEstimatorTest, MseMatchesTheClosedFormOptimum) {
  // n values uniform in [0, 1) and one at L. For a range [0, b] with 1 <= b <= L the expected
  // error is  n (b / 255)^2 / 12 + (L - b)^2,  minimal at  b = L / (1 + n / (12 * 255^2)).
  const int n = 100000;
  const double l = 1000;
  RangeEstimator e = Make(CalibrationMethod::kMse);
  std::vector<float> v = Evenly(n, 1e-5, 1e-5);  // no exact zero (zeros cost nothing)
  v.push_back(static_cast<float>(l));
  e.Observe(v);
  CalibratedRange r = FinishOk(e);
  const double expected = l / (1 + n / (12.0 * 255 * 255));
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_NEAR(r.hi, expected, 1000.0 / 2046);  // candidates are bin edges
  EXPECT_LT(r.hi, l);
  EXPECT_NEAR(r.clipped_fraction, 1.0 / (n + 1), 1e-9);

  // Uniform alone: clipping [b, 1] costs n (1 - b)^3 / 3 against a noise gain; the optimum is
  // 1 - b ~ sqrt(2 / (12 * 255^2)) ~ 0.0016: the range stays essentially full.
  RangeEstimator uniform = Make(CalibrationMethod::kMse);
  uniform.Observe(Evenly(n, -1, 2e-5));  // [-1, 1)
  r = FinishOk(uniform);
  EXPECT_LE(r.lo, -0.995f);
  EXPECT_GE(r.hi, 0.995f);
  EXPECT_LT(r.clipped_fraction, 0.005);
}

TEST(U8ParamsForRangeTest, ScaleAndZeroPoint) {
  struct Case {
    float lo, hi, scale;
    int zp;
  };
  for (const Case& c :
       {Case{-1, 1, 2.0f / 255, 128}, Case{0, 2.55f, 0.01f, 0}, Case{-2.55f, 0, 0.01f, 255},
        Case{-0.5f, 2.05f, 0.01f, 50}, Case{-0.1f, 25.4f, 0.1f, 1}}) {
    CalibratedRange r;
    r.lo = c.lo;
    r.hi = c.hi;
    QuantParams q = U8ParamsForRange(r);
    EXPECT_EQ(q.dtype, DType::kU8);
    ASSERT_EQ(q.scales.size(), 1u);
    ASSERT_EQ(q.zero_points.size(), 1u);
    EXPECT_EQ(q.axis, -1);
    EXPECT_FLOAT_EQ(q.scales[0], c.scale) << c.lo << " " << c.hi;
    EXPECT_EQ(q.zero_points[0], c.zp) << c.lo << " " << c.hi;
    EXPECT_TRUE(ValidateQuantParams("range", q).ok());
  }
}

}  // namespace
}  // namespace octet
