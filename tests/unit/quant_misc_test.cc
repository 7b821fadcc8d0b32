// octet:QAdd, QConcat and QPool on oneDNN: QDQ models whose Add/Concat/pooling the QDQ pass turns
// into int8 ops give, within one quantization step, what the same model computes when run
// literally (LoadOptions.optimize = false: FP32 ops between QuantizeLinear/DequantizeLinear),
// both on plain inputs and on convolution outputs in oneDNN's blocked layout.
#include <cmath>

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
using testing_util::Scalar;

// Q/DQ helpers over a QModelBuilder; names get _s/_z/_q/_dq suffixes.
class QdqGraph {
 public:
  QModelBuilder b;
  void Params(const std::string& name, float scale, int zp) {
    b.Init(name + "_s", Scalar(DType::kF32, scale));
    b.Init(name + "_z", Scalar(DType::kU8, zp));
  }
  std::string Qdq(const std::string& in, const std::string& name, float scale, int zp) {
    Params(name, scale, zp);
    b.Node("QuantizeLinear", {in, name + "_s", name + "_z"}, {name + "_q"});
    b.Node("DequantizeLinear", {name + "_q", name + "_s", name + "_z"}, {name + "_dq"});
    return name + "_dq";
  }
  // A 3x3 pad-1 QDQ convolution with per-channel s8 weights and no bias.
  std::string Conv(const std::string& in, const std::string& name, int m, int c, uint32_t seed) {
    Tensor w = testing_util::RandomInts(DType::kS8, {m, c, 3, 3}, -127, 127, seed);
    Tensor ws = RandomFloats({m}, 0.001f, 0.004f, seed + 1);
    b.Init(name + "_wq", w);
    b.Init(name + "_ws", ws);
    b.Init(name + "_wz", Tensor::Zeros(DType::kS8, {m}));
    auto* dq =
        b.Node("DequantizeLinear", {name + "_wq", name + "_ws", name + "_wz"}, {name + "_w"});
    QModelBuilder::Int(dq, "axis", 0);
    auto* conv = b.Node("Conv", {in, name + "_w"}, {name}, name);
    QModelBuilder::Ints(conv, "pads", {1, 1, 1, 1});
    return name;
  }
};

// Runs `bytes` optimized (int8 plan) and literally; compares within `step` (y's scale) and wants
// at least `exact_percent` of the elements equal. Off-by-one happens where float rounding order
// differs at a tie, and after a convolution (exact int8 accumulation vs FP32 convolution).
void ExpectMatchesLiteral(const std::string& bytes, const std::vector<Tensor>& inputs, float step,
                          const std::string& int8_op, int exact_percent = 95) {
  auto fast = Model::LoadFromBytes(bytes);
  ASSERT_TRUE(fast.ok()) << fast.status();
  LoadOptions literal_opts;
  literal_opts.optimize = false;
  auto literal = Model::LoadFromBytes(bytes, literal_opts);
  ASSERT_TRUE(literal.ok()) << literal.status();
  EXPECT_THAT((*fast)->Describe(), HasSubstr("octet:" + int8_op)) << (*fast)->Describe();
  ContextOptions co;
  co.num_threads = 2;
  auto ctx = *(*fast)->CreateContext(co);
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  auto plan = ctx->PlanFor(shapes);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string text = (*plan)->Describe();
  // On oneDNN (or Octet's int8 global-average loop), not the scalar reference loops, and no
  // dequantize inside.
  EXPECT_THAT(text, Not(HasSubstr("ref:int8"))) << text;
  for (const auto& step_info : (*plan)->steps()) {
    // (oneDNN's "ref:any" concat is its reorder-based one for inputs of different layouts.)
    if (step_info.op_type == int8_op && int8_op != "QConcat") {
      EXPECT_THAT(step_info.impl, Not(HasSubstr("ref"))) << text;
    }
  }
  auto got = ctx->Run(inputs);
  ASSERT_TRUE(got.ok()) << got.status();
  auto want = (*(*literal)->CreateContext())->Run(inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  const Tensor& g = (*got)[0];
  const Tensor& w = (*want)[0];
  ASSERT_EQ(g.shape(), w.shape());
  int64_t exact = 0;
  for (int64_t i = 0; i < g.num_elements(); ++i) {
    const float d = std::fabs(g.data_as<float>()[i] - w.data_as<float>()[i]);
    ASSERT_LE(d, 1.01f * step) << "element " << i << "\n" << text;
    exact += d < 1e-3f * step;
  }
  EXPECT_GE(exact, g.num_elements() * exact_percent / 100) << text;
}

TEST(QuantMiscTest, AddWithReluOnPlainInputs) {
  for (int y_zp : {0, 100}) {
    QdqGraph q;
    q.b.Input("a", DType::kF32, {2, 16, 5, 7});
    q.b.Input("b", DType::kF32, {2, 16, 5, 7});
    const std::string a = q.Qdq("a", "qa", 0.02f, 128), b = q.Qdq("b", "qb", 0.0137f, 120);
    q.b.Node("Add", {a, b}, {"sum"});
    q.b.Node("Relu", {"sum"}, {"r"});
    const std::string y = q.Qdq("r", "qy", 0.01f, y_zp);
    q.b.Node("Identity", {y}, {"out"});
    q.b.Output("out");
    ExpectMatchesLiteral(
        q.b.Bytes(),
        {RandomFloats({2, 16, 5, 7}, -2.5f, 2.5f, 1), RandomFloats({2, 16, 5, 7}, -2.0f, 2.0f, 2)},
        0.01f, "QAdd", 98);
  }
}

// Add of two convolution outputs in oneDNN's layout (conv2's quantized output is also a graph
// output, so the Add is not fused into it as a residual).
TEST(QuantMiscTest, AddOfConvolutionOutputs) {
  QdqGraph q;
  q.b.Input("x", DType::kF32, {2, 8, 6, 6});
  const std::string x = q.Qdq("x", "qx", 0.01f, 128);
  const std::string c1 = q.Qdq(q.Conv(x, "c1", 32, 8, 3), "q1", 0.02f, 128);
  const std::string c2 = q.Qdq(q.Conv(c1, "c2", 32, 32, 5), "q2", 0.03f, 128);
  q.b.Node("Add", {c1, c2}, {"sum"});
  const std::string y = q.Qdq("sum", "qy", 0.04f, 128);
  q.b.Node("Identity", {y}, {"out"});
  q.b.Node("Identity", {c2}, {"c2_out"});
  q.b.Output("out");
  q.b.Output("c2_out");
  ExpectMatchesLiteral(q.b.Bytes(), {RandomFloats({2, 8, 6, 6}, -1.2f, 1.2f, 4)}, 0.04f, "QAdd");
}

TEST(QuantMiscTest, ConcatOfConvolutionOutputsWithOwnScales) {
  for (bool same : {false, true}) {
    QdqGraph q;
    q.b.Input("x", DType::kF32, {2, 8, 6, 6});
    const std::string x = q.Qdq("x", "qx", 0.01f, 128);
    const std::string c1 = q.Qdq(q.Conv(x, "c1", 16, 8, 3), "q1", 0.03f, same ? 128 : 120);
    const std::string c2 = q.Qdq(q.Conv(x, "c2", 32, 8, 5), "q2", same ? 0.03f : 0.02f, 128);
    auto* cat = q.b.Node("Concat", {c1, c2, x}, {"cat"});
    QModelBuilder::Int(cat, "axis", 1);
    const std::string y = q.Qdq("cat", "qy", 0.03f, 128);
    q.b.Node("Identity", {y}, {"out"});
    q.b.Output("out");
    ExpectMatchesLiteral(q.b.Bytes(), {RandomFloats({2, 8, 6, 6}, -1.2f, 1.2f, 6)}, 0.03f,
                         "QConcat");
  }
}

TEST(QuantMiscTest, PoolingOfConvolutionOutputs) {
  for (const char* op : {"GlobalAveragePool", "AveragePool", "MaxPool"}) {
    QdqGraph q;
    q.b.Input("x", DType::kF32, {2, 8, 6, 6});
    const std::string x = q.Qdq("x", "qx", 0.01f, 128);
    const std::string c1 = q.Qdq(q.Conv(x, "c1", 32, 8, 3), "q1", 0.02f, 110);
    auto* pool = q.b.Node(op, {c1}, {"pool"});
    if (std::string(op) != "GlobalAveragePool") {
      QModelBuilder::Ints(pool, "kernel_shape", {3, 3});
      QModelBuilder::Ints(pool, "strides", {2, 2});
      QModelBuilder::Ints(pool, "pads", {1, 1, 1, 1});
    }
    const std::string y = q.Qdq("pool", "qy", 0.015f, 125);
    q.b.Node("Identity", {y}, {"out"});
    q.b.Output("out");
    SCOPED_TRACE(op);
    ExpectMatchesLiteral(q.b.Bytes(), {RandomFloats({2, 8, 6, 6}, -1.2f, 1.2f, 8)}, 0.015f,
                         "QPool");
  }
}

// Global average pooling straight on a quantized input: plain when the quantized value is also a
// graph output, channels-last when QuantizeLinear writes it for the pooling; u8 and s8.
TEST(QuantMiscTest, GlobalAveragePoolOnPlainAndChannelsLastInputs) {
  for (bool expose : {false, true}) {
    for (int x_zp : {0, 131}) {
      QdqGraph q;
      q.b.Input("x", DType::kF32, {3, 40, 7, 5});
      const std::string x = q.Qdq("x", "qx", 0.013f, x_zp);
      q.b.Node("GlobalAveragePool", {x}, {"pool"});
      const std::string y = q.Qdq("pool", "qy", 0.0071f, 97);
      q.b.Node("Identity", {y}, {"out"});
      q.b.Output("out");
      if (expose) {
        q.b.Node("Identity", {"qx_q"}, {"xq_out"});
        q.b.Output("xq_out", DType::kU8);
      }
      SCOPED_TRACE(::testing::Message() << "exposed " << expose << " x_zp " << x_zp);
      auto model = Model::LoadFromBytes(q.b.Bytes());
      ASSERT_TRUE(model.ok()) << model.status();
      auto ctx = (*model)->CreateContext();
      ASSERT_TRUE(ctx.ok()) << ctx.status();
      auto plan = (*ctx)->PlanFor({Shape{3, 40, 7, 5}});
      ASSERT_TRUE(plan.ok()) << plan.status();
      const std::string text = (*plan)->Describe();
      EXPECT_THAT(text, HasSubstr("octet:int8_global_average")) << text;
      EXPECT_EQ(text.find("quantize_to_nhwc") != std::string::npos, !expose) << text;
      ExpectMatchesLiteral(q.b.Bytes(), {RandomFloats({3, 40, 7, 5}, -1.5f, 1.7f, 12)}, 0.0071f,
                           "QPool");
    }
  }
}

}  // namespace
}  // namespace octet
