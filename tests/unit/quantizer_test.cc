// `octet quantize` as a library: small FP32 models built here are quantized, and the written QDQ
// model must (1) be standard ONNX that Octet loads, (2) compile to int8 layers (the plan's node
// precisions), and (3) match the FP32 model within a few quantization steps of each output.
#include "core/quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/graph.h"
#include "core/model.h"
#include "core/passes_qdq.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

std::vector<float> Random(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

Tensor RandomTensor(const Shape& shape, float lo, float hi, uint32_t seed) {
  return Tensor::FromFloats(shape, Random(NumElements(shape), lo, hi, seed));
}

// Conv with random weights and bias; 3x3, padding 1.
void AddConv(OnnxBuilder& b, const std::string& name, const std::string& in, const std::string& out,
             int64_t cin, int64_t cout, uint32_t seed) {
  const float k = 1.0f / std::sqrt(static_cast<float>(cin * 9));
  b.Initializer(name + ".w", RandomTensor({cout, cin, 3, 3}, -k, k, seed));
  b.Initializer(name + ".b", RandomTensor({cout}, -0.2f, 0.2f, seed + 1));
  b.Node("Conv", {in, name + ".w", name + ".b"}, {out}, name).Ints("pads", {1, 1, 1, 1});
}

// node name -> precision in the optimized plan ("int8", "fp32"...).
std::map<std::string, std::string> Precisions(const Model& m) {
  std::map<std::string, std::string> out;
  const std::vector<std::string> p = NodePrecisions(m.graph());
  for (size_t i = 0; i < p.size(); ++i) out[m.graph().nodes[i].name] = p[i];
  return out;
}

std::string OpOf(const Model& m, const std::string& node) {
  for (const Node& n : m.graph().nodes) {
    if (n.name == node) return n.domain.empty() ? n.op_type : n.domain + ":" + n.op_type;
  }
  return "";
}

const LayerReport* ReportFor(const QuantizeResult& r, const std::string& tensor) {
  for (const LayerReport& l : r.layers) {
    if (l.tensor == tensor) return &l;
  }
  return nullptr;
}

std::vector<Tensor> RunModel(const std::string& bytes, const Tensor& x) {
  auto model = Model::LoadFromBytes(bytes);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto ctx = (*model)->CreateContext();
  EXPECT_TRUE(ctx.ok());
  auto out = (*ctx)->Run({x});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>{};
}

// Quantizes `fp32` (input "x", output "y") on `x` and checks the int8 model against FP32:
// every output value within `steps` quantization steps of y. Returns the result.
QuantizeResult QuantizeAndCompare(const std::string& fp32, const Tensor& x, double steps,
                                  const QuantizeOptions& options = {}) {
  auto result = QuantizeModel(fp32, {{"x", x}}, options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  const LayerReport* y = ReportFor(*result, "y");
  EXPECT_NE(y, nullptr) << "graph output y not quantized";
  if (y == nullptr) return *result;
  EXPECT_GT(y->scale, 0);
  std::vector<Tensor> ref = RunModel(fp32, x), got = RunModel(result->onnx_bytes, x);
  EXPECT_EQ(ref.size(), 1u);
  EXPECT_EQ(got.size(), 1u);
  if (ref.size() != 1 || got.size() != 1) return *result;
  EXPECT_EQ(ref[0].shape(), got[0].shape());
  double max_err = 0, sum_err = 0;
  for (int64_t i = 0; i < ref[0].num_elements(); ++i) {
    const double e = std::fabs(ref[0].data_as<float>()[i] - got[0].data_as<float>()[i]);
    max_err = std::max(max_err, e);
    sum_err += e;
  }
  EXPECT_LE(max_err, steps * y->scale) << "max error " << max_err / y->scale << " steps";
  EXPECT_LE(sum_err / ref[0].num_elements(), 0.5 * y->scale);
  for (const LayerReport& l : result->layers) {
    if (l.quantized) {
      EXPECT_GT(l.sqnr_db, 20) << l.tensor;
    }
  }
  return *result;
}

TEST(QuantizerTest, ConvReluBecomesOneInt8LayerWithPerChannelWeights) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  AddConv(b, "conv", "x", "c", 3, 8, 1);
  b.Node("Relu", {"c"}, {"y"}, "relu");
  b.Output("y");
  const Tensor x = RandomTensor({32, 3, 8, 8}, -1, 1, 7);
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), x, 3);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(OpOf(**m, "conv"), "octet:QConv");
  EXPECT_EQ(Precisions(**m)["conv"], "int8") << (*m)->Describe();
  // The written file: opset >= 13, s8 weights with 8 per-channel scales on axis 0, s32 bias.
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(r.onnx_bytes));
  EXPECT_GE(proto.opset_import(0).version(), 13);
  int weight_dq = 0, bias_dq = 0;
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : proto.graph().initializer()) inits[t.name()] = &t;
  for (const auto& n : proto.graph().node()) {
    if (n.op_type() != "DequantizeLinear" || !inits.count(n.input(0))) continue;
    const onnx::TensorProto& data = *inits[n.input(0)];
    const onnx::TensorProto& scale = *inits[n.input(1)];
    if (data.data_type() == onnx::TensorProto::INT8) {
      ++weight_dq;
      ASSERT_EQ(scale.dims_size(), 1);
      EXPECT_EQ(scale.dims(0), 8);
      ASSERT_EQ(n.attribute_size(), 1);
      EXPECT_EQ(n.attribute(0).i(), 0);
    } else if (data.data_type() == onnx::TensorProto::INT32) {
      ++bias_dq;
    }
  }
  EXPECT_EQ(weight_dq, 1);
  EXPECT_EQ(bias_dq, 1);
  EXPECT_LT(r.int8_weight_bytes, r.fp32_weight_bytes);
  // Input and Relu output reported, the latter under the Conv.
  ASSERT_NE(ReportFor(r, "x"), nullptr);
  EXPECT_EQ(ReportFor(r, "y")->node, "conv");
  EXPECT_EQ(ReportFor(r, "x")->op_type, "input");
}

TEST(QuantizerTest, PerTensorWeightsAlsoWork) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  AddConv(b, "conv", "x", "y", 3, 4, 2);
  b.Output("y");
  QuantizeOptions o;
  o.per_channel = false;
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), RandomTensor({16, 3, 8, 8}, -1, 1, 3), 3, o);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(OpOf(**m, "conv"), "octet:QConv");
}

TEST(QuantizerTest, GemmMlpRunsInInt8) {
  OnnxBuilder b;
  b.Input("x", {-1, 16});
  b.Initializer("w1", RandomTensor({32, 16}, -0.25f, 0.25f, 4));  // transB = 1: [N, K]
  b.Initializer("b1", RandomTensor({32}, -0.1f, 0.1f, 5));
  b.Initializer("w2", RandomTensor({32, 10}, -0.2f, 0.2f, 6));  // transB = 0: [K, N]
  b.Initializer("b2", RandomTensor({10}, -0.1f, 0.1f, 8));
  b.Node("Gemm", {"x", "w1", "b1"}, {"h"}, "fc1").Int("transB", 1);
  b.Node("Relu", {"h"}, {"hr"}, "relu1");
  b.Node("Gemm", {"hr", "w2", "b2"}, {"y"}, "fc2");
  b.Output("y");
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), RandomTensor({64, 16}, -1, 1, 9), 3);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(OpOf(**m, "fc1"), "octet:QMatMul");
  EXPECT_EQ(OpOf(**m, "fc2"), "octet:QMatMul");
  EXPECT_EQ(Precisions(**m)["fc1"], "int8");
}

TEST(QuantizerTest, MatMulWithConstantWeights) {
  OnnxBuilder b;
  b.Input("x", {-1, 24});
  b.Initializer("w", RandomTensor({24, 12}, -0.3f, 0.3f, 10));
  b.Node("MatMul", {"x", "w"}, {"y"}, "mm");
  b.Output("y");
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), RandomTensor({32, 24}, -1, 1, 11), 3);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(OpOf(**m, "mm"), "octet:QMatMul");
}

TEST(QuantizerTest, ResidualAddIsFusedIntoTheInt8Conv) {
  OnnxBuilder b;
  b.Input("x", {-1, 4, 8, 8});
  AddConv(b, "c1", "x", "a", 4, 8, 12);
  b.Node("Relu", {"a"}, {"ar"}, "r1");
  AddConv(b, "c2", "ar", "bb", 8, 8, 14);
  b.Node("Add", {"bb", "ar"}, {"s"}, "add");
  b.Node("Relu", {"s"}, {"y"}, "r2");
  b.Output("y");
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), RandomTensor({16, 4, 8, 8}, -1, 1, 13), 4);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string plan = (*m)->Describe();
  EXPECT_EQ(OpOf(**m, "c1"), "octet:QConv") << plan;
  EXPECT_EQ(OpOf(**m, "c2"), "octet:QConv") << plan;
  EXPECT_THAT(plan, HasSubstr("+sum")) << plan;
  EXPECT_EQ(Precisions(**m)["c1"], "int8");
  ASSERT_NE(ReportFor(r, "y"), nullptr);
  EXPECT_EQ(ReportFor(r, "y")->op_type, "Add");
}

TEST(QuantizerTest, MaxPoolAndConcatStayInInt8) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  AddConv(b, "c1", "x", "a", 3, 4, 20);
  b.Node("Relu", {"a"}, {"ar"}, "r1");
  AddConv(b, "c2", "x", "bb", 3, 4, 22);
  b.Node("Relu", {"bb"}, {"br"}, "r2");
  b.Node("Concat", {"ar", "br"}, {"cat"}, "concat").Int("axis", 1);
  b.Node("MaxPool", {"cat"}, {"p"}, "pool").Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
  AddConv(b, "c3", "p", "y", 8, 4, 24);
  b.Output("y");
  QuantizeResult r = QuantizeAndCompare(b.Bytes(), RandomTensor({16, 3, 8, 8}, -1, 1, 25), 4);
  auto m = Model::LoadFromBytes(r.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string plan = (*m)->Describe();
  EXPECT_EQ(OpOf(**m, "concat"), "octet:QConcat") << plan;
  EXPECT_EQ(OpOf(**m, "pool"), "octet:QPool") << plan;
  EXPECT_EQ(Precisions(**m)["concat"], "int8");
  EXPECT_EQ(Precisions(**m)["pool"], "int8");
  EXPECT_EQ(OpOf(**m, "c3"), "octet:QConv") << plan;
}

TEST(QuantizerTest, ExcludedLayerStaysFp32) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  AddConv(b, "c1", "x", "a", 3, 4, 30);
  b.Node("Relu", {"a"}, {"ar"}, "r1");
  AddConv(b, "c2", "ar", "y", 4, 4, 32);
  b.Output("y");
  const Tensor x = RandomTensor({8, 3, 8, 8}, -1, 1, 33);
  QuantizeOptions o;
  o.exclude = {"c2"};
  auto r = QuantizeModel(b.Bytes(), {{"x", x}}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto m = Model::LoadFromBytes(r->onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(OpOf(**m, "c1"), "octet:QConv") << (*m)->Describe();
  EXPECT_EQ(OpOf(**m, "c2"), "Conv") << (*m)->Describe();
  EXPECT_EQ(Precisions(**m)["c2"], "fp32");
  const LayerReport* y = ReportFor(*r, "y");
  ASSERT_NE(y, nullptr);
  EXPECT_FALSE(y->quantized);
  EXPECT_EQ(y->node, "c2");
  // Its weights stay FP32 in the file.
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(r->onnx_bytes));
  bool fp32_weights = false;
  for (const auto& t : proto.graph().initializer()) {
    fp32_weights |= t.name() == "c2.w" && t.data_type() == onnx::TensorProto::FLOAT;
  }
  EXPECT_TRUE(fp32_weights);
}

class QuantizerErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    b_.Input("x", {-1, 3, 8, 8});
    AddConv(b_, "conv", "x", "y", 3, 4, 40);
    b_.Output("y");
  }
  absl::Status Quantize(const std::map<std::string, Tensor>& calib, const QuantizeOptions& o = {}) {
    return QuantizeModel(b_.Bytes(), calib, o).status();
  }
  OnnxBuilder b_;
};

TEST_F(QuantizerErrorTest, BadCalibrationDataIsRefusedNamingTheInput) {
  absl::Status s = Quantize({{"x", RandomTensor({4, 3, 9, 8}, 0, 1, 1)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'x'"));
  EXPECT_THAT(s.message(), HasSubstr("[4,3,9,8]"));
  s = Quantize({{"x", RandomTensor({4, 3, 8}, 0, 1, 1)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = Quantize({{"x", Tensor::Zeros(DType::kU8, {4, 3, 8, 8})}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("u8"));
  s = Quantize({{"x", RandomTensor({4, 3, 8, 8}, 0, 1, 1)}, {"z", RandomTensor({4}, 0, 1, 1)}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no input 'z'"));
  s = Quantize({});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing calibration data for input 'x'"));
}

TEST_F(QuantizerErrorTest, UnknownExcludeAndBadOptionsAreRefused) {
  QuantizeOptions o;
  o.exclude = {"nope"};
  absl::Status s = Quantize({{"x", RandomTensor({4, 3, 8, 8}, 0, 1, 1)}}, o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'nope'"));
  EXPECT_THAT(s.message(), HasSubstr("conv"));  // lists the quantizable layers
  QuantizeOptions bad;
  bad.calibration_batch = 0;
  EXPECT_EQ(Quantize({{"x", RandomTensor({4, 3, 8, 8}, 0, 1, 1)}}, bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeModel("not onnx", {}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuantizerOpsetTest, OldOpsetIsRaisedWhenSafeAndRefusedOtherwise) {
  OnnxBuilder ok(11);
  ok.Input("x", {-1, 3, 8, 8});
  AddConv(ok, "conv", "x", "y", 3, 4, 50);
  ok.Output("y");
  QuantizeResult r = QuantizeAndCompare(ok.Bytes(), RandomTensor({8, 3, 8, 8}, -1, 1, 51), 3);
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(r.onnx_bytes));
  EXPECT_EQ(proto.opset_import(0).version(), 13);

  OnnxBuilder old(11);  // Softmax's axis means something else before opset 13
  old.Input("x", {-1, 3, 8, 8});
  AddConv(old, "conv", "x", "c", 3, 4, 52);
  old.Node("Softmax", {"c"}, {"y"}, "softmax");
  old.Output("y");
  auto bad = QuantizeModel(old.Bytes(), {{"x", RandomTensor({8, 3, 8, 8}, -1, 1, 53)}}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(bad.status().message(), HasSubstr("softmax"));
  EXPECT_THAT(bad.status().message(), HasSubstr("opset"));
}

TEST(QuantizerTest, ProgressCoversEverySample) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8, 8});
  AddConv(b, "conv", "x", "y", 3, 4, 60);
  b.Output("y");
  QuantizeOptions o;
  o.calibration_batch = 4;
  std::vector<int64_t> done;
  o.progress = [&](int64_t d, int64_t total) {
    EXPECT_EQ(total, 10);
    done.push_back(d);
  };
  ASSERT_TRUE(QuantizeModel(b.Bytes(), {{"x", RandomTensor({10, 3, 8, 8}, -1, 1, 61)}}, o).ok());
  EXPECT_EQ(done, (std::vector<int64_t>{4, 8, 10}));
}

// Regression: a node folded at plan time (DequantizeLinear of a constant bias) took an arena
// buffer released by an earlier runtime value (the quantized input), which the QuantizeLinear
// step then overwrote on every run. Same model with the bias given as floats must agree.
TEST(PlanConstantFoldingTest, FoldedValuesKeepTheirOwnBuffers) {
  const Tensor w = RandomTensor({32, 16}, -0.3f, 0.3f, 70);
  std::vector<int32_t> bq(32);
  std::vector<float> bf(32);
  for (int i = 0; i < 32; ++i) {
    bq[i] = (i * 37) % 101 - 50;
    bf[i] = 0.01f * static_cast<float>(bq[i]);
  }
  auto build = [&](bool dq_bias) {
    OnnxBuilder b;
    b.Input("x", {-1, 16});
    b.Initializer("xs", Tensor::FromFloats({}, {0.01f}));
    Tensor xz = Tensor::Zeros(DType::kU8, {});
    xz.data_as<uint8_t>()[0] = 128;
    b.Initializer("xz", xz);
    b.Initializer("w", w);
    b.Node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
    b.Node("DequantizeLinear", {"xq", "xs", "xz"}, {"xd"});
    if (dq_bias) {
      auto q = Tensor::FromBytes(DType::kS32, {32}, bq.data(), bq.size() * 4);
      b.Initializer("bq", *q);
      b.Initializer("bs", Tensor::FromFloats({}, {0.01f}));
      b.Node("DequantizeLinear", {"bq", "bs"}, {"b"});
    } else {
      b.Initializer("b", Tensor::FromFloats({32}, bf));
    }
    b.Node("Gemm", {"xd", "w", "b"}, {"y"}).Int("transB", 1);
    b.Output("y");
    return b.Bytes();
  };
  const Tensor x = RandomTensor({8, 16}, -1, 1, 71);
  std::vector<Tensor> a = RunModel(build(true), x), b = RunModel(build(false), x);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  for (int64_t i = 0; i < a[0].num_elements(); ++i) {
    ASSERT_NEAR(a[0].data_as<float>()[i], b[0].data_as<float>()[i], 1e-5) << i;
  }
}

}  // namespace
}  // namespace octet
