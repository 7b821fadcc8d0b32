// Unit tests for the shape and tensor ops beyond what the ONNX node tests reach: shape-arithmetic
// folding at plan build, runtime index errors, and Resize modes against hand-computed values.
#include <cmath>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/onnx_tensor.h"
#include "core/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::vector<float> Floats(const Tensor& t) {
  const float* p = t.data_as<float>();
  return std::vector<float>(p, p + t.num_elements());
}

// ---- Shape arithmetic folds into constants ----

// y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): what torch.flatten(x, 1) exports.
OnnxBuilder FlattenViaShapeArithmetic() {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 4, 5});
  b.Initializer("zero", Tensor::FromInt64s({}, {0}));
  b.Initializer("axes0", Tensor::FromInt64s({1}, {0}));
  b.Initializer("minus1", Tensor::FromInt64s({1}, {-1}));
  b.Node("Shape", {"x"}, {"shape"});
  b.Node("Gather", {"shape", "zero"}, {"batch"});
  b.Node("Unsqueeze", {"batch", "axes0"}, {"batch1"});
  b.Node("Concat", {"batch1", "minus1"}, {"target"}).Int("axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"});
  b.Output("y");
  return b;
}

TEST(ShapeOpsTest, ShapeArithmeticFoldsAtPlanBuild) {
  auto model = Model::LoadFromBytes(FlattenViaShapeArithmetic().Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  for (int64_t batch : {1, 5}) {
    SCOPED_TRACE(batch);
    const Shape in_shape = {batch, 3, 4, 5};
    auto plan = (*ctx)->PlanFor({in_shape});
    ASSERT_TRUE(plan.ok()) << plan.status();
    std::vector<std::string> ops;
    for (const auto& step : (*plan)->steps()) ops.push_back(step.op_type);
    EXPECT_THAT(ops, ElementsAre("Reshape")) << (*plan)->Describe();

    std::vector<float> v(batch * 60);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f - 3;
    auto out = (*ctx)->Run({Tensor::FromFloats(in_shape, v)});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].shape(), (Shape{batch, 60}));
    EXPECT_EQ(Floats((*out)[0]), v);
  }
}

TEST(ShapeOpsTest, ShapeStartEndAndSizeAreConstants) {
  OnnxBuilder b(15);
  b.Input("x", {-1, 3, 4});
  b.Node("Shape", {"x"}, {"s"}).Int("start", -2);
  b.Node("Size", {"x"}, {"n"});
  b.Output("s", DType::kS64);
  b.Output("n", DType::kS64);
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  auto plan = ctx->PlanFor({{2, 3, 4}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE((*plan)->steps().empty()) << (*plan)->Describe();
  auto out = ctx->Run({Tensor::Zeros(DType::kF32, {2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].ToInt64Vector(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ((*out)[1].ToInt64Vector(), (std::vector<int64_t>{24}));
  EXPECT_EQ((*out)[1].rank(), 0);
}

// ---- Gather index errors ----

OnnxBuilder GatherModel() {
  OnnxBuilder b(13);
  b.Input("data", {3, 2});
  b.Input("idx", {2}, DType::kS64);
  b.Node("Gather", {"data", "idx"}, {"y"});
  b.Output("y");
  return b;
}

TEST(TensorOpsTest, GatherOutOfRangeIndexIsAnErrorNotACrash) {
  auto model = Model::LoadFromBytes(GatherModel().Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  Tensor data = Tensor::FromFloats({3, 2}, {1, 2, 3, 4, 5, 6});
  for (int64_t bad : std::vector<int64_t>{3, -4, 1000000000000LL}) {
    auto out = ctx->Run({data, Tensor::FromInt64s({2}, {0, bad})});
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status().message()), HasSubstr("out of range"));
    EXPECT_THAT(std::string(out.status().message()), HasSubstr("Gather"));
  }
  // The context still works afterwards; negative indices count from the end.
  auto out = ctx->Run({data, Tensor::FromInt64s({2}, {-1, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Floats((*out)[0]), ElementsAre(5, 6, 1, 2));
}

TEST(TensorOpsTest, ConstantOutOfRangeGatherIndexFailsTheLoad) {
  OnnxBuilder b(13);
  b.Input("data", {3, 2});
  b.Initializer("idx", Tensor::FromInt64s({1}, {7}));
  b.Node("Gather", {"data", "idx"}, {"y"});
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("index 7 is out of range"));
}

TEST(TensorOpsTest, GatherElementsOutOfRangeIndexIsAnError) {
  OnnxBuilder b(13);
  b.Input("data", {2, 2});
  b.Input("idx", {2, 2}, DType::kS32);
  b.Node("GatherElements", {"data", "idx"}, {"y"});
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  Tensor idx = Tensor::Zeros(DType::kS32, {2, 2});
  idx.data_as<int32_t>()[3] = 2;
  auto out = ctx->Run({Tensor::FromFloats({2, 2}, {1, 2, 3, 4}), idx});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("out of range"));
}

// ---- Load-time refusals name node, op and attribute value ----

TEST(TensorOpsTest, UnsupportedModesAreRefusedAtLoad) {
  OnnxBuilder b(13);
  b.Input("x", {1, 1, 2, 2});
  b.Initializer("scales", Tensor::FromFloats({4}, {1, 1, 2, 2}));
  b.Node("Resize", {"x", "", "scales"}, {"y"}).String("coordinate_transformation_mode", "magic");
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("Resize"));
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("'magic'"));

  OnnxBuilder p(13);
  p.Input("x", {2, 2});
  p.Initializer("pads", Tensor::FromInt64s({4}, {1, 1, 1, 1}));
  p.Node("Pad", {"x", "pads"}, {"y"}).String("mode", "wrap");
  p.Output("y");
  model = Model::LoadFromBytes(p.Bytes());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("'wrap'"));

  OnnxBuilder c(13);
  c.Input("x", {2});
  c.Node("Cast", {"x"}, {"y"}).Int("to", onnx::TensorProto::DOUBLE);
  c.Output("y");
  model = Model::LoadFromBytes(c.Bytes());
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("DOUBLE"));
}

// ---- Resize against hand-computed values ----

struct ResizeCase {
  std::string name;
  Shape in_shape;
  std::vector<float> in;
  std::vector<float> scales;   // empty -> sizes
  std::vector<int64_t> sizes;  // empty -> scales
  std::string mode, coord, nearest_mode;
  std::vector<float> roi;  // tf_crop_and_resize only
  float extrapolation = 0;
  Shape out_shape;
  std::vector<float> expected;
  float cubic_a = 0;  // 0 = the default -0.75
};

std::vector<float> RunResize(const ResizeCase& c, int opset = 13) {
  OnnxBuilder b(opset);
  b.Input("x", c.in_shape);
  std::vector<std::string> ins = {"x", c.roi.empty() ? "" : "roi",
                                  c.scales.empty() ? "" : "scales"};
  if (!c.roi.empty())
    b.Initializer("roi", Tensor::FromFloats({static_cast<int64_t>(c.roi.size())}, c.roi));
  if (!c.scales.empty()) {
    b.Initializer("scales", Tensor::FromFloats({static_cast<int64_t>(c.scales.size())}, c.scales));
  }
  if (!c.sizes.empty()) {
    b.Initializer("sizes", Tensor::FromInt64s({static_cast<int64_t>(c.sizes.size())}, c.sizes));
    ins.push_back("sizes");
  }
  OnnxNodeRef n = b.Node("Resize", ins, {"y"});
  n.String("mode", c.mode);
  if (!c.coord.empty()) n.String("coordinate_transformation_mode", c.coord);
  if (!c.nearest_mode.empty()) n.String("nearest_mode", c.nearest_mode);
  if (c.extrapolation != 0) n.Float("extrapolation_value", c.extrapolation);
  if (c.cubic_a != 0) n.Float("cubic_coeff_a", c.cubic_a);
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto ctx = *(*model)->CreateContext();
  auto out = ctx->Run({Tensor::FromFloats(c.in_shape, c.in)});
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  EXPECT_EQ((*out)[0].shape(), c.out_shape);
  return Floats((*out)[0]);
}

class ResizeTest : public ::testing::TestWithParam<ResizeCase> {};

TEST_P(ResizeTest, MatchesHandComputedValues) {
  const ResizeCase& c = GetParam();
  std::vector<float> got = RunResize(c);
  ASSERT_EQ(got.size(), c.expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], c.expected[i], 1e-5) << i;
}

const std::vector<float> k1234 = {1, 2, 3, 4};
const std::vector<float> k10_40 = {10, 20, 30, 40};

INSTANTIATE_TEST_SUITE_P(
    Modes, ResizeTest,
    ::testing::Values(
        // half_pixel: x_ori = (x + 0.5) / 2 - 0.5, clamped at the edges.
        ResizeCase{"linear_half_pixel",
                   {4},
                   k1234,
                   {2},
                   {},
                   "linear",
                   "half_pixel",
                   "",
                   {},
                   0,
                   {8},
                   {1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4}},
        // align_corners to 7: x_ori = x * 3 / 6.
        ResizeCase{"linear_align_corners",
                   {4},
                   k1234,
                   {},
                   {7},
                   "linear",
                   "align_corners",
                   "",
                   {},
                   0,
                   {7},
                   {1, 1.5, 2, 2.5, 3, 3.5, 4}},
        // pytorch_half_pixel with one output sample reads x_ori = -0.5 -> clamped to the edge.
        ResizeCase{"linear_pytorch_half_pixel_1",
                   {4},
                   k1234,
                   {},
                   {1},
                   "linear",
                   "pytorch_half_pixel",
                   "",
                   {},
                   0,
                   {1},
                   {1}},
        // Bilinear asymmetric 2x: x_ori = x / 2, the last row/column clamps.
        ResizeCase{"bilinear_asymmetric",
                   {1, 1, 2, 2},
                   k1234,
                   {1, 1, 2, 2},
                   {},
                   "linear",
                   "asymmetric",
                   "",
                   {},
                   0,
                   {1, 1, 4, 4},
                   {1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}},
        // Downsample 4 -> 3 with half_pixel: x_ori = 1/6, 1.5, 17/6.
        ResizeCase{"nearest_round_prefer_floor",
                   {4},
                   k10_40,
                   {},
                   {3},
                   "nearest",
                   "half_pixel",
                   "round_prefer_floor",
                   {},
                   0,
                   {3},
                   {10, 20, 40}},
        ResizeCase{"nearest_round_prefer_ceil",
                   {4},
                   k10_40,
                   {},
                   {3},
                   "nearest",
                   "half_pixel",
                   "round_prefer_ceil",
                   {},
                   0,
                   {3},
                   {10, 30, 40}},
        ResizeCase{"nearest_floor",
                   {4},
                   k10_40,
                   {},
                   {3},
                   "nearest",
                   "half_pixel",
                   "floor",
                   {},
                   0,
                   {3},
                   {10, 20, 30}},
        ResizeCase{"nearest_ceil",
                   {4},
                   k10_40,
                   {},
                   {3},
                   "nearest",
                   "half_pixel",
                   "ceil",
                   {},
                   0,
                   {3},
                   {20, 30, 40}},
        // tf_crop_and_resize over roi [0.5, 1.5]: x_ori = 1.5 + x * 1.5 -> 1.5, 3, 4.5 (outside).
        ResizeCase{"linear_tf_crop_and_resize",
                   {4},
                   k1234,
                   {},
                   {3},
                   "linear",
                   "tf_crop_and_resize",
                   "",
                   {0.5f, 1.5f},
                   9,
                   {3},
                   {2.5, 4, 9}},
        // Keys cubic convolution with a = -0.5 reproduces a linear ramp wherever all 4 taps are
        // inside; integral positions hit samples exactly. align_corners: x_ori = x * 7 / 3.
        ResizeCase{"cubic_align_corners_ramp",
                   {8},
                   {0, 1, 2, 3, 4, 5, 6, 7},
                   {},
                   {4},
                   "cubic",
                   "align_corners",
                   "",
                   {},
                   0,
                   {4},
                   {0, 7.0f / 3, 14.0f / 3, 7},
                   -0.5f}),
    [](const ::testing::TestParamInfo<ResizeCase>& info) { return info.param.name; });

TEST(TensorOpsTest, UpsampleNearestIsAsymmetricFloor) {
  OnnxBuilder b(9);
  b.Input("x", {1, 1, 1, 3});
  b.Initializer("scales", Tensor::FromFloats({4}, {1, 1, 1, 1.5f}));
  b.Node("Upsample", {"x", "scales"}, {"y"}).String("mode", "nearest");
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = (*(*model)->CreateContext())->Run({Tensor::FromFloats({1, 1, 1, 3}, {1, 2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  // floor(3 * 1.5) = 4 samples at x / 1.5 = 0, 0.67, 1.33, 2.
  EXPECT_THAT(Floats((*out)[0]), ElementsAreArray({1, 1, 2, 3}));
}

// ---- Cast semantics ----

TEST(ShapeOpsTest, CastTruncatesSaturatesAndMapsBool) {
  auto run = [](DType to, const Tensor& x) -> Tensor {
    OnnxBuilder b(13);
    b.Input("x", x.shape(), x.dtype());
    b.Node("Cast", {"x"}, {"y"}).Int("to", OnnxFromDType(to));
    b.Output("y", to);
    auto model = Model::LoadFromBytes(b.Bytes());
    EXPECT_TRUE(model.ok()) << model.status();
    auto out = (*(*model)->CreateContext())->Run({x});
    EXPECT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].dtype(), to);
    return (*out)[0];
  };
  Tensor f = Tensor::FromFloats({6}, {2.7f, -2.7f, 3e9f, -3e9f, NAN, 0.0f});
  // Toward zero; out of range saturates; NaN -> 0.
  EXPECT_EQ(run(DType::kS32, f).ToInt64Vector(),
            (std::vector<int64_t>{2, -2, 2147483647, -2147483648LL, 0, 0}));
  EXPECT_EQ(run(DType::kU8, f).ToInt64Vector(), (std::vector<int64_t>{2, 0, 255, 0, 0, 0}));
  EXPECT_EQ(run(DType::kS8, f).ToInt64Vector(), (std::vector<int64_t>{2, -2, 127, -128, 0, 0}));
  EXPECT_EQ(run(DType::kBool, f).ToInt64Vector(), (std::vector<int64_t>{1, 1, 1, 1, 1, 0}));
  // Integer narrowing wraps like NumPy's astype; bool -> float is 0/1.
  Tensor big = Tensor::FromInt64s({2}, {(1LL << 32) + 5, -1});
  EXPECT_EQ(run(DType::kS32, big).ToInt64Vector(), (std::vector<int64_t>{5, -1}));
  Tensor flags = Tensor::Zeros(DType::kBool, {3});
  flags.data_as<uint8_t>()[1] = 1;
  EXPECT_THAT(Floats(run(DType::kF32, flags)), ElementsAre(0, 1, 0));
}

// ---- Multi-threaded IndexedCopy (large enough to split across threads) ----

TEST(ShapeOpsTest, LargeTransposeWithTwoThreadsMatchesNaiveLoop) {
  const int64_t a = 64, b = 33, c = 40;
  OnnxBuilder m(13);
  m.Input("x", {a, b, c});
  m.Node("Transpose", {"x"}, {"y"}).Ints("perm", {2, 0, 1});
  m.Output("y");
  auto model = Model::LoadFromBytes(m.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  ContextOptions options;
  options.num_threads = 2;
  auto ctx = *(*model)->CreateContext(options);
  std::vector<float> v(a * b * c);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  auto out = ctx->Run({Tensor::FromFloats({a, b, c}, v)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{c, a, b}));
  const float* y = (*out)[0].data_as<float>();
  int64_t mismatches = 0;
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t i = 0; i < a; ++i) {
      for (int64_t j = 0; j < b; ++j) {
        if (y[(k * a + i) * b + j] != v[(i * b + j) * c + k]) ++mismatches;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// ---- Channel Concat on oneDNN keeps blocked producer layouts correct ----

TEST(ShapeOpsTest, ChannelConcatOfConvOutputAndPlainInput) {
  // y = Concat(Conv(x, 2*I), x) on channels; the 1x1 conv with weights 2*identity doubles x, and
  // its output is typically in a blocked layout while x is plain.
  const int64_t c = 16, hw = 5;
  OnnxBuilder b(13);
  b.Input("x", {-1, c, hw, hw});
  std::vector<float> w(c * c, 0.0f);
  for (int64_t i = 0; i < c; ++i) w[i * c + i] = 2.0f;
  b.Initializer("w", Tensor::FromFloats({c, c, 1, 1}, w));
  b.Node("Conv", {"x", "w"}, {"doubled"});
  b.Node("Concat", {"doubled", "x"}, {"y"}).Int("axis", 1);
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  for (int64_t n : {1, 3}) {
    std::vector<float> v(n * c * hw * hw);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) - 40;
    auto out = ctx->Run({Tensor::FromFloats({n, c, hw, hw}, v)});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ((*out)[0].shape(), (Shape{n, 2 * c, hw, hw}));
    const float* y = (*out)[0].data_as<float>();
    const int64_t plane = c * hw * hw;
    int64_t mismatches = 0;
    for (int64_t b0 = 0; b0 < n; ++b0) {
      for (int64_t i = 0; i < plane; ++i) {
        if (y[b0 * 2 * plane + i] != 2 * v[b0 * plane + i]) ++mismatches;
        if (y[b0 * 2 * plane + plane + i] != v[b0 * plane + i]) ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0) << "batch " << n;
  }
}

}  // namespace
}  // namespace octet
