// Acceptance test of `octet quantize` on the demo models: calibrated on 500 Fashion-MNIST training
// images, the INT8 model (Octet's optimized INT8 engine) must keep the FP32 top-1 accuracy on the
// 10k test images within 0.3 points, for min/max and percentile calibration. And the accuracy
// guard must move layers back to FP32 when INT8 loses more than the budget.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <tuple>

#include "core/graph.h"
#include "core/model.h"
#include "core/quant/quantizer.h"
#include "gtest/gtest.h"
#include "tests/util/idx_reader.h"

namespace octet {
namespace {

std::string ReadModel(const std::string& name) {
  const char* dir = std::getenv("OCTET_SOURCE_DIR");
  std::ifstream in(std::string(dir ? dir : ".") + "/deploy/models/" + name + "/1/model.onnx",
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Tensor Images(const IdxImages& images, int64_t n, bool flat) {
  return flat ? images.ToFlat(0, n) : images.ToNchw(0, n);
}

// Calibration inputs (first `calib` training images) and the first `n_test` test images.
struct Data {
  std::map<std::string, Tensor> calibration;
  ValidationSet validation;
};

absl::StatusOr<Data> LoadData(const std::string& model, int64_t calib, int64_t n_test) {
  const bool flat = model == "fashion_mlp";
  auto train = ReadIdxImages(FashionMnistPath(/*train=*/true, /*images=*/true), calib);
  if (!train.ok()) return train.status();
  auto test = ReadIdxImages(FashionMnistPath(false, true), n_test);
  if (!test.ok()) return test.status();
  auto labels = ReadIdxLabels(FashionMnistPath(false, false), n_test);
  if (!labels.ok()) return labels.status();
  Data d;
  d.calibration["input"] = Images(*train, calib, flat);
  d.validation.inputs["input"] = Images(*test, n_test, flat);
  Tensor l = Tensor::Zeros(DType::kS32, {n_test});
  std::copy(labels->begin(), labels->end(), l.data_as<int32_t>());
  d.validation.labels = l;
  return d;
}

// Renames the calibration/validation key to the model's actual input name.
void UseInputName(const std::string& bytes, Data* d) {
  auto m = Model::LoadFromBytes(bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string name = (*m)->inputs()[0].name;
  if (name == "input") return;
  d->calibration[name] = d->calibration["input"];
  d->calibration.erase("input");
  d->validation.inputs[name] = d->validation.inputs["input"];
  d->validation.inputs.erase("input");
}

class FashionQuantizeTest
    : public ::testing::TestWithParam<std::tuple<std::string, CalibrationMethod>> {};

TEST_P(FashionQuantizeTest, Int8TopOneWithinPointThreeOfFp32) {
  const auto& [name, method] = GetParam();
  const std::string fp32 = ReadModel(name);
  ASSERT_FALSE(fp32.empty());
  auto data = LoadData(name, 500, 10000);
  ASSERT_TRUE(data.ok()) << data.status();
  UseInputName(fp32, &*data);
  QuantizeOptions o;
  o.range.method = method;
  o.num_threads = 2;
  o.calibration_batch = 100;
  auto q = QuantizeModel(fp32, data->calibration, o);
  ASSERT_TRUE(q.ok()) << q.status();
  // Every Conv/Gemm runs as an int8 layer.
  auto m = Model::LoadFromBytes(q->onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  int int8_layers = 0;
  for (const Node& n : (*m)->graph().nodes) {
    EXPECT_FALSE(n.domain.empty() && (n.op_type == "Conv" || n.op_type == "Gemm"))
        << n.name << " left in FP32:\n"
        << (*m)->Describe();
    int8_layers += n.op_type == "QConv" || n.op_type == "QMatMul";
  }
  EXPECT_EQ(int8_layers, name == "fashion_cnn" ? 5 : 3) << (*m)->Describe();
  auto fp32_top1 = MeasureTop1(fp32, data->validation, 2, 500);
  auto int8_top1 = MeasureTop1(q->onnx_bytes, data->validation, 2, 500);
  ASSERT_TRUE(fp32_top1.ok()) << fp32_top1.status();
  ASSERT_TRUE(int8_top1.ok()) << int8_top1.status();
  std::cout << name << " " << CalibrationMethodName(method) << ": FP32 top-1 " << *fp32_top1
            << "%, INT8 " << *int8_top1 << "%\n";
  RecordProperty("fp32_top1", std::to_string(*fp32_top1));
  RecordProperty("int8_top1", std::to_string(*int8_top1));
  EXPECT_NEAR(*int8_top1, *fp32_top1, 0.3);
}

INSTANTIATE_TEST_SUITE_P(DemoModels, FashionQuantizeTest,
                         ::testing::Combine(::testing::Values("fashion_cnn", "fashion_mlp"),
                                            ::testing::Values(CalibrationMethod::kMinMax,
                                                              CalibrationMethod::kPercentile)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  CalibrationMethodName(std::get<1>(info.param));
                         });

// A harsh calibration (keep only 90% of the values) costs accuracy; with a zero budget the guard
// must move layers back to FP32, say which, and end within budget with the accuracy it reports.
TEST(FashionAccuracyGuardTest, MovesLayersBackToFp32UntilWithinBudget) {
  const std::string fp32 = ReadModel("fashion_mlp");
  ASSERT_FALSE(fp32.empty());
  auto data = LoadData("fashion_mlp", 500, 2000);
  ASSERT_TRUE(data.ok()) << data.status();
  UseInputName(fp32, &*data);
  QuantizeOptions o;
  o.range.method = CalibrationMethod::kPercentile;
  o.range.percentile = 90;
  o.num_threads = 2;
  o.calibration_batch = 100;
  AccuracyGuardOptions guard;
  guard.max_accuracy_drop = 0;
  auto g = QuantizeWithAccuracyGuard(fp32, data->calibration, o, data->validation, guard);
  ASSERT_TRUE(g.ok()) << g.status();
  std::cout << "guard: FP32 " << g->fp32_accuracy << "%, INT8 " << g->initial_int8_accuracy
            << "% -> " << g->int8_accuracy << "% after moving " << g->moved_to_fp32.size()
            << " layer(s) to FP32\n";
  ASSERT_GT(g->fp32_accuracy - g->initial_int8_accuracy, 0.5)
      << "the harsh calibration was meant to lose accuracy";
  ASSERT_FALSE(g->moved_to_fp32.empty());
  EXPECT_EQ(g->accuracy_after_move.size(), g->moved_to_fp32.size());
  EXPECT_TRUE(g->within_budget);
  EXPECT_LE(g->fp32_accuracy - g->int8_accuracy, 0.0);
  EXPECT_EQ(g->accuracy_after_move.back(), g->int8_accuracy);
  // The reported accuracy is the written model's, and the moved layers run in FP32 there.
  auto again = MeasureTop1(g->result.onnx_bytes, data->validation, 2, 500);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, g->int8_accuracy);
  auto m = Model::LoadFromBytes(g->result.onnx_bytes);
  ASSERT_TRUE(m.ok()) << m.status();
  for (const std::string& layer : g->moved_to_fp32) {
    bool fp32_node = false;
    for (const Node& n : (*m)->graph().nodes) {
      fp32_node |= n.name == layer && n.domain.empty() && n.op_type == "Gemm";
    }
    EXPECT_TRUE(fp32_node) << layer << " not FP32 in:\n" << (*m)->Describe();
    bool reported = false;
    for (const LayerReport& l : g->result.layers) reported |= l.node == layer && !l.quantized;
    EXPECT_TRUE(reported) << layer;
  }
}

}  // namespace
}  // namespace octet
