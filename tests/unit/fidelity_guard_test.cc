// QuantizeWithFidelityGuard on a small conv chain c1 -> Relu -> c2 -> Relu -> c3 whose middle
// layer is built to be ruined by 8-bit weights: one c2 weight is 100 (so its output channels'
// weight scale is 100/127 and every other weight rounds to 0) but it reads an input channel that
// c1's Relu always zeroes, so it does not matter in FP32. The guard must measure that, move c2
// first and stop there; its numbers are checked against independent measurements.
#include <algorithm>
#include <cmath>
#include <random>

#include "core/graph.h"
#include "core/model.h"
#include "core/quant/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor RandomTensor(const Shape& shape, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (float& x : v) x = d(rng);
  return Tensor::FromFloats(shape, v);
}

// 3x3 conv, padding 1, weights U(-k, k) with k = 1/sqrt(9 cin), bias U(-0.2, 0.2).
Tensor ConvWeights(int64_t cin, int64_t cout, uint32_t seed) {
  const float k = 1.0f / std::sqrt(static_cast<float>(cin * 9));
  return RandomTensor({cout, cin, 3, 3}, -k, k, seed);
}

void AddConv(OnnxBuilder& b, const std::string& name, const std::string& in, const std::string& out,
             Tensor w, Tensor bias) {
  b.Initializer(name + ".w", std::move(w));
  b.Initializer(name + ".b", std::move(bias));
  b.Node("Conv", {in, name + ".w", name + ".b"}, {out}, name).Ints("pads", {1, 1, 1, 1});
}

constexpr int64_t kC = 4;  // channels of every conv output

std::string ChainModel() {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  Tensor w1 = ConvWeights(3, kC, 1);
  // c1's output channel 0 is always negative (x in [-1, 1], |w| sum < 1): Relu makes it 0.
  for (int64_t i = 0; i < 27; ++i) w1.data_as<float>()[i] = 0.01f;
  AddConv(b, "c1", "x", "a", std::move(w1), Tensor::FromFloats({kC}, {-1.0f, 0.1f, -0.1f, 0.05f}));
  b.Node("Relu", {"a"}, {"ar"}, "r1");
  Tensor w2 = ConvWeights(kC, kC, 3);
  for (int64_t oc = 0; oc < kC; ++oc) w2.data_as<float>()[oc * kC * 9 + 4] = 100.0f;  // ic 0
  AddConv(b, "c2", "ar", "b", std::move(w2), RandomTensor({kC}, -0.2f, 0.2f, 4));
  b.Node("Relu", {"b"}, {"br"}, "r2");
  AddConv(b, "c3", "br", "y", ConvWeights(kC, kC, 5), RandomTensor({kC}, -0.2f, 0.2f, 6));
  b.Output("y");
  return b.Bytes();
}

// Per sample: c1 3*4*9*64 MACs, c2 and c3 4*4*9*64; weights 108, 144, 144.
constexpr double kMacs[] = {6912, 9216, 9216};
constexpr double kWeights[] = {108, 144, 144};

class FidelityGuardTest : public ::testing::Test {
 protected:
  FidelityGuardTest()
      : model_(ChainModel()),
        calibration_({{"x", RandomTensor({32, 3, 8, 8}, -1, 1, 10)}}),
        validation_({{"x", RandomTensor({24, 3, 8, 8}, -1, 1, 11)}}) {}

  absl::StatusOr<FidelityGuardResult> Guard(const FidelityGuardOptions& g) {
    return QuantizeWithFidelityGuard(model_, calibration_, options_, validation_, g);
  }
  // The cosine of the model quantized with `exclude`, measured on its own.
  double CosineExcluding(const std::vector<std::string>& exclude) {
    QuantizeOptions o = options_;
    o.exclude = exclude;
    auto q = QuantizeModel(model_, calibration_, o);
    EXPECT_TRUE(q.ok()) << q.status();
    if (!q.ok()) return -2;
    auto c = MeasureCosine(model_, q->onnx_bytes, validation_, 1, 16);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : -2;
  }

  std::string model_;
  std::map<std::string, Tensor> calibration_, validation_;
  QuantizeOptions options_;
};

// Both probe modes, each checked against its own independent measurements.
TEST_F(FidelityGuardTest, MovesTheMeasuredMostSensitiveLayerFirstAndStops) {
  const double full_int8 = CosineExcluding({});
  ASSERT_LT(full_int8, 0.99) << "the model no longer breaks 8-bit weights";
  const double c2 = CosineExcluding({"c2"});
  ASSERT_GT(c2, 0.999) << "c2 alone in FP32 should fix it";
  for (auto mode :
       {FidelityGuardOptions::Probe::kFp32Alone, FidelityGuardOptions::Probe::kInt8Alone}) {
    SCOPED_TRACE(mode == FidelityGuardOptions::Probe::kFp32Alone ? "fp32-alone" : "int8-alone");
    const bool fp32_alone = mode == FidelityGuardOptions::Probe::kFp32Alone;
    std::map<std::string, double> alone;  // cosine with the layer alone in FP32 / in INT8
    for (const char* layer : {"c1", "c2", "c3"}) {
      std::vector<std::string> exclude;
      for (const char* other : {"c1", "c2", "c3"}) {
        if ((std::string(other) == layer) == fp32_alone) exclude.push_back(other);
      }
      alone[layer] = CosineExcluding(exclude);
    }
    FidelityGuardOptions g;
    g.min_cosine = 0.999;
    g.probe = mode;
    auto r = Guard(g);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NEAR(r->initial_cosine, full_int8, 1e-9);
    // Every layer probed; the ranking is the independent measurements sorted by gain.
    ASSERT_EQ(r->ranking.size(), 3u);
    EXPECT_EQ(r->ranking[0].node, "c2");
    for (size_t i = 0; i < r->ranking.size(); ++i) {
      const LayerSensitivity& l = r->ranking[i];
      EXPECT_NEAR(l.cosine, alone[l.node], 1e-9) << l.node;
      EXPECT_NEAR(l.gain, fp32_alone ? l.cosine - full_int8 : 1 - l.cosine, 1e-12) << l.node;
      if (i > 0) {
        EXPECT_GE(r->ranking[i - 1].gain, l.gain);
      }
    }
    EXPECT_EQ(r->ranking[0].macs, 9216);
    // One move was enough: it stops there.
    EXPECT_THAT(r->moved_to_fp32, ElementsAre("c2"));
    ASSERT_EQ(r->cosine_after_move.size(), 1u);
    EXPECT_NEAR(r->cosine_after_move[0], c2, 1e-9);
    EXPECT_TRUE(r->within_budget);
    EXPECT_NEAR(r->cosine, c2, 1e-9);
    EXPECT_NEAR(r->int8_mac_fraction, (kMacs[0] + kMacs[2]) / (kMacs[0] + kMacs[1] + kMacs[2]),
                1e-12);
    EXPECT_NEAR(r->int8_weight_fraction,
                (kWeights[0] + kWeights[2]) / (kWeights[0] + kWeights[1] + kWeights[2]), 1e-12);
    EXPECT_NEAR(r->int8_macs_after_move[0], r->int8_mac_fraction, 1e-12);
    // The written model: c2 FP32 (no Q/DQ on its weights), c1 and c3 int8, and it is what the
    // guard measured.
    auto m = Model::LoadFromBytes(r->result.onnx_bytes);
    ASSERT_TRUE(m.ok()) << m.status();
    std::map<std::string, std::string> ops;
    for (const Node& n : (*m)->graph().nodes) ops[n.name] = n.op_type;
    EXPECT_EQ(ops["c1"], "QConv") << (*m)->Describe();
    EXPECT_EQ(ops["c2"], "Conv") << (*m)->Describe();
    EXPECT_EQ(ops["c3"], "QConv") << (*m)->Describe();
    auto check = MeasureCosine(model_, r->result.onnx_bytes, validation_, 1, 16);
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_NEAR(*check, r->cosine, 1e-9);
    EXPECT_FALSE(r->result.layers.empty());  // the SQNR report of the final model
  }
}

TEST_F(FidelityGuardTest, UnprobedLayersFollowInTopologicalOrder) {
  FidelityGuardOptions g;
  g.min_cosine = 0.999;
  g.max_probes = 1;  // only c1 is measured; c2 comes next by position
  auto r = Guard(g);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->ranking.size(), 1u);
  EXPECT_EQ(r->ranking[0].node, "c1");
  EXPECT_THAT(r->moved_to_fp32, ElementsAre("c1", "c2"));
  EXPECT_LT(r->cosine_after_move[0], 0.999);
  EXPECT_GE(r->cosine_after_move[1], 0.999);
  EXPECT_TRUE(r->within_budget);
  EXPECT_NEAR(r->int8_mac_fraction, kMacs[2] / (kMacs[0] + kMacs[1] + kMacs[2]), 1e-12);
}

TEST_F(FidelityGuardTest, MetTargetMovesNothingAndLimitsAreKept) {
  FidelityGuardOptions g;
  g.min_cosine = 0.01;
  auto r = Guard(g);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ranking.empty());
  EXPECT_TRUE(r->moved_to_fp32.empty());
  EXPECT_TRUE(r->within_budget);
  EXPECT_DOUBLE_EQ(r->int8_mac_fraction, 1.0);
  EXPECT_DOUBLE_EQ(r->int8_weight_fraction, 1.0);

  g.min_cosine = 0.999;
  g.max_fp32_layers = 0;
  r = Guard(g);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->moved_to_fp32.empty());
  EXPECT_FALSE(r->within_budget);
  EXPECT_LT(r->cosine, 0.99);

  // A user exclusion counts as FP32 work and is never probed.
  options_.exclude = {"c3"};
  g.max_fp32_layers = 1000;
  r = Guard(g);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const LayerSensitivity& l : r->ranking) EXPECT_NE(l.node, "c3");
  EXPECT_EQ(r->moved_to_fp32.front(), "c2");
  EXPECT_LE(r->int8_mac_fraction, kMacs[0] / (kMacs[0] + kMacs[1] + kMacs[2]) + 1e-12);
}

TEST_F(FidelityGuardTest, BadOptionsAndValidationDataAreRefused) {
  for (double bad : {0.0, -0.5, 1.5, std::nan("")}) {
    FidelityGuardOptions g;
    g.min_cosine = bad;
    auto r = Guard(g);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("min_cosine"));
  }
  FidelityGuardOptions g;
  g.max_probes = -1;
  EXPECT_EQ(Guard(g).status().code(), absl::StatusCode::kInvalidArgument);
  validation_ = {{"x", RandomTensor({4, 3, 9, 8}, -1, 1, 1)}};
  auto r = Guard({});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("validation data"));
}

}  // namespace
}  // namespace octet
