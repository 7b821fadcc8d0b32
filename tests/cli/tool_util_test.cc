// Unit tests of the `octet` tool's argument parser and helpers.
#include "core/tool/tool_util.h"

#include <string>
#include <vector>

#include "core/tool/args.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/onnx_builder.h"

namespace octet::tool {
namespace {

using ::testing::HasSubstr;

TEST(SafeFileNameTest, KeepsSafeCharactersAndReplacesTheRest) {
  std::vector<std::string> taken;
  EXPECT_EQ(SafeFileName("logits", &taken), "logits");
  EXPECT_EQ(SafeFileName("out/probs:0", &taken), "out_probs_0");
  EXPECT_EQ(SafeFileName("a b\tc\\d", &taken), "a_b_c_d");
  EXPECT_EQ(SafeFileName("v1.2-x_y", &taken), "v1.2-x_y");
}

TEST(SafeFileNameTest, NoHiddenOrParentNamesNoEmptyNoClash) {
  std::vector<std::string> taken;
  EXPECT_EQ(SafeFileName("..", &taken), "_.");
  EXPECT_EQ(SafeFileName(".", &taken), "_");
  EXPECT_EQ(SafeFileName("../x", &taken), "_._x");
  EXPECT_EQ(SafeFileName("", &taken), "output");
  EXPECT_EQ(SafeFileName("a/b", &taken), "a_b");
  EXPECT_EQ(SafeFileName("a:b", &taken), "a_b_2");
  EXPECT_EQ(SafeFileName("a?b", &taken), "a_b_3");
  EXPECT_EQ(SafeFileName(std::string(500, 'z'), &taken).size(), 200u);
}

TEST(ParseShapeTextTest, ParsesAndRejects) {
  EXPECT_EQ(*ParseShapeText("1x3x224x224"), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(*ParseShapeText("7"), (Shape{7}));
  EXPECT_EQ(*ParseShapeText("scalar"), (Shape{}));
  for (const char* bad : {"", "1x", "x3", "1x-3", "1,3", "1xx3", "2e3", "99999999999999"}) {
    EXPECT_FALSE(ParseShapeText(bad).ok()) << bad;
  }
}

TEST(SplitAssignmentTest, SplitsAtTheFirstEquals) {
  auto kv = SplitAssignment("input", "x=/tmp/a=b.npy");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "x");
  EXPECT_EQ(kv->second, "/tmp/a=b.npy");
  for (const char* bad : {"x", "=a.npy", "x=", ""}) {
    EXPECT_FALSE(SplitAssignment("input", bad).ok()) << bad;
  }
}

TEST(CheckAgainstSpecTest, DtypeRankAndStaticDims) {
  TensorSpec spec{"x", DType::kF32, {-1, 3}, {"N", ""}};
  EXPECT_TRUE(CheckAgainstSpec(Tensor::Zeros(DType::kF32, {5, 3}), spec, "f").ok());
  absl::Status s = CheckAgainstSpec(Tensor::Zeros(DType::kF32, {5, 4}), spec, "f.npy");
  EXPECT_THAT(std::string(s.message()), HasSubstr("input 'x' expects f32[N,3], got f32[5,4] "
                                                  "from f.npy"));
  EXPECT_FALSE(CheckAgainstSpec(Tensor::Zeros(DType::kU8, {5, 3}), spec, "f").ok());
  EXPECT_FALSE(CheckAgainstSpec(Tensor::Zeros(DType::kF32, {5, 3, 1}), spec, "f").ok());
  EXPECT_EQ(SpecToString(TensorSpec{"y", DType::kS64, {-1, 2}, {}}), "y s64[?,2]");
}

TEST(ArgParserTest, FlagsValuesAndErrors) {
  auto make = [] {
    ArgParser p("cmd", "cmd [flags] FILE", "Does things.");
    p.AddFlag("model", "M", "model", /*required=*/true);
    p.AddFlag("input", "NAME=F", "inputs", false, /*repeated=*/true);
    p.AddFlag("n", "N", "count");
    p.SetPositional("FILE", "a file", 0, 1);
    return p;
  };
  ArgParser p = make();
  ASSERT_TRUE(p.Parse({"--model", "m.onnx", "--input=a=1", "--input", "b=2", "f"}).ok());
  EXPECT_EQ(p.Get("model"), "m.onnx");
  EXPECT_EQ(p.GetAll("input"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(p.Get("n", "7"), "7");
  EXPECT_FALSE(p.Has("n"));
  EXPECT_EQ(p.positional(), (std::vector<std::string>{"f"}));

  ArgParser help = make();
  ASSERT_TRUE(help.Parse({"--help", "--bogus"}).ok());
  EXPECT_TRUE(help.help_requested());
  EXPECT_THAT(help.Usage(), HasSubstr("Usage: octet cmd [flags] FILE"));
  EXPECT_THAT(help.Usage(), HasSubstr("--input NAME=F  (repeatable)"));

  struct Bad {
    std::vector<std::string> args;
    const char* error;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{}, "missing required flag --model"},
           {{"--model"}, "--model needs a value"},
           {{"--model", "a", "--model", "b"}, "given more than once"},
           {{"--model", "a", "--nope", "1"}, "unknown flag --nope"},
           {{"--model", "a", "f", "g"}, "unexpected argument 'g'"},
       }) {
    ArgParser q = make();
    absl::Status s = q.Parse(bad.args);
    EXPECT_THAT(std::string(s.message()), HasSubstr(bad.error));
  }
}

TEST(ParseFlagTest, Numbers) {
  EXPECT_EQ(*ParseIntFlag("batch", "8", 1, 100), 8);
  EXPECT_FALSE(ParseIntFlag("batch", "0", 1, 100).ok());
  EXPECT_FALSE(ParseIntFlag("batch", "101", 1, 100).ok());
  EXPECT_FALSE(ParseIntFlag("batch", "8x", 1, 100).ok());
  EXPECT_EQ(*ParseDoubleFlag("seconds", "0.25", 0), 0.25);
  EXPECT_FALSE(ParseDoubleFlag("seconds", "0", 0).ok());
  EXPECT_FALSE(ParseDoubleFlag("seconds", "nan", 0).ok());
  EXPECT_FALSE(ParseDoubleFlag("seconds", "inf", 0).ok());
}

}  // namespace
}  // namespace octet::tool

namespace octet::tool {
namespace {

// Conv (stride 2, pad 1) -> Relu -> grouped 1x1 Conv -> Flatten -> Gemm (transB) -> MatMul.
TEST(PlanMacsTest, CountsConvolutionsAndMatrixProducts) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 10, 12});
  b.Initializer("w1", Tensor::Zeros(DType::kF32, {8, 3, 3, 3}));
  b.Initializer("w2", Tensor::Zeros(DType::kF32, {8, 2, 1, 1}));
  b.Initializer("w3", Tensor::Zeros(DType::kF32, {10, 240}));
  b.Initializer("w4", Tensor::Zeros(DType::kF32, {10, 4}));
  b.Node("Conv", {"x", "w1"}, {"c1"}).Ints("pads", {1, 1, 1, 1}).Ints("strides", {2, 2});
  b.Node("Relu", {"c1"}, {"r1"});
  b.Node("Conv", {"r1", "w2"}, {"c2"}).Int("group", 4);
  b.Node("Flatten", {"c2"}, {"f"});
  b.Node("Gemm", {"f", "w3"}, {"g"}).Int("transB", 1);
  b.Node("MatMul", {"g", "w4"}, {"y"});
  b.Output("y");
  auto model = Model::LoadFromBytes(b.Bytes());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext();
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  auto plan = (*ctx)->PlanFor({Shape{2, 3, 10, 12}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Batch 2. conv1: out [2,8,5,6] = 480 x (3*3*3); conv2: 480 x 2 (8 channels in 4 groups);
  // Gemm: out [2,10] x 240; MatMul: out [2,4] x 10.
  EXPECT_EQ(PlanMacs(**plan), 480 * 27 + 480 * 2 + 20 * 240 + 8 * 10) << (*plan)->Describe();
}

TEST(RssTest, ReportsResidentAndPeak) {
  const int64_t rss = RssBytes(), peak = PeakRssBytes();
  EXPECT_GT(rss, 0);
  EXPECT_GE(peak, rss);
  std::vector<char> block(64 << 20, 1);  // touched: resident
  EXPECT_GE(PeakRssBytes(), rss + (60 << 20)) << static_cast<int>(block[12345]);
}

}  // namespace
}  // namespace octet::tool
