// The int8 path's layout shortcuts give the same numbers as the plain path: QuantizeLinear writing
// channels-last straight for an int8 convolution (instead of quantize + reorder), and the
// vectorized rounding of QuantizeLinear against ONNX's formula computed here.
#include <cmath>
#include <limits>

#include "core/model.h"
#include "core/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace octet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_util::QModelBuilder;
using testing_util::RandomFloats;
using testing_util::RandomInts;
using testing_util::Scalar;

std::string PlanText(ExecutionContext& ctx, const std::vector<Tensor>& in) {
  std::vector<Shape> shapes;
  for (const Tensor& t : in) shapes.push_back(t.shape());
  auto plan = ctx.PlanFor(shapes);
  return plan.ok() ? (*plan)->Describe() : std::string(plan.status().message());
}

// ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point).
int32_t OnnxQuantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  const float v = x / scale;
  if (std::isnan(v)) return lo;  // Octet's choice for NaN (ONNX leaves it undefined)
  const double r = std::nearbyint(static_cast<double>(v)) + zp;
  return static_cast<int32_t>(std::min<double>(hi, std::max<double>(lo, r)));
}

// Large enough for the parallel loop; halves, saturation, infinities, NaN and random values.
TEST(QuantizeLinearLayoutTest, VectorizedRoundingMatchesOnnx) {
  const int64_t n = 70000;
  Tensor x = RandomFloats({n}, -80.0f, 80.0f, 11);
  float* xp = x.data_as<float>();
  const float scale = 0.25f;
  for (int64_t i = 0; i < 2000; ++i) xp[i] = (static_cast<float>(i) - 1000.0f) * 0.125f;  // ties
  xp[2000] = std::numeric_limits<float>::infinity();
  xp[2001] = -std::numeric_limits<float>::infinity();
  xp[2002] = std::numeric_limits<float>::quiet_NaN();
  xp[2003] = -0.0f;
  xp[2004] = 1e30f;
  xp[2005] = -1e30f;
  for (DType t : {DType::kU8, DType::kS8}) {
    const int32_t zp = t == DType::kU8 ? 37 : -5;
    QModelBuilder b;
    b.Input("x", DType::kF32, {n});
    b.Init("s", Scalar(DType::kF32, scale));
    b.Init("z", Scalar(t, zp));
    b.Node("QuantizeLinear", {"x", "s", "z"}, {"y"}, "q");
    b.Output("y", t);
    auto model = Model::LoadFromBytes(b.Bytes());
    ASSERT_TRUE(model.ok()) << model.status();
    auto ctx = (*model)->CreateContext();
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    auto out = (*ctx)->Run({x});
    ASSERT_TRUE(out.ok()) << out.status();
    const int32_t lo = t == DType::kU8 ? 0 : -128, hi = t == DType::kU8 ? 255 : 127;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ((*out)[0].GetAsDouble(i), OnnxQuantize(xp[i], scale, zp, lo, hi))
          << DTypeName(t) << " x[" << i << "] = " << xp[i];
    }
  }
}

// x (f32) -> QuantizeLinear -> QLinearConv -> y. With `expose_q` the quantized value is also a
// graph output, which keeps QuantizeLinear on its plain path (quantize, then reorder for oneDNN).
std::string QuantizeConvModel(DType q_type, bool expose_q) {
  const int64_t c = 3, m = 16;
  QModelBuilder b;
  b.Input("x", DType::kF32, {2, c, 13, 11});
  b.Init("xs", Scalar(DType::kF32, 0.03));
  b.Init("xz", Scalar(q_type, q_type == DType::kU8 ? 119 : -9));
  b.Init("w", RandomInts(DType::kS8, {m, c, 3, 3}, -127, 127, 5));
  b.Init("ws", RandomFloats({m}, 0.001f, 0.004f, 6));
  b.Init("wz", Tensor::Zeros(DType::kS8, {m}));
  b.Init("ys", Scalar(DType::kF32, 0.02));
  b.Init("yz", Scalar(DType::kU8, 7));
  b.Init("bias", RandomInts(DType::kS32, {m}, -2000, 2000, 8));
  b.Node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"}, "q");
  auto* conv =
      b.Node("QLinearConv", {"xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"}, {"y"}, "conv");
  QModelBuilder::Ints(conv, "pads", {1, 1, 1, 1});
  QModelBuilder::Ints(conv, "strides", {2, 1});
  b.Output("y", DType::kU8);
  if (expose_q) b.Output("xq", q_type);
  return b.Bytes();
}

TEST(QuantizeLinearLayoutTest, ChannelsLastQuantizeFeedsConvolutionExactly) {
  const Tensor x = RandomFloats({2, 3, 13, 11}, -4.0f, 4.0f, 21);
  for (DType t : {DType::kU8, DType::kS8}) {
    auto fused = Model::LoadFromBytes(QuantizeConvModel(t, false));
    auto plain = Model::LoadFromBytes(QuantizeConvModel(t, true));
    ASSERT_TRUE(fused.ok()) << fused.status();
    ASSERT_TRUE(plain.ok()) << plain.status();
    auto fused_ctx = (*fused)->CreateContext();
    auto plain_ctx = (*plain)->CreateContext();
    ASSERT_TRUE(fused_ctx.ok() && plain_ctx.ok());
    const std::string fused_plan = PlanText(**fused_ctx, {x});
    const std::string plain_plan = PlanText(**plain_ctx, {x});
    EXPECT_THAT(fused_plan, HasSubstr("quantize_to_nhwc")) << fused_plan;
    if (t == DType::kU8) {
      // u8 feeds the convolution as it is: no reorder of the quantized input is left.
      EXPECT_THAT(fused_plan, Not(HasSubstr("Reorder (xq"))) << fused_plan;
    }
    EXPECT_THAT(plain_plan, Not(HasSubstr("quantize_to_nhwc"))) << plain_plan;
    auto got = (*fused_ctx)->Run({x});
    auto want = (*plain_ctx)->Run({x});
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(want.ok()) << want.status();
    const Tensor& g = (*got)[0];
    const Tensor& w = (*want)[0];
    ASSERT_EQ(g.shape(), w.shape());
    for (int64_t i = 0; i < g.num_elements(); ++i) {
      ASSERT_EQ(g.GetAsDouble(i), w.GetAsDouble(i)) << DTypeName(t) << " element " << i;
    }
    // The plain path's quantized input is ONNX's formula.
    const Tensor& q = (*want)[1];
    const int32_t zp = t == DType::kU8 ? 119 : -9;
    for (int64_t i = 0; i < q.num_elements(); ++i) {
      ASSERT_EQ(q.GetAsDouble(i),
                OnnxQuantize(x.data_as<float>()[i], 0.03f, zp, t == DType::kU8 ? 0 : -128,
                             t == DType::kU8 ? 255 : 127));
    }
  }
}

}  // namespace
}  // namespace octet
