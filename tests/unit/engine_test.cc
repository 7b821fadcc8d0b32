// Model loading, validation, plan caching, graph passes and concurrency of the engine, checked
// against a naive convolution computed here.
#include <omp.h>

#include <cmath>
#include <random>
#include <thread>

#include "core/model.h"
#include "core/plan.h"
#include "core/weight_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

std::vector<float> Random(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Naive NCHW convolution, stride 1, symmetric padding `pad`, no groups.
std::vector<float> NaiveConv(const std::vector<float>& x, int n, int c, int h, int w,
                             const std::vector<float>& wt, int m, int k, int pad,
                             const std::vector<float>& bias) {
  int oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  std::vector<float> y(static_cast<size_t>(n) * m * oh * ow);
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < m; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          double acc = bias.empty() ? 0 : bias[o];
          for (int ci = 0; ci < c; ++ci)
            for (int ki = 0; ki < k; ++ki)
              for (int kj = 0; kj < k; ++kj) {
                int yi = i + ki - pad, xj = j + kj - pad;
                if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;
                acc += x[((b * c + ci) * h + yi) * w + xj] * wt[((o * c + ci) * k + ki) * k + kj];
              }
          y[((b * m + o) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

constexpr int kC = 3, kH = 6, kW = 5, kM = 4, kK = 3;

OnnxBuilder ConvModel() {
  OnnxBuilder b;
  b.Input("x", {-1, kC, kH, kW});
  b.Initializer("w", {kM, kC, kK, kK}, Random(kM * kC * kK * kK, 1));
  b.Initializer("b", {kM}, Random(kM, 2));
  b.Node("Conv", {"x", "w", "b"}, {"y"}, "conv1").Ints("pads", {1, 1, 1, 1});
  b.Output("y");
  return b;
}

void ExpectNear(const Tensor& t, const std::vector<float>& ref, float tol = 1e-4f) {
  ASSERT_EQ(t.num_elements(), static_cast<int64_t>(ref.size()));
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(t.data_as<float>()[i], ref[i], tol * (1 + std::fabs(ref[i]))) << "at " << i;
  }
}

TEST(EngineTest, ConvMatchesNaiveReferenceForSeveralBatchSizes) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->inputs().size(), 1u);
  EXPECT_EQ((*model)->inputs()[0].dims[0], -1);
  EXPECT_EQ((*model)->inputs()[0].dim_names[0], "N");
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  for (int n : {1, 3, 8, 1}) {
    auto x = Random(static_cast<size_t>(n) * kC * kH * kW, 10 + n);
    auto out = (*ctx)->Run({Tensor::FromFloats({n, kC, kH, kW}, x)});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ((*out)[0].shape(), (Shape{n, kM, kH, kW}));
    ExpectNear((*out)[0],
               NaiveConv(x, n, kC, kH, kW, Random(kM * kC * kK * kK, 1), kM, kK, 1, Random(kM, 2)));
  }
}

TEST(EngineTest, PlansAreCachedPerShapeAndEvictedLeastRecentlyUsed) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok());
  auto ctx = (*model)->CreateContext({.num_threads = 1, .max_cached_plans = 2});
  ASSERT_TRUE(ctx.ok());
  Shape s1 = {1, kC, kH, kW}, s2 = {2, kC, kH, kW}, s3 = {3, kC, kH, kW};
  auto p1 = (*ctx)->PlanFor({s1});
  auto p1again = (*ctx)->PlanFor({s1});
  ASSERT_TRUE(p1.ok() && p1again.ok());
  EXPECT_EQ(*p1, *p1again);
  ASSERT_TRUE((*ctx)->PlanFor({s2}).ok());
  ASSERT_TRUE((*ctx)->PlanFor({s3}).ok());  // evicts s1
  auto p1new = (*ctx)->PlanFor({s1});
  ASSERT_TRUE(p1new.ok());
  EXPECT_FALSE((*p1new)->steps().empty());
}

TEST(EngineTest, InputsAreValidatedWithTheInputName) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok());
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  auto wrong_dim = (*ctx)->Run({Tensor::Zeros(DType::kF32, {1, kC, kH + 1, kW})});
  EXPECT_EQ(wrong_dim.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_dim.status().message(), HasSubstr("input 'x'"));
  auto wrong_rank = (*ctx)->Run({Tensor::Zeros(DType::kF32, {kC, kH, kW})});
  EXPECT_THAT(wrong_rank.status().message(), HasSubstr("rank"));
  auto wrong_type = (*ctx)->Run({Tensor::Zeros(DType::kU8, {1, kC, kH, kW})});
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("dtype"));
  auto wrong_count = (*ctx)->Run({});
  EXPECT_EQ(wrong_count.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EngineTest, BadModelsAreRefusedWithTheReason) {
  EXPECT_EQ(Model::LoadFromBytes("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Model::LoadFromBytes("not a model at all").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string good = ConvModel().Bytes();
  EXPECT_FALSE(Model::LoadFromBytes(good.substr(0, good.size() / 2)).ok());

  OnnxBuilder unknown;
  unknown.Input("x", {1, 2});
  unknown.Node("FancyOp", {"x"}, {"y"}, "my_node");
  unknown.Output("y");
  auto s = Model::LoadFromBytes(unknown.Bytes()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("my_node"));
  EXPECT_THAT(s.message(), HasSubstr("FancyOp"));

  OnnxBuilder future(99);
  future.Input("x", {1});
  future.Output("x");
  EXPECT_THAT(Model::LoadFromBytes(future.Bytes()).status().message(), HasSubstr("opset 99"));

  OnnxBuilder external = ConvModel();
  auto* w = external.proto().mutable_graph()->mutable_initializer(0);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto ext = Model::LoadFromBytes(external.Bytes()).status();
  EXPECT_THAT(ext.message(), HasSubstr("externally"));
  EXPECT_THAT(ext.message(), HasSubstr("'w'"));

  OnnxBuilder dangling;
  dangling.Input("x", {1, kC, kH, kW});
  dangling.Node("Conv", {"x", "missing_w"}, {"y"}, "conv_dangling");
  dangling.Output("y");
  auto d = Model::LoadFromBytes(dangling.Bytes()).status();
  EXPECT_THAT(d.message(), HasSubstr("missing_w"));

  OnnxBuilder bad_attr = ConvModel();
  auto* a = bad_attr.proto().mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("frobnicate");
  a->set_type(onnx::AttributeProto::INT);
  auto attr = Model::LoadFromBytes(bad_attr.Bytes()).status();
  EXPECT_THAT(attr.message(), HasSubstr("frobnicate"));
  EXPECT_THAT(attr.message(), HasSubstr("conv1"));
}

TEST(EngineTest, ConcurrentContextsGiveTheSameResults) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok());
  std::vector<std::vector<float>> inputs;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(Random(2 * kC * kH * kW, 100 + i));
    expected.push_back(NaiveConv(inputs.back(), 2, kC, kH, kW, Random(kM * kC * kK * kK, 1), kM, kK,
                                 1, Random(kM, 2)));
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto ctx = (*model)->CreateContext({.num_threads = 1});
      if (!ctx.ok()) {
        ++failures;
        return;
      }
      for (int iter = 0; iter < 50; ++iter) {
        int k = (iter + t) % 4;
        auto out = (*ctx)->Run({Tensor::FromFloats({2, kC, kH, kW}, inputs[k])});
        if (!out.ok()) {
          ++failures;
          continue;
        }
        for (size_t i = 0; i < expected[k].size(); ++i) {
          if (std::fabs((*out)[0].data_as<float>()[i] - expected[k][i]) > 1e-3f) {
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// Conv1 -> Conv2 -> Conv3 -> Add(conv3, conv1) -> Relu, a ResNet block: the passes fuse the Add
// (as a residual sum, written in place over conv1's output) and the Relu into Conv3. Checked
// against the naive convolution, with and without optimization, and with conv1 also a graph output
// (no in-place).
TEST(EngineTest, ResidualAddAndReluFuseIntoConv) {
  for (bool conv1_is_output : {false, true}) {
    OnnxBuilder b;
    b.Input("x", {-1, kC, kH, kW});
    b.Initializer("w1", {kC, kC, kK, kK}, Random(kC * kC * kK * kK, 3));
    b.Initializer("w2", {kC, kC, kK, kK}, Random(kC * kC * kK * kK, 4));
    b.Node("Conv", {"x", "w1"}, {"a"}, "conv1").Ints("pads", {1, 1, 1, 1});
    b.Initializer("w3", {kC, kC, kK, kK}, Random(kC * kC * kK * kK, 5));
    b.Node("Conv", {"a", "w2"}, {"c"}, "conv2").Ints("pads", {1, 1, 1, 1});
    b.Node("Conv", {"c", "w3"}, {"d"}, "conv3").Ints("pads", {1, 1, 1, 1});
    b.Node("Add", {"d", "a"}, {"s"}, "add");
    b.Node("Relu", {"s"}, {"y"}, "relu");
    b.Output("y");
    if (conv1_is_output) b.Output("a");
    for (bool optimize : {true, false}) {
      SCOPED_TRACE(testing::Message()
                   << "conv1_is_output=" << conv1_is_output << " optimize=" << optimize);
      auto model = Model::LoadFromBytes(b.Bytes(), {.optimize = optimize});
      ASSERT_TRUE(model.ok()) << model.status();
      if (optimize) {
        EXPECT_EQ((*model)->graph().nodes.size(), 3u) << (*model)->Describe();
      }
      auto ctx = (*model)->CreateContext();
      ASSERT_TRUE(ctx.ok());
      const int n = 2;
      auto x = Random(n * kC * kH * kW, 7);
      auto a = NaiveConv(x, n, kC, kH, kW, Random(kC * kC * kK * kK, 3), kC, kK, 1, {});
      auto c = NaiveConv(a, n, kC, kH, kW, Random(kC * kC * kK * kK, 4), kC, kK, 1, {});
      auto d = NaiveConv(c, n, kC, kH, kW, Random(kC * kC * kK * kK, 5), kC, kK, 1, {});
      std::vector<float> y(d.size());
      for (size_t i = 0; i < d.size(); ++i) y[i] = std::max(0.0f, d[i] + a[i]);
      auto out = (*ctx)->Run({Tensor::FromFloats({n, kC, kH, kW}, x)});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectNear((*out)[0], y);
      if (conv1_is_output) ExpectNear((*out)[1], a);
    }
  }
}

TEST(EngineTest, ContextOptionsAreValidated) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok());
  EXPECT_FALSE((*model)->CreateContext({.num_threads = 0}).ok());
  EXPECT_FALSE((*model)->CreateContext({.num_threads = 1, .max_cached_plans = 0}).ok());
}

// A clock for ContextOptions::clock_nanos under which every run takes `one_thread_nanos` when the
// calling thread's OpenMP team is one thread and `wide_nanos` otherwise (the context sets the team
// size of the plan it times before starting the clock).
std::function<int64_t()> FakeClock(int64_t one_thread_nanos, int64_t wide_nanos) {
  auto now = std::make_shared<int64_t>(0);
  return [=] {
    *now += omp_get_max_threads() == 1 ? one_thread_nanos : wide_nanos;
    return *now;
  };
}

TEST(EngineTest, ShortPlansKeepWhicheverThreadCountRunsFaster) {
  auto model = Model::LoadFromBytes(ConvModel().Bytes());
  ASSERT_TRUE(model.ok());
  struct Case {
    const char* what;
    ContextOptions options;
    int want_threads;
  };
  const Case cases[] = {
      {"one thread faster", {.num_threads = 2, .clock_nanos = FakeClock(1000, 5000)}, 1},
      {"two threads faster", {.num_threads = 2, .clock_nanos = FakeClock(5000, 1000)}, 2},
      // Within 3%: the caller's thread count stays.
      {"a tie", {.num_threads = 2, .clock_nanos = FakeClock(1000, 1010)}, 2},
      {"run over the budget",
       {.num_threads = 2, .tune_threads_below_micros = 4, .clock_nanos = FakeClock(1000, 5000)},
       2},
      {"tuning off",
       {.num_threads = 2, .tune_threads_below_micros = 0, .clock_nanos = FakeClock(1000, 5000)},
       2},
      {"real clock", {.num_threads = 2}, -1},  // either, but the results must not change
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto ctx = (*model)->CreateContext(c.options);
    ASSERT_TRUE(ctx.ok());
    for (int n : {1, 8}) {
      auto x = Random(static_cast<size_t>(n) * kC * kH * kW, 20 + n);
      auto out = (*ctx)->Run({Tensor::FromFloats({n, kC, kH, kW}, x)});
      ASSERT_TRUE(out.ok()) << out.status();
      ExpectNear((*out)[0], NaiveConv(x, n, kC, kH, kW, Random(kM * kC * kK * kK, 1), kM, kK, 1,
                                      Random(kM, 2)));
      auto plan = (*ctx)->PlanFor({{n, kC, kH, kW}});
      ASSERT_TRUE(plan.ok());
      if (c.want_threads > 0) {
        EXPECT_EQ((*plan)->num_threads(), c.want_threads);
      } else {
        EXPECT_THAT((*plan)->num_threads(), ::testing::AnyOf(1, 2));
      }
    }
  }
}

TEST(EngineTest, WeightCacheDropsOnlyEntriesNoPlanHolds) {
  WeightCache cache;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  int made = 0;
  auto make = [&](int64_t bytes) {
    return [&made, &eng, bytes]() -> absl::StatusOr<WeightCache::Entry> {
      ++made;
      WeightCache::Entry e;
      e.storage = Tensor::Zeros(DType::kU8, {bytes});
      e.memory = dnnl::memory({{bytes}, dnnl::memory::data_type::u8, dnnl::memory::format_tag::a},
                              eng, e.storage.data());
      return e;
    };
  };
  auto held = cache.GetOrCreate("held", make(100));
  ASSERT_TRUE(held.ok());
  Tensor pin = held->storage;  // what a plan keeps (BuildContext::KeepAlive)
  held = absl::UnknownError("released");
  ASSERT_TRUE(cache.GetOrCreate("dropped", make(30)).ok());
  EXPECT_EQ(cache.bytes(), 130);
  EXPECT_EQ(cache.DropUnused(), 30);
  EXPECT_EQ(cache.bytes(), 100);
  // The held entry is still served from the cache; the dropped one is made again.
  ASSERT_TRUE(cache.GetOrCreate("held", make(100)).ok());
  EXPECT_EQ(made, 2);
  ASSERT_TRUE(cache.GetOrCreate("dropped", make(30)).ok());
  EXPECT_EQ(made, 3);
  pin = Tensor();
  EXPECT_EQ(cache.DropUnused(), 130);
  EXPECT_EQ(cache.bytes(), 0);
}

}  // namespace
}  // namespace octet
