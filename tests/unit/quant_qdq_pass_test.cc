// The QDQ pass: a Conv -> Relu -> Conv (+ residual Add -> Relu) model in QDQ form, as written by
// `octet quantize` (u8 activations) and ONNX Runtime (s8 activations, Relu with its own Q/DQ),
// compiles to int8 layers with no dequantize/requantize between them, and matches the literal
// meaning of the QDQ graph (computed here in float) within quantization steps.
#include <algorithm>
#include <cmath>

#include "core/graph.h"
#include "core/model.h"
#include "core/plan.h"
#include "core/quant/qparams.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/quant_test_util.h"

namespace octet {
namespace {

using ::testing::HasSubstr;
using testing_util::QModelBuilder;
using testing_util::RandomFloats;
using testing_util::Scalar;

constexpr int kC = 3, kM = 8, kH = 8, kW = 8;

// Naive NCHW 3x3 convolution with padding 1 on a single image.
std::vector<float> Conv3x3(const std::vector<float>& x, int c, const std::vector<float>& w, int m,
                           const std::vector<float>& b) {
  std::vector<float> y(static_cast<size_t>(m) * kH * kW);
  for (int o = 0; o < m; ++o)
    for (int i = 0; i < kH; ++i)
      for (int j = 0; j < kW; ++j) {
        double acc = b[o];
        for (int ci = 0; ci < c; ++ci)
          for (int ki = 0; ki < 3; ++ki)
            for (int kj = 0; kj < 3; ++kj) {
              int yi = i + ki - 1, xj = j + kj - 1;
              if (yi < 0 || yi >= kH || xj < 0 || xj >= kW) continue;
              acc += x[(ci * kH + yi) * kW + xj] * w[((o * c + ci) * 3 + ki) * 3 + kj];
            }
        y[(o * kH + i) * kW + j] = static_cast<float>(acc);
      }
  return y;
}

struct QP {
  float scale;
  int zp;
  DType dtype;
};

// Q then DQ: what a QuantizeLinear -> DequantizeLinear pair does to a float.
float FakeQuant(float v, const QP& q) {
  const int lo = static_cast<int>(QMin(q.dtype)), hi = static_cast<int>(QMax(q.dtype));
  return static_cast<float>(RoundSaturate(v / q.scale, lo - q.zp, hi - q.zp)) * q.scale;
}

QP RangeParams(const std::vector<float>& v, DType dtype) {
  float lo = std::min(0.0f, *std::min_element(v.begin(), v.end()));
  float hi = std::max(0.0f, *std::max_element(v.begin(), v.end()));
  QP q{(hi - lo) / 255.0f, 0, dtype};
  q.zp = static_cast<int>(std::nearbyint(-lo / q.scale)) + (dtype == DType::kS8 ? -128 : 0);
  return q;
}

struct Layer {
  std::vector<float> w, b;    // float originals
  std::vector<float> wd, bd;  // dequantized
  Tensor wq, ws, bq;
};

Layer QuantizeLayer(int m, int c, uint32_t seed, float in_scale) {
  Layer l;
  Tensor wt = RandomFloats({m, c, 3, 3}, -0.5f, 0.5f, seed);
  Tensor bt = RandomFloats({m}, -0.2f, 0.2f, seed + 1);
  l.w.assign(wt.data_as<float>(), wt.data_as<float>() + wt.num_elements());
  l.b.assign(bt.data_as<float>(), bt.data_as<float>() + m);
  l.wq = Tensor::Zeros(DType::kS8, {m, c, 3, 3});
  l.ws = Tensor::Zeros(DType::kF32, {m});
  l.bq = Tensor::Zeros(DType::kS32, {m});
  const int per = c * 9;
  l.wd.resize(l.w.size());
  l.bd.resize(m);
  for (int o = 0; o < m; ++o) {
    float mx = 0;
    for (int i = 0; i < per; ++i) mx = std::max(mx, std::fabs(l.w[o * per + i]));
    const float s = mx / 127.0f;
    l.ws.data_as<float>()[o] = s;
    for (int i = 0; i < per; ++i) {
      int q = RoundSaturate(l.w[o * per + i] / s, -127, 127);
      l.wq.data_as<int8_t>()[o * per + i] = static_cast<int8_t>(q);
      l.wd[o * per + i] = q * s;
    }
    const float bs = in_scale * s;
    int32_t bq = static_cast<int32_t>(std::nearbyint(l.b[o] / bs));
    l.bq.data_as<int32_t>()[o] = bq;
    l.bd[o] = static_cast<float>(bq) * bs;
  }
  return l;
}

Tensor ZpTensor(const QP& q) { return Scalar(q.dtype, q.zp); }

struct Variant {
  DType act;              // activation type
  bool relu_own_qdq;      // ONNX Runtime style: Conv -> Q -> DQ -> Relu -> Q -> DQ
  bool residual;          // conv2 output + relu output, then Relu
};

class QdqPassTest : public ::testing::TestWithParam<Variant> {};

TEST_P(QdqPassTest, Int8LayersFlowWithoutDequantizeAndMatchReference) {
  const Variant v = GetParam();
  Tensor xt = RandomFloats({1, kC, kH, kW}, -1.0f, 1.0f, 42);
  std::vector<float> x(xt.data_as<float>(), xt.data_as<float>() + xt.num_elements());
  // Literal float meaning of the QDQ graph; scales come from the ranges seen (calibration).
  QP qx = RangeParams(x, v.act);
  std::vector<float> xd(x.size());
  for (size_t i = 0; i < x.size(); ++i) xd[i] = FakeQuant(x[i], qx) ;
  Layer l1 = QuantizeLayer(kM, kC, 7, qx.scale);
  std::vector<float> c1 = Conv3x3(xd, kC, l1.wd, kM, l1.bd);
  QP qc1 = RangeParams(c1, v.act);  // only used when Relu has its own Q/DQ
  std::vector<float> r1(c1.size());
  for (size_t i = 0; i < c1.size(); ++i) {
    float t = v.relu_own_qdq ? FakeQuant(c1[i], qc1) : c1[i];
    r1[i] = std::max(t, 0.0f);
  }
  QP q1 = RangeParams(r1, v.act);
  for (float& t : r1) t = FakeQuant(t, q1);
  Layer l2 = QuantizeLayer(kM, kM, 9, q1.scale);
  std::vector<float> c2 = Conv3x3(r1, kM, l2.wd, kM, l2.bd);
  QP q2 = RangeParams(c2, v.act);
  std::vector<float> out(c2.size());
  QP q3 = q2;
  if (v.residual) {
    for (size_t i = 0; i < c2.size(); ++i) out[i] = std::max(FakeQuant(c2[i], q2) + r1[i], 0.0f);
    q3 = RangeParams(out, v.act);
  } else {
    out = c2;
  }
  for (float& t : out) t = FakeQuant(t, q3);

  // The same as an ONNX QDQ model.
  QModelBuilder b;
  b.Input("x", DType::kF32, {1, kC, kH, kW});
  auto qparams = [&](const std::string& name, const QP& q) {
    b.Init(name + "_s", Scalar(DType::kF32, q.scale));
    b.Init(name + "_z", ZpTensor(q));
  };
  auto qdq = [&](const std::string& in, const std::string& name) {
    b.Node("QuantizeLinear", {in, name + "_s", name + "_z"}, {name + "_q"});
    b.Node("DequantizeLinear", {name + "_q", name + "_s", name + "_z"}, {name + "_dq"});
    return name + "_dq";
  };
  auto weights = [&](const std::string& name, const Layer& l, float in_scale) {
    b.Init(name + "_wq", l.wq);
    b.Init(name + "_ws", l.ws);
    b.Init(name + "_wz", Tensor::Zeros(DType::kS8, {l.ws.num_elements()}));
    auto* n = b.Node("DequantizeLinear", {name + "_wq", name + "_ws", name + "_wz"}, {name + "_w"});
    QModelBuilder::Int(n, "axis", 0);
    Tensor bs = Tensor::Zeros(DType::kF32, {l.ws.num_elements()});
    for (int64_t i = 0; i < bs.num_elements(); ++i) bs.data_as<float>()[i] = in_scale * l.ws.data_as<float>()[i];
    b.Init(name + "_bq", l.bq);
    b.Init(name + "_bs", bs);
    n = b.Node("DequantizeLinear", {name + "_bq", name + "_bs"}, {name + "_b"});
    QModelBuilder::Int(n, "axis", 0);
  };
  qparams("x", qx);
  std::string cur = qdq("x", "x");
  weights("c1", l1, qx.scale);
  auto* conv = b.Node("Conv", {cur, "c1_w", "c1_b"}, {"c1"}, "conv1");
  QModelBuilder::Ints(conv, "pads", {1, 1, 1, 1});
  cur = "c1";
  if (v.relu_own_qdq) {
    qparams("qc1", qc1);
    cur = qdq(cur, "qc1");
  }
  b.Node("Relu", {cur}, {"r1"}, "relu1");
  qparams("r1", q1);
  const std::string r1dq = qdq("r1", "r1");
  weights("c2", l2, q1.scale);
  conv = b.Node("Conv", {r1dq, "c2_w", "c2_b"}, {"c2"}, "conv2");
  QModelBuilder::Ints(conv, "pads", {1, 1, 1, 1});
  qparams("c2", q2);
  cur = qdq("c2", "c2");
  if (v.residual) {
    b.Node("Add", {cur, r1dq}, {"sum"}, "add");
    b.Node("Relu", {"sum"}, {"r3"}, "relu3");
    qparams("r3", q3);
    cur = qdq("r3", "r3");
  }
  b.Node("Identity", {cur}, {"y"}, "out");
  b.Output("y");

  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string graph = (*model)->Describe();
  EXPECT_THAT(graph, HasSubstr("octet:QConv 'conv1' [int8]")) << graph;
  EXPECT_THAT(graph, HasSubstr("octet:QConv 'conv2' [int8]")) << graph;
  // Weights held as int8 after load: a quarter of their FP32 size (plus small biases/scales).
  EXPECT_LT((*model)->weight_bytes(), (*model)->fp32_weight_bytes() / 2);
  auto ctx = *(*model)->CreateContext();
  auto plan = ctx->PlanFor({Shape{1, kC, kH, kW}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> ops;
  for (const auto& step : (*plan)->steps()) ops.push_back(step.op_type);
  const std::string plan_text = (*plan)->Describe();
  auto first = std::find(ops.begin(), ops.end(), "QConv");
  auto last = std::find(ops.rbegin(), ops.rend(), "QConv");
  ASSERT_NE(first, ops.end()) << plan_text;
  ASSERT_NE(first, last.base() - 1) << plan_text;
  for (auto it = first; it != last.base(); ++it) {
    EXPECT_NE(*it, "QuantizeLinear") << plan_text;
    EXPECT_NE(*it, "DequantizeLinear") << plan_text;
  }
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "QuantizeLinear"), 1) << plan_text;
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "DequantizeLinear"), 1) << plan_text;
  EXPECT_THAT(plan_text, Not(HasSubstr("ref:int8"))) << plan_text;

  auto y = ctx->Run({xt});
  ASSERT_TRUE(y.ok()) << y.status();
  const Tensor& got = (*y)[0];
  ASSERT_EQ(got.num_elements(), static_cast<int64_t>(out.size()));
  int exact = 0, within_one = 0;
  double total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const float d = std::fabs(got.data_as<float>()[i] - out[i]);
    // Fusion skips the intermediate rounding of conv2's output (residual variant): 2 steps.
    ASSERT_LE(d, 2.01f * q3.scale) << "element " << i << " got " << got.data_as<float>()[i]
                                   << " want " << out[i] << "\n" << plan_text;
    exact += d < 1e-6f;
    within_one += d <= 1.01f * q3.scale;
    total += d;
  }
  const int n = static_cast<int>(out.size());
  // Each skipped intermediate rounding moves a few elements by one more step.
  EXPECT_GE(within_one, n * 95 / 100);
  EXPECT_LE(total / n, 0.4 * q3.scale);
  // Without skipped intermediate roundings the int8 plan computes the QDQ graph's formula.
  if (!v.residual && !v.relu_own_qdq) {
    EXPECT_GE(exact, n * 9 / 10);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, QdqPassTest,
                         ::testing::Values(Variant{DType::kU8, false, false},
                                           Variant{DType::kU8, false, true},
                                           Variant{DType::kS8, true, false},
                                           Variant{DType::kS8, true, true}),
                         [](const ::testing::TestParamInfo<Variant>& i) {
                           return std::string(i.param.act == DType::kU8 ? "U8" : "S8") +
                                  (i.param.relu_own_qdq ? "ReluQdq" : "") +
                                  (i.param.residual ? "Residual" : "");
                         });

}  // namespace
}  // namespace octet
