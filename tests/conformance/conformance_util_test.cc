// The conformance harness's own checks must be able to fail: this tests the comparator and the
// refusal check on hand-made cases.
#include "tests/conformance/conformance_util.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace octet {
namespace {

TEST(CompareTensorsTest, FloatTolerance) {
  Tensor want = Tensor::FromFloats({3}, {1.0f, -2.0f, 0.0f});
  EXPECT_EQ(CompareTensors(Tensor::FromFloats({3}, {1.00009f, -2.00019f, 9e-6f}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({3}, {1.0002f, -2.0f, 0.0f}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({3}, {1.0f, -2.0f, 2e-5f}), want), "");
  std::string diff = CompareTensors(Tensor::FromFloats({3}, {1.0f, -2.5f, 0.0f}), want);
  EXPECT_NE(diff.find("1 of 3 values differ; first at flat index 1"), std::string::npos) << diff;
}

TEST(CompareTensorsTest, NanAndInf) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Tensor want = Tensor::FromFloats({2}, {nan, inf});
  EXPECT_EQ(CompareTensors(Tensor::FromFloats({2}, {nan, inf}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({2}, {0.0f, inf}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({2}, {nan, -inf}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({2}, {nan, 1e30f}), want), "");
  EXPECT_NE(CompareTensors(want, Tensor::FromFloats({2}, {1.0f, inf})), "");
}

TEST(CompareTensorsTest, IntegersExactAndShapeDtypeChecked) {
  Tensor want = Tensor::FromInt64s({2}, {5, int64_t{1} << 60});
  EXPECT_EQ(CompareTensors(Tensor::FromInt64s({2}, {5, int64_t{1} << 60}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromInt64s({2}, {5, (int64_t{1} << 60) + 1}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromInt64s({1, 2}, {5, int64_t{1} << 60}), want), "");
  EXPECT_NE(CompareTensors(Tensor::FromFloats({2}, {5, 1}), Tensor::FromFloats({2, 1}, {5, 1})),
            "");
  Tensor s32 = Tensor::Zeros(DType::kS32, {2});
  EXPECT_NE(CompareTensors(s32, Tensor::FromInt64s({2}, {0, 0})).find("dtype s32, expected s64"),
            std::string::npos);
}

TEST(IsCleanRefusalTest, NeedsCodeAndSpecificMessage) {
  onnx::ModelProto model;
  onnx::NodeProto* node = model.mutable_graph()->add_node();
  node->set_op_type("Softplus");
  node->add_output("y");
  model.mutable_graph()->add_input()->set_name("x");
  EXPECT_TRUE(IsCleanRefusal(absl::UnimplementedError("node 0 (Softplus): unsupported op"), model));
  EXPECT_TRUE(IsCleanRefusal(absl::InvalidArgumentError("graph value 'x': DOUBLE"), model));
  EXPECT_TRUE(IsCleanRefusal(absl::UnimplementedError("model uses ONNX opset 18"), model));
  EXPECT_FALSE(IsCleanRefusal(absl::UnimplementedError("something went wrong"), model));
  EXPECT_FALSE(IsCleanRefusal(absl::InternalError("Softplus: dnnl error"), model));
  EXPECT_FALSE(IsCleanRefusal(absl::OkStatus(), model));
}

TEST(DataLayoutTest, FindsNumberedFilesInOrder) {
  const std::string dir = "/usr/share/libonnx-testdata/data/node/test_add";
  std::vector<std::filesystem::path> sets = DataSets(dir);
  ASSERT_EQ(sets.size(), 1u);
  std::vector<std::filesystem::path> inputs = NumberedFiles(sets[0], "input");
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[1].filename(), "input_1.pb");
  EXPECT_EQ(NumberedFiles(sets[0], "output").size(), 1u);
  absl::StatusOr<onnx::ModelProto> model = ReadModelProto(dir + "/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(OpTypes(*model), std::set<std::string>{"Add"});
}

}  // namespace
}  // namespace octet
