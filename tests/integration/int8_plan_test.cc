// Acceptance: torchvision's resnet18 (the fixture), quantized by Octet's quantizer library, runs
// as a plan in which quantized convolutions hand int8 tensors straight to each other: between two
// consecutive quantized convolutions there is no DequantizeLinear/QuantizeLinear and no value in
// floating point. Read from the plan's own description (ExecutionContext::PlanFor ->
// ExecutionPlan::Describe) and the optimized graph's (Model::Describe).
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/model.h"
#include "core/npy.h"
#include "core/plan.h"
#include "core/quant/quantizer.h"
#include "core/tool/tool_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// One line of ExecutionPlan::Describe(): "Op name (in:dtype[dims], ...) -> (out:dtype[dims])
// [impl]".
struct PlanLine {
  std::string op, text;
  std::vector<std::string> in_types, out_types;
};

std::vector<std::string> TypesOf(const std::string& list) {
  std::vector<std::string> types;
  for (absl::string_view v : absl::StrSplit(list, "], ")) {
    const size_t colon = v.rfind(':'), bracket = v.find('[', colon == v.npos ? 0 : colon);
    if (colon != v.npos && bracket != v.npos) {
      types.emplace_back(v.substr(colon + 1, bracket - colon - 1));
    }
  }
  return types;
}

std::vector<PlanLine> ParsePlan(const std::string& text) {
  std::vector<PlanLine> lines;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    PlanLine p;
    p.text = std::string(l);
    p.op = std::string(l.substr(0, l.find(' ')));
    const size_t open = l.find(" ("), arrow = l.find(") -> ("), close = l.rfind(") [");
    if (open == l.npos || arrow == l.npos || close == l.npos) continue;
    p.in_types = TypesOf(std::string(l.substr(open + 2, arrow - open - 2)));
    p.out_types = TypesOf(std::string(l.substr(arrow + 6, close - arrow - 6)));
    lines.push_back(p);
  }
  return lines;
}

bool IsInt8(const std::string& t) { return t == "u8" || t == "s8"; }

TEST(Int8PlanTest, Resnet18ConvolutionsChainInInt8) {
  const char* dir = std::getenv("OCTET_TORCHVISION_DIR");
  ASSERT_NE(dir, nullptr) << "OCTET_TORCHVISION_DIR is not set";
  const std::string base = std::string(dir) + "/resnet18";
  std::ifstream in(base + ".onnx", std::ios::binary);
  ASSERT_TRUE(in) << base << ".onnx";
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto calib = ReadNpy(base + "_b8_input.npy");
  ASSERT_TRUE(calib.ok()) << calib.status();

  QuantizeOptions options;
  options.calibration_batch = 8;
  options.sqnr_samples = 2;
  options.num_threads = 2;
  auto quantized = QuantizeModel(bytes.str(), {{"input", *calib}}, options);
  ASSERT_TRUE(quantized.ok()) << quantized.status();
  auto model = Model::LoadFromBytes(quantized->onnx_bytes);
  ASSERT_TRUE(model.ok()) << model.status();

  // The optimized graph: all 20 convolutions are int8 layers.
  const std::string graph = (*model)->Describe();
  int qconv_nodes = 0;
  for (absl::string_view l : absl::StrSplit(graph, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(l, "octet:QConv ")) {
      ++qconv_nodes;
      EXPECT_THAT(std::string(l), HasSubstr("[int8]")) << graph;
    }
    EXPECT_FALSE(absl::StartsWith(l, "Conv ")) << "FP32 convolution left: " << l << "\n" << graph;
  }
  EXPECT_EQ(qconv_nodes, 20) << graph;

  ContextOptions co;
  co.num_threads = 2;
  auto ctx = (*model)->CreateContext(co);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  auto plan = (*ctx)->PlanFor({Shape{2, 3, 224, 224}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string text = (*plan)->Describe();
  const std::vector<PlanLine> lines = ParsePlan(text);
  std::vector<size_t> convs;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].op == "QConv") convs.push_back(i);
  }
  ASSERT_EQ(convs.size(), 20u) << text;
  for (size_t c : convs) {
    // oneDNN's int8 convolution (not the exact reference kernel), int8 in and out.
    EXPECT_THAT(lines[c].text, Not(HasSubstr("ref"))) << text;
    ASSERT_FALSE(lines[c].in_types.empty()) << lines[c].text;
    EXPECT_TRUE(IsInt8(lines[c].in_types[0])) << lines[c].text;
    ASSERT_EQ(lines[c].out_types.size(), 1u) << lines[c].text;
    EXPECT_TRUE(IsInt8(lines[c].out_types[0])) << lines[c].text;
  }
  for (size_t k = 0; k + 1 < convs.size(); ++k) {
    for (size_t i = convs[k] + 1; i < convs[k + 1]; ++i) {
      const PlanLine& l = lines[i];
      EXPECT_NE(l.op, "DequantizeLinear") << "between QConv steps:\n" << l.text << "\n" << text;
      EXPECT_NE(l.op, "QuantizeLinear") << "between QConv steps:\n" << l.text << "\n" << text;
      for (const std::string& t : l.out_types) {
        EXPECT_TRUE(IsInt8(t)) << "non-int8 value between QConv steps:\n" << l.text << "\n" << text;
      }
    }
  }

  // `octet inspect`/`bench` count the same multiply-accumulates in the int8 plan as in FP32's
  // (torchvision's resnet18: 1.814 G per image).
  auto fp32 = Model::LoadFromBytes(bytes.str());
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  auto fp32_ctx = (*fp32)->CreateContext(co);
  ASSERT_TRUE(fp32_ctx.ok()) << fp32_ctx.status();
  auto fp32_plan = (*fp32_ctx)->PlanFor({Shape{2, 3, 224, 224}});
  ASSERT_TRUE(fp32_plan.ok()) << fp32_plan.status();
  EXPECT_EQ(tool::PlanMacs(**plan), tool::PlanMacs(**fp32_plan));
  EXPECT_NEAR(tool::PlanMacs(**plan) / 2 / 1e9, 1.814, 0.001);

  // And the plan runs: finite logits of the right shape.
  auto input = ReadNpy(base + "_b1_input.npy");
  ASSERT_TRUE(input.ok()) << input.status();
  auto out = (*ctx)->Run({*input});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1000}));
  for (int64_t i = 0; i < 1000; ++i) ASSERT_TRUE(std::isfinite((*out)[0].data_as<float>()[i]));
}

}  // namespace
}  // namespace octet
