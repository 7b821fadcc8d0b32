// INT8 operators: ONNX node tests (with runtime and with constant parameters), oneDNN int8 path
// vs the exact reference kernel, 7-bit weights without VNNI, and refusal of bad parameters.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/model.h"
#include "core/onnx_tensor.h"
#include "core/plan.h"
#include "core/quant/qparams.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace octet {
namespace {

using ::testing::HasSubstr;
using testing_util::QModelBuilder;
using testing_util::RandomInts;
using testing_util::Scalar;

const char kNodeDir[] = "/usr/share/libonnx-testdata/data/node/";

std::string PlanImpls(ExecutionContext& ctx, const std::vector<Tensor>& in) {
  std::vector<Shape> shapes;
  for (const Tensor& t : in) shapes.push_back(t.shape());
  auto plan = ctx.PlanFor(shapes);
  return plan.ok() ? (*plan)->Describe() : std::string(plan.status().message());
}

void ExpectSame(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    ASSERT_NEAR(got.GetAsDouble(i), want.GetAsDouble(i), tol + 1e-6 * std::fabs(want.GetAsDouble(i)))
        << what << " at element " << i;
  }
}

// Runs one ONNX node test. With `constants`, every input but the first becomes an initializer
// (the form quantized models take), which exercises load-time checks and the oneDNN path.
void RunNodeTest(const std::string& name, bool constants) {
  const std::string dir = kNodeDir + name;
  // deploy/setup.sh installs libonnx-testdata: a missing directory fails the test.
  ASSERT_TRUE(std::filesystem::exists(dir)) << dir << " not installed (run deploy/setup.sh)";
  std::vector<Tensor> inputs;
  const std::string data = dir + "/test_data_set_0/";
  for (int i = 0; std::filesystem::exists(data + "input_" + std::to_string(i) + ".pb"); ++i) {
    auto t = ReadTensorProtoFile(data + "input_" + std::to_string(i) + ".pb");
    ASSERT_TRUE(t.ok()) << t.status();
    inputs.push_back(*t);
  }
  onnx::ModelProto proto;
  {
    std::ifstream in(dir + "/model.onnx", std::ios::binary);
    ASSERT_TRUE(proto.ParseFromIstream(&in));
  }
  if (constants) {
    auto* g = proto.mutable_graph();
    for (int i = g->input_size() - 1; i >= 1; --i) {
      *g->add_initializer() = TensorToProto(inputs[i], g->input(i).name());
      g->mutable_input()->DeleteSubrange(i, 1);
    }
    inputs.resize(1);
  }
  auto model = Model::LoadFromBytes(proto.SerializeAsString());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  auto out = (*ctx)->Run(inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t i = 0; i < out->size(); ++i) {
    auto want = ReadTensorProtoFile(data + "output_" + std::to_string(i) + ".pb");
    ASSERT_TRUE(want.ok());
    ExpectSame((*out)[i], *want, 1e-6, name + " output " + std::to_string(i));
  }
}

class QuantNodeTest : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantNodeTest, RuntimeParameters) { RunNodeTest(GetParam(), false); }
TEST_P(QuantNodeTest, ConstantParameters) { RunNodeTest(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(
    Onnx, QuantNodeTest,
    ::testing::Values("test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear",
                      "test_dequantizelinear_axis", "test_dynamicquantizelinear",
                      "test_dynamicquantizelinear_max_adjusted",
                      "test_dynamicquantizelinear_min_adjusted", "test_basic_convinteger",
                      "test_convinteger_with_padding", "test_convinteger_without_padding",
                      "test_matmulinteger", "test_qlinearconv", "test_qlinearmatmul_2D",
                      "test_qlinearmatmul_3D"));

struct ConvCase {
  DType x_type, y_type;
  int groups, stride, pad;
  bool per_channel, bias;
  int w_max;  // weights in [-w_max, w_max]
};

// A QLinearConv on x [2, 8, 9, 7], w [16, 8/g, 3, 3]; parameters constant or graph inputs.
QModelBuilder QConvModel(const ConvCase& c, bool constant, std::vector<Tensor>* feeds) {
  const int64_t ic = 8, oc = 16;
  QModelBuilder b;
  b.Input("x", c.x_type, {2, ic, 9, 7});
  Tensor ws = Tensor::Zeros(DType::kF32, {c.per_channel ? oc : 1});
  for (int64_t i = 0; i < ws.num_elements(); ++i) ws.data_as<float>()[i] = 0.002f * (1 + i % 5);
  const bool xs8 = c.x_type == DType::kS8, ys8 = c.y_type == DType::kS8;
  std::vector<std::pair<std::string, Tensor>> params = {
      {"xs", Scalar(DType::kF32, 0.02)},
      {"xz", Scalar(c.x_type, xs8 ? -7 : 121)},
      {"w", RandomInts(DType::kS8, {oc, ic / c.groups, 3, 3}, -c.w_max, c.w_max, 7)},
      {"ws", ws},
      {"wz", Tensor::Zeros(DType::kS8, ws.shape())},
      {"ys", Scalar(DType::kF32, 0.05)},
      {"yz", Scalar(c.y_type, ys8 ? 3 : 118)}};
  if (c.bias) params.push_back({"b", RandomInts(DType::kS32, {oc}, -3000, 3000, 9)});
  std::vector<std::string> names = {"x"};
  for (auto& [name, t] : params) {
    b.InputOrInit(name, t, constant);
    if (!constant) feeds->push_back(t);
    names.push_back(name);
  }
  auto* n = b.Node("QLinearConv", names, {"y"}, "qconv");
  QModelBuilder::Int(n, "group", c.groups);
  QModelBuilder::Ints(n, "strides", {c.stride, c.stride});
  QModelBuilder::Ints(n, "pads", {c.pad, c.pad, c.pad, c.pad});
  b.Output("y", c.y_type);
  return b;
}

class QConvPathTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(QConvPathTest, OneDnnInt8MatchesExactReference) {
  const ConvCase& c = GetParam();
  Tensor x = RandomInts(c.x_type, {2, 8, 9, 7}, c.x_type == DType::kS8 ? -128 : 0,
                        c.x_type == DType::kS8 ? 127 : 255, 3);
  std::vector<Tensor> ref_feeds = {x}, fast_feeds = {x};
  auto ref_model = Model::LoadFromBytes(QConvModel(c, false, &ref_feeds).Bytes());
  auto fast_model = Model::LoadFromBytes(QConvModel(c, true, nullptr).Bytes());
  ASSERT_TRUE(ref_model.ok()) << ref_model.status();
  ASSERT_TRUE(fast_model.ok()) << fast_model.status();
  auto ref_ctx = (*ref_model)->CreateContext();
  auto fast_ctx = (*fast_model)->CreateContext();
  ASSERT_TRUE(ref_ctx.ok() && fast_ctx.ok());
  const std::string impl = PlanImpls(**fast_ctx, fast_feeds);
  EXPECT_THAT(impl, Not(HasSubstr("ref:int8"))) << impl;
  EXPECT_THAT(PlanImpls(**ref_ctx, ref_feeds), HasSubstr("ref:int8"));
  auto want = (*ref_ctx)->Run(ref_feeds);
  auto got = (*fast_ctx)->Run(fast_feeds);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  // Same formula; oneDNN may add the bias in another order: at most one step apart.
  ExpectSame((*got)[0], (*want)[0], 1.0, impl);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, QConvPathTest,
    ::testing::Values(ConvCase{DType::kU8, DType::kU8, 1, 1, 1, true, true, 63},
                      ConvCase{DType::kU8, DType::kS8, 1, 2, 0, false, false, 63},
                      ConvCase{DType::kS8, DType::kU8, 2, 1, 1, true, true, 63},
                      ConvCase{DType::kS8, DType::kS8, 4, 2, 1, true, false, 50},
                      ConvCase{DType::kU8, DType::kU8, 8, 1, 1, true, true, 63}),
    [](const ::testing::TestParamInfo<ConvCase>& i) {
      const ConvCase& c = i.param;
      return std::string(DTypeName(c.x_type)) + "_" + DTypeName(c.y_type) + "_g" +
             std::to_string(c.groups) + "_s" + std::to_string(c.stride) + "_p" +
             std::to_string(c.pad) + (c.per_channel ? "_perchannel" : "") + (c.bias ? "_bias" : "");
    });

// Full-range weights: exact with VNNI; without it (ONEDNN_MAX_CPU_ISA=AVX2 run of this test) the
// weights are requantized to 7 bits, which costs a little accuracy but never saturates.
TEST(QConvIsaTest, FullRangeWeights) {
  ConvCase c{DType::kU8, DType::kU8, 1, 1, 1, true, true, 127};
  Tensor x = RandomInts(DType::kU8, {2, 8, 9, 7}, 0, 255, 5);
  std::vector<Tensor> ref_feeds = {x}, fast_feeds = {x};
  auto ref_model = Model::LoadFromBytes(QConvModel(c, false, &ref_feeds).Bytes());
  auto fast_model = Model::LoadFromBytes(QConvModel(c, true, nullptr).Bytes());
  ASSERT_TRUE(ref_model.ok() && fast_model.ok());
  auto ref_ctx = *(*ref_model)->CreateContext();
  auto fast_ctx = *(*fast_model)->CreateContext();
  const std::string impl = PlanImpls(*fast_ctx, fast_feeds);
  auto want = ref_ctx->Run(ref_feeds);
  auto got = fast_ctx->Run(fast_feeds);
  ASSERT_TRUE(want.ok() && got.ok());
  if (CpuHasInt8Vnni()) {
    EXPECT_THAT(impl, Not(HasSubstr("7-bit")));
    ExpectSame((*got)[0], (*want)[0], 1.0, impl);
  } else {
    EXPECT_THAT(impl, HasSubstr("7-bit"));
    // Weight rounding error: half a 7-bit step per weight, summed over 72 products.
    ExpectSame((*got)[0], (*want)[0], 4.0, impl);
  }
}

TEST(QConvIsaTest, ReportsIsa) {
  const char* env = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (env != nullptr && std::string(env) == "AVX2") {
    EXPECT_FALSE(CpuHasInt8Vnni());
  }
}

struct MatMulCase {
  DType a_type, y_type;
  Shape a_shape;
  bool trans;  // weights given as octet:QMatMul trans_b [N, K]
};

TEST(QMatMulPathTest, OneDnnInt8MatchesExactReference) {
  for (const MatMulCase& c : {MatMulCase{DType::kU8, DType::kU8, {5, 16}, false},
                              MatMulCase{DType::kS8, DType::kU8, {2, 3, 16}, false},
                              MatMulCase{DType::kU8, DType::kS8, {16}, false}}) {
    Tensor a = RandomInts(c.a_type, c.a_shape, c.a_type == DType::kS8 ? -128 : 0,
                          c.a_type == DType::kS8 ? 127 : 255, 11);
    std::vector<Tensor> feeds[2];
    std::string impls[2];
    std::vector<Tensor> outs;
    for (int constant = 0; constant < 2; ++constant) {
      QModelBuilder b;
      b.Input("a", c.a_type, c.a_shape);
      feeds[constant].push_back(a);
      Tensor bs = Tensor::Zeros(DType::kF32, {10});
      for (int i = 0; i < 10; ++i) bs.data_as<float>()[i] = 0.003f * (1 + i % 3);
      std::vector<std::pair<std::string, Tensor>> params = {
          {"as", Scalar(DType::kF32, 0.03)},
          {"az", Scalar(c.a_type, c.a_type == DType::kS8 ? 5 : 130)},
          {"b", RandomInts(DType::kU8, {16, 10}, 1, 255, 13)},
          {"bs", bs},
          {"bz", []() {
             Tensor z = Tensor::Zeros(DType::kU8, {10});
             for (int i = 0; i < 10; ++i) z.data_as<uint8_t>()[i] = 128;
             return z;
           }()},
          {"ys", Scalar(DType::kF32, 0.2)},
          {"yz", Scalar(c.y_type, c.y_type == DType::kS8 ? -4 : 128)}};
      std::vector<std::string> names = {"a"};
      for (auto& [name, t] : params) {
        b.InputOrInit(name, t, constant);
        if (!constant) feeds[constant].push_back(t);
        names.push_back(name);
      }
      b.Node("QLinearMatMul", names, {"y"}, "qmm");
      b.Output("y", c.y_type);
      auto model = Model::LoadFromBytes(b.Bytes());
      ASSERT_TRUE(model.ok()) << model.status();
      auto ctx = *(*model)->CreateContext();
      impls[constant] = PlanImpls(*ctx, feeds[constant]);
      auto out = ctx->Run(feeds[constant]);
      ASSERT_TRUE(out.ok()) << out.status();
      outs.push_back((*out)[0]);
    }
    EXPECT_THAT(impls[0], HasSubstr("ref:int8"));
    EXPECT_THAT(impls[1], Not(HasSubstr("ref:int8"))) << impls[1];
    // u8 weights with zero point 128 are s8 weights exactly; 7-bit (no VNNI) costs a little.
    ExpectSame(outs[1], outs[0], CpuHasInt8Vnni() ? 1.0 : 3.0, impls[1]);
  }
}

// A QLinearConv with one parameter replaced, for the refusal tests.
absl::Status LoadConvWith(const std::string& param, const Tensor& value) {
  ConvCase c{DType::kU8, DType::kU8, 1, 1, 1, true, true, 63};
  QModelBuilder b = QConvModel(c, true, nullptr);
  for (auto& init : *b.proto().mutable_graph()->mutable_initializer()) {
    if (init.name() == param) init = TensorToProto(value, param);
  }
  return Model::LoadFromBytes(b.Bytes()).status();
}

TEST(QuantRefusalTest, BadParametersAreRefusedAtLoad) {
  struct Bad {
    std::string param;
    Tensor value;
    std::string message;
  };
  Tensor ws_nan = Tensor::FromFloats({16}, std::vector<float>(16, 0.01f));
  ws_nan.data_as<float>()[3] = NAN;
  std::vector<Bad> cases = {
      {"xs", Scalar(DType::kF32, 0.0), "scale is 0"},
      {"ys", Scalar(DType::kF32, -1.0), "must be finite and > 0"},
      {"xs", Scalar(DType::kF32, INFINITY), "must be finite"},
      {"ws", ws_nan, "scale[3] is nan"},
      {"ws", Tensor::FromFloats({5}, std::vector<float>(5, 0.01f)), "does not match scale shape [5]"},
      {"wz", Tensor::Zeros(DType::kS8, {3}), "does not match scale shape"},
      {"xz", Scalar(DType::kS8, 0), "differs from x type"},
      {"b", Tensor::Zeros(DType::kS32, {11}), "bias must be int32"},
  };
  for (const Bad& bad : cases) {
    absl::Status s = LoadConvWith(bad.param, bad.value);
    EXPECT_FALSE(s.ok()) << bad.param;
    EXPECT_THAT(std::string(s.message()), HasSubstr(bad.message)) << bad.param;
    EXPECT_THAT(std::string(s.message()), HasSubstr("qconv")) << bad.param;
  }
}

TEST(QuantRefusalTest, BadRuntimeScaleIsAnError) {
  QModelBuilder b;
  b.Input("x", DType::kF32, {4});
  b.Input("s", DType::kF32, {});
  b.Node("QuantizeLinear", {"x", "s"}, {"y"}, "q");
  b.Output("y", DType::kU8);
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  auto out = ctx->Run({Tensor::FromFloats({4}, {1, 2, 3, 4}), Scalar(DType::kF32, 0.0)});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("scale is 0"));
  out = ctx->Run({Tensor::FromFloats({4}, {1, 2, 3, 4}), Scalar(DType::kF32, 0.5)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].data_as<uint8_t>()[0], 2);
  EXPECT_EQ((*out)[0].data_as<uint8_t>()[2], 6);
}

TEST(QuantizeLinearTest, RoundsHalfToEvenAndSaturates) {
  QModelBuilder b;
  b.Input("x", DType::kF32, {8});
  b.Init("s", Scalar(DType::kF32, 0.5));
  b.Init("z", Scalar(DType::kS8, -1));
  b.Node("QuantizeLinear", {"x", "s", "z"}, {"y"}, "q");
  b.Output("y", DType::kS8);
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = *(*model)->CreateContext();
  // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5, 1000, -1000, NaN-free
  auto out = ctx->Run({Tensor::FromFloats({8}, {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, 500.f, -500.f, 0.f})});
  ASSERT_TRUE(out.ok()) << out.status();
  const int8_t* y = (*out)[0].data_as<int8_t>();
  const int8_t want[8] = {-1, 1, 1, -1, -3, 127, -128, -1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(y[i], want[i]) << i;
}

}  // namespace
}  // namespace octet
