// Gemm/MatMul/pooling/normalization/ConvTranspose behaviour the ONNX node tests do not reach:
// fused activations, constant weights in oneDNN's own layouts, blocked layouts flowing between
// convolutions, one context serving several batch sizes. Checked against loops written here.
#include <algorithm>
#include <cmath>
#include <random>

#include "core/dnnl_util.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

std::vector<float> Random(int64_t n, int seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data_as<float>(), t.data_as<float>() + t.num_elements());
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-4 * std::fabs(want[i])) << what << " element " << i;
  }
}

// Loads `b` and runs it; the status of whichever fails first (static shapes build at load).
absl::Status LoadAndRunStatus(const OnnxBuilder& b, const std::vector<Tensor>& inputs) {
  auto model = Model::LoadFromBytes(b.Bytes());
  if (!model.ok()) return model.status();
  auto ctx = (*model)->CreateContext();
  if (!ctx.ok()) return ctx.status();
  return (*ctx)->Run(inputs).status();
}

// Loads `b`, runs it once on `inputs` and returns the outputs.
std::vector<Tensor> RunModel(const OnnxBuilder& b, const std::vector<Tensor>& inputs,
                             std::shared_ptr<const Model>* model_out = nullptr) {
  auto model = Model::LoadFromBytes(b.Bytes());
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto ctx = (*model)->CreateContext();
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  auto out = (*ctx)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  if (model_out != nullptr) *model_out = *model;
  return out.ok() ? *out : std::vector<Tensor>{};
}

bool HasPostOps(const Model& m, const std::string& op_type) {
  for (const Node& n : m.graph().nodes) {
    if (n.op_type == op_type && !n.post_ops.empty()) return true;
  }
  return false;
}

// Y = max(0, alpha * A' B' + beta * C) with C broadcast from [cm, cn].
std::vector<float> RefGemmRelu(const std::vector<float>& a, const std::vector<float>& b,
                               const std::vector<float>& c, int64_t m, int64_t k, int64_t n,
                               bool ta, bool tb, float alpha, float beta, int64_t cm, int64_t cn) {
  std::vector<float> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        acc += static_cast<double>(ta ? a[p * m + i] : a[i * k + p]) *
               (tb ? b[j * k + p] : b[p * n + j]);
      }
      double v = alpha * acc;
      if (!c.empty()) v += beta * c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      y[i * n + j] = static_cast<float>(std::max(0.0, v));
    }
  }
  return y;
}

struct GemmCase {
  bool ta, tb;
  float alpha, beta;
  int64_t cm, cn;  // C shape (0, 0 = no C)
  bool b_const;
};

TEST(GemmTest, FusedReluMatchesHandComputed) {
  const int64_t m = 5, k = 7, n = 6;
  const std::vector<GemmCase> cases = {
      {false, false, 1.0f, 1.0f, 1, n, true},    // inner_product fast path, [N] bias
      {false, true, 1.0f, 1.0f, 1, n, true},     // fast path, transB
      {false, false, 1.0f, 0.5f, 1, 1, true},    // fast path, scalar C expanded and scaled
      {false, false, 1.0f, 1.0f, 0, 0, true},    // fast path, no C
      {true, true, 0.5f, 2.0f, m, 1, true},      // matmul: alpha, beta, [M,1] C
      {true, false, 1.5f, 1.0f, m, n, false},    // matmul: runtime B, full C
      {false, false, 2.0f, -1.0f, 1, n, false},  // matmul: negative beta
  };
  for (const GemmCase& gc : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "transA " << gc.ta << " transB " << gc.tb << " alpha " << gc.alpha << " beta "
                 << gc.beta << " C [" << gc.cm << "," << gc.cn << "] constB " << gc.b_const);
    std::vector<float> a = Random(m * k, 1), b = Random(k * n, 2), c = Random(gc.cm * gc.cn, 3);
    OnnxBuilder builder;
    builder.Input("A", gc.ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k});
    const Shape b_shape = gc.tb ? Shape{n, k} : Shape{k, n};
    if (gc.b_const) {
      builder.Initializer("B", b_shape, b);
    } else {
      builder.Input("B", b_shape);
    }
    std::vector<std::string> ins = {"A", "B"};
    if (gc.cm > 0) {
      // A [1, N] C is given as the 1-D [N] ONNX exporters emit.
      builder.Initializer("C", gc.cm == 1 && gc.cn == n ? Shape{n} : Shape{gc.cm, gc.cn}, c);
      ins.push_back("C");
    }
    builder.Node("Gemm", ins, {"g"})
        .Int("transA", gc.ta)
        .Int("transB", gc.tb)
        .Float("alpha", gc.alpha)
        .Float("beta", gc.beta);
    builder.Node("Relu", {"g"}, {"y"});
    builder.Output("y");
    std::vector<Tensor> inputs = {Tensor::FromFloats(gc.ta ? Shape{k, m} : Shape{m, k}, a)};
    if (!gc.b_const) inputs.push_back(Tensor::FromFloats(b_shape, b));
    std::shared_ptr<const Model> model;
    auto out = RunModel(builder, inputs, &model);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(HasPostOps(*model, "Gemm")) << "Relu was not fused";
    std::vector<float> want = RefGemmRelu(a, b, gc.cm > 0 ? c : std::vector<float>{}, m, k, n,
                                          gc.ta, gc.tb, gc.alpha, gc.beta, gc.cm, gc.cn);
    // The case must exercise the activation: some pre-activation values are negative.
    EXPECT_GT(std::count(want.begin(), want.end(), 0.0f), 0);
    ExpectNear(Values(out[0]), want, "Gemm+Relu");
  }
}

// C = A B on explicit batch indices (numpy broadcasting done by the caller).
std::vector<float> RefBatchedMatMul(const std::vector<float>& a, const std::vector<float>& b,
                                    int64_t batch, bool a_batched, bool b_batched, int64_t m,
                                    int64_t k, int64_t n, bool relu) {
  std::vector<float> y(batch * m * n);
  for (int64_t t = 0; t < batch; ++t) {
    const float* ap = a.data() + (a_batched ? t * m * k : 0);
    const float* bp = b.data() + (b_batched ? t * k * n : 0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(ap[i * k + p]) * bp[p * n + j];
        y[(t * m + i) * n + j] = static_cast<float>(relu ? std::max(0.0, acc) : acc);
      }
    }
  }
  return y;
}

TEST(MatMulTest, BatchedWithConstantWeightsAndFusedRelu) {
  const int64_t m = 3, k = 8, n = 5;
  std::vector<float> a = Random(2 * m * k, 4), b = Random(k * n, 5);
  OnnxBuilder builder;
  builder.Input("A", {-1, m, k});
  builder.Initializer("B", {k, n}, b);
  builder.Node("MatMul", {"A", "B"}, {"mm"});
  builder.Node("Relu", {"mm"}, {"y"});
  builder.Output("y");
  std::shared_ptr<const Model> model;
  auto out = RunModel(builder, {Tensor::FromFloats({2, m, k}, a)}, &model);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(HasPostOps(*model, "MatMul"));
  EXPECT_EQ(out[0].shape(), (Shape{2, m, n}));
  std::vector<float> want = RefBatchedMatMul(a, b, 2, true, false, m, k, n, true);
  EXPECT_GT(std::count(want.begin(), want.end(), 0.0f), 0);
  ExpectNear(Values(out[0]), want, "MatMul+Relu");
}

// MatMul + Add(constant [N]) + Relu (a Linear layer as exporters write it) is one matmul with a
// bias and a ReLU; a bias that could change the output's shape ([1, N] on a 1-D A) is not fused.
TEST(MatMulTest, ConstantBiasAddFusesIntoMatMul) {
  const int64_t m = 3, k = 8, n = 5;
  std::vector<float> a = Random(2 * m * k, 11), b = Random(k * n, 12), c = Random(n, 13);
  for (bool bias_first : {false, true}) {
    SCOPED_TRACE(bias_first ? "Add(c, AB)" : "Add(AB, c)");
    OnnxBuilder builder;
    builder.Input("A", {-1, m, k});
    builder.Initializer("B", {k, n}, b);
    builder.Initializer("c", {n}, c);
    builder.Node("MatMul", {"A", "B"}, {"mm"});
    builder.Node(
        "Add",
        bias_first ? std::vector<std::string>{"c", "mm"} : std::vector<std::string>{"mm", "c"},
        {"s"});
    builder.Node("Relu", {"s"}, {"y"});
    builder.Output("y");
    std::shared_ptr<const Model> model;
    auto out = RunModel(builder, {Tensor::FromFloats({2, m, k}, a)}, &model);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(model->graph().nodes.size(), 1u) << model->Describe();
    EXPECT_EQ(model->graph().nodes[0].inputs.size(), 3u) << model->Describe();
    EXPECT_TRUE(HasPostOps(*model, "MatMul"));
    std::vector<float> want = RefBatchedMatMul(a, b, 2, true, false, m, k, n, false);
    for (size_t i = 0; i < want.size(); ++i) want[i] = std::max(0.0f, want[i] + c[i % n]);
    EXPECT_GT(std::count(want.begin(), want.end(), 0.0f), 0);
    ExpectNear(Values(out[0]), want, "MatMul+bias+Relu");
  }
  {
    // A [K] x B [K, N] + c [1, N] = [1, N]: the Add broadcasts, so it stays a separate node.
    OnnxBuilder builder;
    builder.Input("A", {k});
    builder.Initializer("B", {k, n}, b);
    builder.Initializer("c", {1, n}, c);
    builder.Node("MatMul", {"A", "B"}, {"mm"});
    builder.Node("Add", {"mm", "c"}, {"y"});
    builder.Output("y");
    std::shared_ptr<const Model> model;
    std::vector<float> a1(a.begin(), a.begin() + k);
    auto out = RunModel(builder, {Tensor::FromFloats({k}, a1)}, &model);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(model->graph().nodes.size(), 2u) << model->Describe();
    EXPECT_EQ(out[0].shape(), (Shape{1, n}));
    std::vector<float> want = RefBatchedMatMul(a1, b, 1, false, false, 1, k, n, false);
    for (int64_t j = 0; j < n; ++j) want[j] += c[j];
    ExpectNear(Values(out[0]), want, "MatMul + [1, N] Add");
  }
}

TEST(MatMulTest, BroadcastsBatchDimensionsAndOneDimensionalOperands) {
  const int64_t m = 3, k = 4, n = 2;
  {
    // A [M, K] (broadcast) x B [2, K, N].
    std::vector<float> a = Random(m * k, 6), b = Random(2 * k * n, 7);
    OnnxBuilder builder;
    builder.Input("A", {m, k}).Input("B", {2, k, n});
    builder.Node("MatMul", {"A", "B"}, {"y"});
    builder.Output("y");
    auto out = RunModel(builder, {Tensor::FromFloats({m, k}, a), Tensor::FromFloats({2, k, n}, b)});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].shape(), (Shape{2, m, n}));
    ExpectNear(Values(out[0]), RefBatchedMatMul(a, b, 2, false, true, m, k, n, false), "bcast A");
  }
  {
    // A [K] x B [2, K, N] -> [2, N];  A [2, M, K] x B [K] -> [2, M].
    std::vector<float> a = Random(k, 8), b = Random(2 * k * n, 9), a2 = Random(2 * m * k, 10);
    OnnxBuilder builder;
    builder.Input("A", {k}).Input("B", {2, k, n}).Input("A2", {2, m, k}).Input("v", {k});
    builder.Node("MatMul", {"A", "B"}, {"y1"});
    builder.Node("MatMul", {"A2", "v"}, {"y2"});
    builder.Output("y1").Output("y2");
    auto out = RunModel(builder, {Tensor::FromFloats({k}, a), Tensor::FromFloats({2, k, n}, b),
                                  Tensor::FromFloats({2, m, k}, a2), Tensor::FromFloats({k}, a)});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].shape(), (Shape{2, n}));
    EXPECT_EQ(out[1].shape(), (Shape{2, m}));
    ExpectNear(Values(out[0]), RefBatchedMatMul(a, b, 2, false, true, 1, k, n, false), "1-D A");
    ExpectNear(Values(out[1]), RefBatchedMatMul(a2, a, 2, true, false, m, k, 1, false), "1-D B");
  }
  {
    OnnxBuilder builder;
    builder.Input("A", {2, m, k}).Input("B", {3, k, n});
    builder.Node("MatMul", {"A", "B"}, {"y"});
    builder.Output("y");
    absl::Status s = LoadAndRunStatus(
        builder, {Tensor::Zeros(DType::kF32, {2, m, k}), Tensor::Zeros(DType::kF32, {3, k, n})});
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.message()), HasSubstr("do not broadcast"));
  }
}

// NCHW tensors for the reference loops.
struct Nchw {
  int64_t n, c, h, w;
  std::vector<float> v;
  float at(int64_t a, int64_t b, int64_t y, int64_t x) const {
    return v[((a * c + b) * h + y) * w + x];
  }
};

// Conv2d with symmetric padding `pad`, stride `s`, groups, optional ReLU.
Nchw RefConv(const Nchw& x, const std::vector<float>& w, const std::vector<float>& bias, int64_t m,
             int64_t kh, int64_t kw, int64_t pad, int64_t s, int64_t groups, bool relu) {
  const int64_t cg = x.c / groups, mg = m / groups;
  Nchw y{x.n, m, (x.h + 2 * pad - kh) / s + 1, (x.w + 2 * pad - kw) / s + 1, {}};
  y.v.resize(y.n * y.c * y.h * y.w);
  for (int64_t b = 0; b < x.n; ++b) {
    for (int64_t oc = 0; oc < m; ++oc) {
      const int64_t gi = oc / mg;
      for (int64_t oy = 0; oy < y.h; ++oy) {
        for (int64_t ox = 0; ox < y.w; ++ox) {
          double acc = bias.empty() ? 0 : bias[oc];
          for (int64_t ic = 0; ic < cg; ++ic) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                acc += static_cast<double>(x.at(b, gi * cg + ic, iy, ix)) *
                       w[((oc * cg + ic) * kh + ky) * kw + kx];
              }
            }
          }
          y.v[((b * m + oc) * y.h + oy) * y.w + ox] =
              static_cast<float>(relu ? std::max(0.0, acc) : acc);
        }
      }
    }
  }
  return y;
}

Nchw RefMaxPool(const Nchw& x, int64_t k, int64_t s) {
  Nchw y{x.n, x.c, (x.h - k) / s + 1, (x.w - k) / s + 1, {}};
  y.v.resize(y.n * y.c * y.h * y.w);
  for (int64_t b = 0; b < x.n; ++b) {
    for (int64_t c = 0; c < x.c; ++c) {
      for (int64_t oy = 0; oy < y.h; ++oy) {
        for (int64_t ox = 0; ox < y.w; ++ox) {
          float best = -INFINITY;
          for (int64_t ky = 0; ky < k; ++ky) {
            for (int64_t kx = 0; kx < k; ++kx)
              best = std::max(best, x.at(b, c, oy * s + ky, ox * s + kx));
          }
          y.v[((b * y.c + c) * y.h + oy) * y.w + ox] = best;
        }
      }
    }
  }
  return y;
}

// y = scale * (x - mean) / sqrt(var + eps) + shift, per channel.
Nchw RefBatchNorm(Nchw x, const std::vector<float>& scale, const std::vector<float>& shift,
                  const std::vector<float>& mean, const std::vector<float>& var, float eps) {
  for (int64_t b = 0; b < x.n; ++b) {
    for (int64_t c = 0; c < x.c; ++c) {
      for (int64_t i = 0; i < x.h * x.w; ++i) {
        float& v = x.v[(b * x.c + c) * x.h * x.w + i];
        v = static_cast<float>(
            scale[c] * (v - mean[c]) / std::sqrt(static_cast<double>(var[c]) + eps) + shift[c]);
      }
    }
  }
  return x;
}

// Conv(+Relu) -> BatchNormalization -> MaxPool -> Conv -> GlobalAveragePool. The first conv's
// output is in oneDNN's blocked layout; BN and pooling work in it (no reorders back to NCHW) and
// the second conv consumes it directly. One context runs batch 1 and batch 8.
class BlockedFlowTest : public ::testing::Test {
 protected:
  static constexpr int64_t kC = 3, kM1 = 16, kM2 = 32, kH = 12;
  void SetUp() override {
    w1_ = Random(kM1 * kC * 9, 11);
    b1_ = Random(kM1, 12);
    w2_ = Random(kM2 * kM1 * 9, 13);
    b2_ = Random(kM2, 14);
    scale_ = Random(kM1, 15);
    shift_ = Random(kM1, 16);
    mean_ = Random(kM1, 17);
    var_ = Random(kM1, 18);
    for (float& v : var_) v = std::fabs(v) + 0.1f;
    builder_.Input("x", {-1, kC, kH, kH});
    builder_.Initializer("w1", {kM1, kC, 3, 3}, w1_).Initializer("b1", {kM1}, b1_);
    builder_.Initializer("w2", {kM2, kM1, 3, 3}, w2_).Initializer("b2", {kM2}, b2_);
    builder_.Initializer("s", {kM1}, scale_).Initializer("t", {kM1}, shift_);
    builder_.Initializer("mu", {kM1}, mean_).Initializer("var", {kM1}, var_);
    builder_.Node("Conv", {"x", "w1", "b1"}, {"c1"}).Ints("pads", {1, 1, 1, 1});
    builder_.Node("Relu", {"c1"}, {"r1"});
    builder_.Node("BatchNormalization", {"r1", "s", "t", "mu", "var"}, {"bn"})
        .Float("epsilon", 1e-3f);
    builder_.Node("MaxPool", {"bn"}, {"p"}).Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
    builder_.Node("Conv", {"p", "w2", "b2"}, {"c2"}).Ints("pads", {1, 1, 1, 1});
    builder_.Node("GlobalAveragePool", {"c2"}, {"g"});
    builder_.Output("c2").Output("g");
  }

  // Reference outputs (c2, g) for input x of batch n.
  std::pair<std::vector<float>, std::vector<float>> Reference(const std::vector<float>& x,
                                                              int64_t n) {
    Nchw c1 = RefConv(Nchw{n, kC, kH, kH, x}, w1_, b1_, kM1, 3, 3, 1, 1, 1, true);
    Nchw p = RefMaxPool(RefBatchNorm(c1, scale_, shift_, mean_, var_, 1e-3f), 2, 2);
    Nchw c2 = RefConv(p, w2_, b2_, kM2, 3, 3, 1, 1, 1, false);
    std::vector<float> g(n * kM2);
    for (int64_t i = 0; i < n * kM2; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < c2.h * c2.w; ++j) sum += c2.v[i * c2.h * c2.w + j];
      g[i] = static_cast<float>(sum / (c2.h * c2.w));
    }
    return {c2.v, g};
  }

  OnnxBuilder builder_;
  std::vector<float> w1_, b1_, w2_, b2_, scale_, shift_, mean_, var_;
};

TEST_F(BlockedFlowTest, MatchesUnfusedReferenceAtBatch1And8InOneContext) {
  auto model = Model::LoadFromBytes(builder_.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext({.num_threads = 2});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  std::vector<float> x8 = Random(8 * kC * kH * kH, 19);
  for (int64_t n : {1, 8, 1}) {
    SCOPED_TRACE(::testing::Message() << "batch " << n);
    std::vector<float> x(x8.begin(), x8.begin() + n * kC * kH * kH);
    auto out = (*ctx)->Run({Tensor::FromFloats({n, kC, kH, kH}, x)});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 2u);
    EXPECT_EQ((*out)[1].shape(), (Shape{n, kM2, 1, 1}));
    auto [c2, g] = Reference(x, n);
    ExpectNear(Values((*out)[0]), c2, "conv2");
    ExpectNear(Values((*out)[1]), g, "global average pool");
  }
  // Batch 1's results are batch 8's first row (same weights, separate plans).
  auto one = (*ctx)->Run({Tensor::FromFloats(
      {1, kC, kH, kH}, std::vector<float>(x8.begin(), x8.begin() + kC * kH * kH))});
  auto eight = (*ctx)->Run({Tensor::FromFloats({8, kC, kH, kH}, x8)});
  ASSERT_TRUE(one.ok() && eight.ok());
  const std::vector<float> all = Values((*eight)[1]);
  std::vector<float> first(all.begin(), all.begin() + kM2);
  ExpectNear(Values((*one)[1]), first, "batch 1 vs row 0 of batch 8");

  // The layout really is blocked between the convolutions: no reorder before BN, MaxPool or the
  // second Conv.
  auto plan = (*ctx)->PlanFor({Shape{8, kC, kH, kH}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& steps = (*plan)->steps();
  std::string seq;
  for (const auto& s : steps) seq += s.op_type + " ";
  EXPECT_THAT(seq, HasSubstr("Conv BatchNormalization MaxPool Conv")) << (*plan)->Describe();
  const PlanValue* pooled = (*plan)->FindValue("p");
  ASSERT_NE(pooled, nullptr);
  // oneDNN picks channels-last or nChw16c depending on the ISA: anything but plain NCHW.
  EXPECT_FALSE(IsPlain(pooled->md)) << "MaxPool output is plain NCHW\n" << (*plan)->Describe();
}

TEST(PoolTest, AveragePoolCeilModeCountIncludePadDivisor) {
  // Input 1x1x4x4 of ones-through-16, kernel 3, stride 2, pads 1, ceil_mode: the output is 3x3;
  // the last window starts at 3 (covers 3..5) and its divisor counts positions up to
  // in + pad_end = 5 (ONNX/ORT), i.e. 2 columns, not the 3 of a full window.
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
  OnnxBuilder builder(13);
  builder.Input("x", {1, 1, 4, 4});
  builder.Node("AveragePool", {"x"}, {"y"})
      .Ints("kernel_shape", {3, 3})
      .Ints("strides", {2, 2})
      .Ints("pads", {1, 1, 1, 1})
      .Int("ceil_mode", 1)
      .Int("count_include_pad", 1);
  builder.Output("y");
  auto out = RunModel(builder, {Tensor::FromFloats({1, 1, 4, 4}, x)});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 3, 3}));
  // Hand computed: rows/cols windows [-1,1], [1,3], [3,4(+pad 5)] with divisors 3, 3, 2 per axis.
  auto sum = [&](int r0, int r1, int c0, int c1) {
    float s = 0;
    for (int r = std::max(r0, 0); r <= std::min(r1, 3); ++r) {
      for (int c = std::max(c0, 0); c <= std::min(c1, 3); ++c) s += x[r * 4 + c];
    }
    return s;
  };
  const int lo[3] = {-1, 1, 3}, hi[3] = {1, 3, 4}, div[3] = {3, 3, 2};
  std::vector<float> want;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) want.push_back(sum(lo[i], hi[i], lo[j], hi[j]) / (div[i] * div[j]));
  }
  ExpectNear(Values(out[0]), want, "AveragePool");
}

TEST(ConvTransposeTest, GroupedWithStridesMatchesScatterReference) {
  // X [1, 4, 3, 3], W [C=4, M/g=3, 2, 3], group 2, strides 2 -> Y [1, 6, 6, 7].
  const int64_t c = 4, mg = 3, g = 2, kh = 2, kw = 3, h = 3, w = 3, s = 2;
  std::vector<float> x = Random(c * h * w, 20), wt = Random(c * mg * kh * kw, 21),
                     b = Random(g * mg, 22);
  OnnxBuilder builder;
  builder.Input("x", {1, c, h, w});
  builder.Initializer("w", {c, mg, kh, kw}, wt).Initializer("b", {g * mg}, b);
  builder.Node("ConvTranspose", {"x", "w", "b"}, {"y"}).Int("group", g).Ints("strides", {s, s});
  builder.Output("y");
  auto out = RunModel(builder, {Tensor::FromFloats({1, c, h, w}, x)});
  ASSERT_EQ(out.size(), 1u);
  const int64_t oh = (h - 1) * s + kh, ow = (w - 1) * s + kw;
  ASSERT_EQ(out[0].shape(), (Shape{1, g * mg, oh, ow}));
  std::vector<double> want(g * mg * oh * ow);
  for (int64_t oc = 0; oc < g * mg; ++oc) {
    for (int64_t i = 0; i < oh * ow; ++i) want[oc * oh * ow + i] = b[oc];
  }
  const int64_t cg = c / g;
  for (int64_t ic = 0; ic < c; ++ic) {
    const int64_t gi = ic / cg;
    for (int64_t m = 0; m < mg; ++m) {
      for (int64_t iy = 0; iy < h; ++iy) {
        for (int64_t ix = 0; ix < w; ++ix) {
          for (int64_t ky = 0; ky < kh; ++ky) {
            for (int64_t kx = 0; kx < kw; ++kx) {
              want[((gi * mg + m) * oh + iy * s + ky) * ow + ix * s + kx] +=
                  static_cast<double>(x[(ic * h + iy) * w + ix]) *
                  wt[((ic * mg + m) * kh + ky) * kw + kx];
            }
          }
        }
      }
    }
  }
  ExpectNear(Values(out[0]), std::vector<float>(want.begin(), want.end()), "ConvTranspose");
}

TEST(PoolTest, MaxPoolIndicesOfIntegerInputAreRefused) {
  OnnxBuilder builder(12);
  builder.Input("x", {1, 1, 4, 4}, DType::kU8);
  builder.Node("MaxPool", {"x"}, {"y", "i"}).Ints("kernel_shape", {2, 2});
  builder.Output("y", DType::kU8).Output("i", DType::kS64);
  absl::Status status = LoadAndRunStatus(builder, {Tensor::Zeros(DType::kU8, {1, 1, 4, 4})});
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("Indices"));
}

}  // namespace
}  // namespace octet
