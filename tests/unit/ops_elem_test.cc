// Element-wise, binary and reduction operators on cases the ONNX node tests do not reach:
// blocked layouts produced by a convolution, broadcasting edge cases, integer division by zero,
// runtime Clip bounds, opset-dependent Softmax. References are computed here by hand.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/model.h"
#include "core/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

Tensor Floats(const Shape& shape, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data_as<float>()[i] = lo + (hi - lo) * static_cast<float>(s >> 8) / 16777216.0f;
  }
  return t;
}

template <typename T>
Tensor Typed(DType dt, const Shape& shape, const std::vector<T>& v) {
  Tensor t = Tensor::Zeros(dt, shape);
  for (size_t i = 0; i < v.size(); ++i) t.data_as<T>()[i] = v[i];
  return t;
}

// Runs a model with one context; fails the test on any error.
std::vector<Tensor> RunModel(const OnnxBuilder& b, const std::vector<Tensor>& inputs) {
  auto model = Model::LoadFromBytes(b.Bytes());
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto ctx = (*model)->CreateContext();
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  if (!ctx.ok()) return {};
  auto out = (*ctx)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  return *std::move(out);
}

void ExpectNear(const Tensor& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.dtype(), DType::kF32);
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got.data_as<float>()[i], want[i], tol + 1e-5f * std::fabs(want[i])) << "at " << i;
  }
}

// Plain reference for a 3x3, pad 1, stride 1 NCHW convolution without bias.
std::vector<float> RefConv3x3(const Tensor& x, const Tensor& w) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), m = w.dim(0);
  std::vector<float> y(n * m * h * wd, 0.0f);
  const float* xp = x.data_as<float>();
  const float* wp = w.data_as<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j) {
          double acc = 0;
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t yi = i + ki - 1, xj = j + kj - 1;
                if (yi < 0 || yi >= h || xj < 0 || xj >= wd) continue;
                acc += xp[((b * c + ci) * h + yi) * wd + xj] * wp[((o * c + ci) * 3 + ki) * 3 + kj];
              }
          y[((b * m + o) * h + i) * wd + j] = static_cast<float>(acc);
        }
  return y;
}

TEST(OpsElemTest, EltwiseAndBinaryKeepTheConvolutionLayout) {
  OnnxBuilder b;
  const Shape xs = {2, 3, 8, 8};
  b.Input("x", xs);
  Tensor w1 = Floats({16, 3, 3, 3}, 1, -0.5f, 0.5f), w2 = Floats({16, 3, 3, 3}, 2, -0.5f, 0.5f);
  Tensor bias = Floats({1, 16, 1, 1}, 3);
  b.Initializer("w1", w1);
  b.Initializer("w2", w2);
  b.Initializer("bias", bias);
  for (const char* name : {"c1", "c2"}) {
    b.Node("Conv", {"x", name == std::string("c1") ? "w1" : "w2"}, {name})
        .Ints("pads", {1, 1, 1, 1})
        .Ints("kernel_shape", {3, 3});
  }
  b.Node("Elu", {"c1"}, {"elu"});          // eltwise, same layout
  b.Node("Mul", {"c1", "c2"}, {"mul"});    // same-shape binary
  b.Node("Sub", {"c2", "bias"}, {"sub"});  // per-channel broadcast
  b.Node("Floor", {"c1"}, {"floor"});      // loop path: needs plain input
  for (const char* o : {"elu", "mul", "sub", "floor"}) b.Output(o);
  Tensor x = Floats(xs, 4);
  auto out = RunModel(b, {x});
  ASSERT_EQ(out.size(), 4u);
  const std::vector<float> c1 = RefConv3x3(x, w1), c2 = RefConv3x3(x, w2);
  std::vector<float> elu(c1.size()), mul(c1.size()), sub(c1.size()), floor_v(c1.size());
  for (size_t i = 0; i < c1.size(); ++i) {
    const int64_t ch = (i / 64) % 16;
    elu[i] = c1[i] > 0 ? c1[i] : std::expm1(c1[i]);
    mul[i] = c1[i] * c2[i];
    sub[i] = c2[i] - bias.data_as<float>()[ch];
    floor_v[i] = std::floor(c1[i]);
  }
  ExpectNear(out[0], elu, 1e-4f);
  ExpectNear(out[1], mul, 1e-4f);
  ExpectNear(out[2], sub, 1e-4f);
  // floor is discontinuous: only check values not within rounding distance of an integer.
  for (size_t i = 0; i < c1.size(); ++i) {
    if (std::fabs(c1[i] - std::round(c1[i])) > 1e-3f) {
      EXPECT_EQ(out[3].data_as<float>()[i], floor_v[i]) << i;
    }
  }

  // The eltwise and same-shape binary outputs keep the convolution's layout (no reorder).
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok());
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  auto plan = (*ctx)->PlanFor({xs});
  ASSERT_TRUE(plan.ok()) << plan.status();
  const PlanValue* conv = (*plan)->FindValue("c1");
  ASSERT_NE(conv, nullptr);
  for (const char* name : {"elu", "mul"}) {
    // Graph outputs get a plain copy named "<name>@plain"; FindValue(name) is the op's own output.
    const PlanValue* v = (*plan)->FindValue(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_TRUE(v->md == conv->md) << name << " is not in the convolution's layout:\n"
                                   << (*plan)->Describe();
  }
  int reorders_of_c1 = 0;
  for (const auto& step : (*plan)->steps()) {
    if (step.op_type == "Reorder" && step.inputs[0] == "c1") ++reorders_of_c1;
  }
  // Only Floor (a plain loop) may need c1 in plain layout.
  EXPECT_LE(reorders_of_c1, 1) << (*plan)->Describe();
}

TEST(OpsElemTest, BroadcastScalarsAndRankMismatch) {
  OnnxBuilder b;
  b.Input("s", {});
  b.Input("m", {2, 3});
  b.Input("a", {3, 1, 5});
  b.Input("c", {4, 1});
  b.Node("Add", {"s", "m"}, {"s_plus_m"});      // scalar first: src0 broadcasts
  b.Node("Sub", {"s", "m"}, {"s_minus_m"});     // non-commutative with broadcast src0: loop
  b.Node("Mul", {"s", "s"}, {"s_times_s"});     // rank 0 result
  b.Node("Div", {"a", "c"}, {"a_div_c"});       // [3,1,5] / [4,1] -> [3,4,5]
  b.Node("ReduceMax", {"m"}, {"m11"});          // [1, 1]
  b.Node("Add", {"m11", "s"}, {"m11_plus_s"});  // scalar vs [1,1]: equal descriptors, not shapes
  for (const char* o : {"s_plus_m", "s_minus_m", "s_times_s", "a_div_c", "m11_plus_s"}) {
    b.Output(o);
  }
  Tensor s = Tensor::FromFloats({}, {1.5f});
  Tensor m = Floats({2, 3}, 5), a = Floats({3, 1, 5}, 6), c = Floats({4, 1}, 7, 0.5f, 2.0f);
  auto out = RunModel(b, {s, m, a, c});
  ASSERT_EQ(out.size(), 5u);
  std::vector<float> plus, minus;
  for (int i = 0; i < 6; ++i) {
    plus.push_back(1.5f + m.data_as<float>()[i]);
    minus.push_back(1.5f - m.data_as<float>()[i]);
  }
  EXPECT_EQ(out[0].shape(), (Shape{2, 3}));
  ExpectNear(out[0], plus);
  ExpectNear(out[1], minus);
  EXPECT_EQ(out[2].shape(), Shape{});
  ExpectNear(out[2], {2.25f});
  EXPECT_EQ(out[3].shape(), (Shape{3, 4, 5}));
  std::vector<float> div;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k)
        div.push_back(a.data_as<float>()[i * 5 + k] / c.data_as<float>()[j]);
  ExpectNear(out[3], div);
  EXPECT_EQ(out[4].shape(), (Shape{1, 1}));
  ExpectNear(out[4], {*std::max_element(m.data_as<float>(), m.data_as<float>() + 6) + 1.5f});
}

TEST(OpsElemTest, IntegerBroadcastAndVariadic) {
  OnnxBuilder b;
  b.Input("a", {2, 1, 3}, DType::kS64);
  b.Input("b", {4, 1}, DType::kS64);
  b.Input("x", {3});
  b.Input("y", {2, 3});
  b.Input("z", {2, 1});
  b.Node("Add", {"a", "b"}, {"sum"});
  b.Node("Max", {"x", "y", "z"}, {"max"});  // only input 1 has the full shape
  b.Node("Mean", {"x", "y", "z"}, {"mean"});
  b.Node("Min", {"z", "x"}, {"min"});  // neither has the output shape [2,3]
  for (const char* o : {"max", "mean", "min"}) b.Output(o);
  b.Output("sum", DType::kS64);
  Tensor a = Typed<int64_t>(DType::kS64, {2, 1, 3}, {1, 2, 3, 10, 20, 30});
  Tensor bb = Typed<int64_t>(DType::kS64, {4, 1}, {100, 200, 300, int64_t{1} << 40});
  Tensor x = Tensor::FromFloats({3}, {1, 5, -3});
  Tensor y = Tensor::FromFloats({2, 3}, {0, 6, -4, 2, 2, 2});
  Tensor z = Tensor::FromFloats({2, 1}, {0.5f, 3});
  auto out = RunModel(b, {a, bb, x, y, z});
  ASSERT_EQ(out.size(), 4u);
  ExpectNear(out[0], {1, 6, 0.5f, 3, 5, 3});
  ExpectNear(out[1], {1.5f / 3, 11.5f / 3, -6.5f / 3, 6.0f / 3, 10.0f / 3, 2.0f / 3});
  ExpectNear(out[2], {0.5f, 0.5f, -3, 1, 3, -3});
  ASSERT_EQ(out[3].shape(), (Shape{2, 4, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(out[3].data_as<int64_t>()[(i * 4 + j) * 3 + k],
                  a.data_as<int64_t>()[i * 3 + k] + bb.data_as<int64_t>()[j]);
      }
}

TEST(OpsElemTest, IntegerDivisionAndModuloByZeroAreDefined) {
  OnnxBuilder b;
  b.Input("a", {6}, DType::kS32);
  b.Input("b", {6}, DType::kS32);
  b.Node("Div", {"a", "b"}, {"div"});
  b.Node("Mod", {"a", "b"}, {"mod"});
  b.Node("Mod", {"a", "b"}, {"fmod"}).Int("fmod", 1);
  for (const char* o : {"div", "mod", "fmod"}) b.Output(o, DType::kS32);
  const int32_t kMin = std::numeric_limits<int32_t>::min();
  Tensor a = Typed<int32_t>(DType::kS32, {6}, {7, -7, 5, kMin, -7, 0});
  Tensor d = Typed<int32_t>(DType::kS32, {6}, {2, 2, 0, -1, -3, 0});
  auto out = RunModel(b, {a, d});
  ASSERT_EQ(out.size(), 3u);
  // Division truncates toward zero; x / 0 = 0; INT_MIN / -1 wraps.
  const std::vector<int32_t> div = {3, -3, 0, kMin, 2, 0};
  // Mod follows the divisor's sign (Python), fmod the dividend's (C); x % 0 = 0.
  const std::vector<int32_t> mod = {1, 1, 0, 0, -1, 0};
  const std::vector<int32_t> fmod = {1, -1, 0, 0, -1, 0};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(out[0].data_as<int32_t>()[i], div[i]) << i;
    EXPECT_EQ(out[1].data_as<int32_t>()[i], mod[i]) << i;
    EXPECT_EQ(out[2].data_as<int32_t>()[i], fmod[i]) << i;
  }
}

TEST(OpsElemTest, IncompatibleShapesAreRefused) {
  OnnxBuilder b;
  b.Input("a", {2, 3});
  b.Input("b", {4});
  b.Node("Add", {"a", "b"}, {"y"});
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  if (!model.ok()) {
    EXPECT_THAT(std::string(model.status().message()), testing::HasSubstr("broadcast"));
    return;
  }
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->Run({Tensor::Zeros(DType::kF32, {2, 3}), Tensor::Zeros(DType::kF32, {4})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), testing::HasSubstr("cannot be broadcast"));
}

TEST(OpsElemTest, WhereBroadcastsAllThreeInputs) {
  OnnxBuilder b;
  b.Input("c", {2, 1}, DType::kBool);
  b.Input("x", {1, 3}, DType::kS32);
  b.Input("y", {}, DType::kS32);
  b.Node("Where", {"c", "x", "y"}, {"w"});
  b.Output("w", DType::kS32);
  auto out = RunModel(
      b, {Typed<uint8_t>(DType::kBool, {2, 1}, {1, 0}),
          Typed<int32_t>(DType::kS32, {1, 3}, {1, 2, 3}), Typed<int32_t>(DType::kS32, {}, {-9})});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  const std::vector<int32_t> want = {1, 2, 3, -9, -9, -9};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0].data_as<int32_t>()[i], want[i]);
}

TEST(OpsElemTest, ClipWithRuntimeBoundsAndCrossedBounds) {
  OnnxBuilder b(13);
  b.Input("x", {5});
  b.Input("lo", {});
  b.Input("hi", {});
  Tensor lo_c = Tensor::FromFloats({}, {1.0f}), hi_c = Tensor::FromFloats({}, {-1.0f});
  b.Initializer("lo_c", lo_c);
  b.Initializer("hi_c", hi_c);
  b.Node("Clip", {"x", "lo", "hi"}, {"runtime"});
  b.Node("Clip", {"x", "lo_c", "hi_c"}, {"crossed"});  // lo > hi: ONNX gives hi everywhere
  b.Node("Clip", {"x", "", "hi"}, {"max_only"});
  for (const char* o : {"runtime", "crossed", "max_only"}) b.Output(o);
  Tensor x = Tensor::FromFloats({5}, {-3, -0.5f, 0, 0.5f, 3});
  auto out = RunModel(b, {x, Tensor::FromFloats({}, {-1}), Tensor::FromFloats({}, {0.25f})});
  ASSERT_EQ(out.size(), 3u);
  ExpectNear(out[0], {-1, -0.5f, 0, 0.25f, 0.25f});
  ExpectNear(out[1], {-1, -1, -1, -1, -1});
  ExpectNear(out[2], {-3, -0.5f, 0, 0.25f, 0.25f});
}

TEST(OpsElemTest, SoftmaxAxisSemanticsDependOnOpset) {
  const Shape shape = {2, 3, 4};
  Tensor x = Floats(shape, 9, -3.0f, 3.0f);
  const float* p = x.data_as<float>();
  for (int64_t opset : {11, 13}) {
    for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) {
      OnnxBuilder b(opset);
      b.Input("x", shape);
      b.Node(op, {"x"}, {"y"}).Int("axis", 1);
      b.Output("y");
      auto out = RunModel(b, {x});
      ASSERT_EQ(out.size(), 1u);
      // opset 11: rows of 12 (axes 1 and 2 together); opset 13: 3 values along axis 1, stride 4.
      const int64_t groups = opset < 13 ? 2 : 8, len = opset < 13 ? 12 : 3,
                    stride = opset < 13 ? 1 : 4;
      std::vector<float> want(24);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t base = opset < 13 ? g * 12 : (g / 4) * 12 + g % 4;
        double mx = -1e30, sum = 0;
        int64_t arg = 0;
        for (int64_t k = 0; k < len; ++k) {
          if (p[base + k * stride] > mx) {
            mx = p[base + k * stride];
            arg = k;
          }
        }
        for (int64_t k = 0; k < len; ++k) sum += std::exp(p[base + k * stride] - mx);
        for (int64_t k = 0; k < len; ++k) {
          const double z = p[base + k * stride] - mx;
          want[base + k * stride] = std::string(op) == "Softmax"      ? std::exp(z) / sum
                                    : std::string(op) == "LogSoftmax" ? z - std::log(sum)
                                                                      : (k == arg ? 1 : 0);
        }
      }
      SCOPED_TRACE(std::string(op) + " opset " + std::to_string(opset));
      ExpectNear(out[0], want, 1e-5f);
    }
  }
}

TEST(OpsElemTest, ReductionsWithAndWithoutKeepdims) {
  OnnxBuilder b(13);
  const Shape shape = {2, 3, 4};
  b.Input("x", shape);
  b.Input("i", shape, DType::kS64);
  Tensor axes = Tensor::FromInt64s({1}, {-2});
  b.Initializer("axes", axes);
  b.Node("ReduceMean", {"x"}, {"mean"}).Ints("axes", {1}).Int("keepdims", 0);
  b.Node("ReduceSum", {"i", "axes"}, {"isum"});
  b.Node("ReduceLogSumExp", {"x"}, {"lse"}).Ints("axes", {0, 2});
  b.Node("ArgMax", {"x"}, {"argmax"}).Int("axis", 2).Int("keepdims", 0);
  b.Output("mean");
  b.Output("isum", DType::kS64);
  b.Output("lse");
  b.Output("argmax", DType::kS64);
  // Large values: LogSumExp must subtract the max to stay finite.
  Tensor x = Floats(shape, 11, 80.0f, 100.0f);
  Tensor iv = Tensor::Zeros(DType::kS64, shape);
  for (int k = 0; k < 24; ++k) iv.data_as<int64_t>()[k] = (int64_t{1} << 50) + k;
  auto out = RunModel(b, {x, iv});
  ASSERT_EQ(out.size(), 4u);
  const float* p = x.data_as<float>();
  ASSERT_EQ(out[0].shape(), (Shape{2, 4}));
  ASSERT_EQ(out[1].shape(), (Shape{2, 1, 4}));
  ASSERT_EQ(out[2].shape(), (Shape{1, 3, 1}));
  ASSERT_EQ(out[3].shape(), (Shape{2, 3}));
  for (int n = 0; n < 2; ++n)
    for (int w = 0; w < 4; ++w) {
      double s = 0;
      int64_t is = 0;
      for (int c = 0; c < 3; ++c) {
        s += p[n * 12 + c * 4 + w];
        is += iv.data_as<int64_t>()[n * 12 + c * 4 + w];
      }
      EXPECT_NEAR(out[0].data_as<float>()[n * 4 + w], s / 3, 1e-4);
      EXPECT_EQ(out[1].data_as<int64_t>()[n * 4 + w], is);  // exact in int64
    }
  for (int c = 0; c < 3; ++c) {
    double mx = -1e30, s = 0;
    for (int n = 0; n < 2; ++n)
      for (int w = 0; w < 4; ++w) mx = std::max<double>(mx, p[n * 12 + c * 4 + w]);
    for (int n = 0; n < 2; ++n)
      for (int w = 0; w < 4; ++w) s += std::exp(p[n * 12 + c * 4 + w] - mx);
    EXPECT_NEAR(out[2].data_as<float>()[c], mx + std::log(s), 1e-3);
  }
  for (int r = 0; r < 6; ++r) {
    int64_t best = 0;
    for (int w = 1; w < 4; ++w) best = p[r * 4 + w] > p[r * 4 + best] ? w : best;
    EXPECT_EQ(out[3].data_as<int64_t>()[r], best);
  }
}

TEST(OpsElemTest, PowFastPathsAndIntegerPow) {
  OnnxBuilder b(13);
  b.Input("x", {5});
  b.Input("i", {4}, DType::kS32);
  b.Input("e", {4}, DType::kS32);
  b.Initializer("two", Tensor::FromFloats({}, {2.0f}));
  b.Initializer("three", Tensor::FromFloats({1}, {3.0f}));
  b.Node("Pow", {"x", "two"}, {"sq"});
  b.Node("Pow", {"x", "three"}, {"cube"});
  b.Node("Pow", {"i", "e"}, {"ipow"});
  b.Output("sq");
  b.Output("cube");
  b.Output("ipow", DType::kS32);
  Tensor x = Tensor::FromFloats({5}, {-3, -0.5f, 0, 1.5f, 2});
  auto out = RunModel(b, {x, Typed<int32_t>(DType::kS32, {4}, {2, -3, 5, -1}),
                          Typed<int32_t>(DType::kS32, {4}, {10, 3, -1, -3})});
  ASSERT_EQ(out.size(), 3u);
  ExpectNear(out[0], {9, 0.25f, 0, 2.25f, 4});
  ExpectNear(out[1], {-27, -0.125f, 0, 3.375f, 8});
  const std::vector<int32_t> want = {1024, -27, 0, -1};
  for (int k = 0; k < 4; ++k) EXPECT_EQ(out[2].data_as<int32_t>()[k], want[k]);
}

TEST(OpsElemTest, LegacyBroadcastAttributeAlignsAtAxis) {
  OnnxBuilder b(6);
  b.Input("a", {2, 3, 4});
  b.Input("b", {3});
  b.Node("Add", {"a", "b"}, {"y"}).Int("broadcast", 1).Int("axis", 1);
  b.Output("y");
  Tensor a = Floats({2, 3, 4}, 12), bv = Tensor::FromFloats({3}, {10, 20, 30});
  auto out = RunModel(b, {a, bv});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> want(24);
  for (int k = 0; k < 24; ++k) want[k] = a.data_as<float>()[k] + bv.data_as<float>()[(k / 4) % 3];
  ExpectNear(out[0], want);
}

TEST(OpsElemTest, LargeBroadcastRunsInParallelChunks) {
  // Big enough for the threaded loop path (integers always use loops): [64,1,513] + [1,67,1].
  OnnxBuilder b(13);
  b.Input("a", {64, 1, 513}, DType::kS32);
  b.Input("b", {1, 67, 1}, DType::kS32);
  b.Node("Sub", {"a", "b"}, {"y"});
  b.Output("y", DType::kS32);
  Tensor a = Tensor::Zeros(DType::kS32, {64, 1, 513}), bv = Tensor::Zeros(DType::kS32, {1, 67, 1});
  for (int64_t k = 0; k < a.num_elements(); ++k)
    a.data_as<int32_t>()[k] = static_cast<int32_t>(k * 7);
  for (int64_t k = 0; k < bv.num_elements(); ++k)
    bv.data_as<int32_t>()[k] = static_cast<int32_t>(k * k);
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  ContextOptions opts;
  opts.num_threads = 2;
  auto ctx = (*model)->CreateContext(opts);
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->Run({a, bv});
  ASSERT_TRUE(out.ok()) << out.status();
  const int32_t* y = (*out)[0].data_as<int32_t>();
  for (int64_t i = 0; i < 64; ++i)
    for (int64_t j = 0; j < 67; ++j)
      for (int64_t k = 0; k < 513; ++k) {
        ASSERT_EQ(y[(i * 67 + j) * 513 + k],
                  a.data_as<int32_t>()[i * 513 + k] - bv.data_as<int32_t>()[j]);
      }
}

// The three orders exporters write x * 0.5 * (1 + erf(x / sqrt 2)) in; each runs unfused (no
// graph passes) and fused into one Gelu, and both match the formula.
TEST(OpsElemTest, ErfGeluPatternRunsUnfusedAndFused) {
  const Shape shape = {2, 3, 5};
  Tensor x = Floats(shape, 13, -4.0f, 4.0f);
  std::vector<float> want;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double v = x.data_as<float>()[i];
    want.push_back(static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))));
  }
  for (int variant = 0; variant < 3; ++variant) {
    OnnxBuilder b(13);
    b.Input("x", shape);
    b.Initializer("sqrt2", Tensor::FromFloats({}, {1.4142135381698608f}));
    b.Initializer("inv_sqrt2", Tensor::FromFloats({}, {0.7071067690849304f}));
    b.Initializer("one", Tensor::FromFloats({}, {1.0f}));
    b.Initializer("half", Tensor::FromFloats({}, {0.5f}));
    if (variant == 1) {
      b.Node("Mul", {"inv_sqrt2", "x"}, {"t1"});
    } else {
      b.Node("Div", {"x", "sqrt2"}, {"t1"});
    }
    b.Node("Erf", {"t1"}, {"t2"});
    b.Node("Add", {"t2", "one"}, {"t3"});
    if (variant == 0) {  // (x * (1 + erf)) * 0.5
      b.Node("Mul", {"x", "t3"}, {"t4"});
      b.Node("Mul", {"t4", "half"}, {"y"});
    } else if (variant == 1) {  // (x * 0.5) * (1 + erf)
      b.Node("Mul", {"x", "half"}, {"h"});
      b.Node("Mul", {"h", "t3"}, {"y"});
    } else {  // x * ((1 + erf) * 0.5)
      b.Node("Mul", {"t3", "half"}, {"t4"});
      b.Node("Mul", {"x", "t4"}, {"y"});
    }
    b.Output("y");
    for (bool optimize : {false, true}) {
      SCOPED_TRACE(absl::StrCat("variant ", variant, " optimize ", optimize));
      LoadOptions opts;
      opts.optimize = optimize;
      auto model = Model::LoadFromBytes(b.Bytes(), opts);
      ASSERT_TRUE(model.ok()) << model.status();
      auto ctx = (*model)->CreateContext();
      ASSERT_TRUE(ctx.ok());
      auto out = (*ctx)->Run({x});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectNear((*out)[0], want, 1e-5f);
      auto plan = (*ctx)->PlanFor({shape});
      ASSERT_TRUE(plan.ok());
      int gelu = 0, erf = 0;
      for (const auto& step : (*plan)->steps()) {
        gelu += step.op_type == "Gelu";
        erf += step.op_type == "Erf";
      }
      EXPECT_EQ(gelu, optimize ? 1 : 0) << (*plan)->Describe();
      EXPECT_EQ(erf, optimize ? 0 : 1) << (*plan)->Describe();
    }
  }
}

// A value the pattern needs is also used elsewhere: nothing may be fused away.
TEST(OpsElemTest, GeluPatternWithSharedIntermediateIsNotFused) {
  OnnxBuilder b(13);
  b.Input("x", {4});
  b.Initializer("sqrt2", Tensor::FromFloats({}, {1.4142135381698608f}));
  b.Initializer("one", Tensor::FromFloats({}, {1.0f}));
  b.Initializer("half", Tensor::FromFloats({}, {0.5f}));
  b.Node("Div", {"x", "sqrt2"}, {"t1"});
  b.Node("Erf", {"t1"}, {"t2"});
  b.Node("Add", {"t2", "one"}, {"t3"});
  b.Node("Mul", {"x", "t3"}, {"t4"});
  b.Node("Mul", {"t4", "half"}, {"y"});
  b.Output("y");
  b.Output("t2");  // erf is a graph output too
  Tensor x = Tensor::FromFloats({4}, {-1, 0, 0.5f, 2});
  auto out = RunModel(b, {x});
  ASSERT_EQ(out.size(), 2u);
  std::vector<float> y, e;
  for (float v : {-1.0f, 0.0f, 0.5f, 2.0f}) {
    e.push_back(std::erf(v / std::sqrt(2.0f)));
    y.push_back(0.5f * v * (1 + e.back()));
  }
  ExpectNear(out[0], y);
  ExpectNear(out[1], e);
}

}  // namespace
}  // namespace octet
