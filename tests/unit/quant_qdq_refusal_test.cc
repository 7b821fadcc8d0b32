// Load-side checks on QDQ models (the form `octet quantize` and ONNX Runtime write): a model whose
// quantization parameters are invalid is refused at load with a message naming the parameter,
// never run with garbage. Each case corrupts one initializer of a valid model made by the
// quantizer.
#include <cmath>
#include <random>

#include "core/model.h"
#include "core/onnx_tensor.h"
#include "core/quant/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "tests/util/onnx_builder.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

Tensor Random(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (float& x : v) x = d(rng);
  return Tensor::FromFloats(shape, v);
}

// Conv(3->8) -> Relu -> Gemm, quantized.
onnx::ModelProto QuantizedModel() {
  OnnxBuilder b;
  b.Input("x", {8, 3, 4, 4});  // static: the plan (and its checks) is built at load
  b.Initializer("w", Random({8, 3, 3, 3}, 1));
  b.Initializer("b", Random({8}, 2));
  b.Node("Conv", {"x", "w", "b"}, {"c"}, "conv").Ints("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c"}, {"r"}, "relu");
  b.Node("Flatten", {"r"}, {"f"}, "flatten");
  b.Initializer("w2", Random({5, 128}, 3));
  b.Node("Gemm", {"f", "w2"}, {"y"}, "fc").Int("transB", 1);
  b.Output("y");
  auto r = QuantizeModel(b.Bytes(), {{"x", Random({8, 3, 4, 4}, 4)}}, {});
  EXPECT_TRUE(r.ok()) << r.status();
  onnx::ModelProto m;
  EXPECT_TRUE(r.ok() && m.ParseFromString(r->onnx_bytes));
  return m;
}

absl::Status LoadWith(const std::string& init, const Tensor& value) {
  onnx::ModelProto m = QuantizedModel();
  bool found = false;
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == init) {
      t = TensorToProto(value, init);
      found = true;
    }
  }
  EXPECT_TRUE(found) << init;
  return Model::LoadFromBytes(m.SerializeAsString()).status();
}

TEST(QdqRefusalTest, TheUncorruptedModelLoads) {
  EXPECT_TRUE(Model::LoadFromBytes(QuantizedModel().SerializeAsString()).ok());
}

TEST(QdqRefusalTest, BadParametersAreRefusedAtLoad) {
  struct Bad {
    std::string init;
    Tensor value;
    std::string message;
  };
  Tensor nan8 = Tensor::FromFloats({8}, std::vector<float>(8, 0.01f));
  nan8.data_as<float>()[2] = NAN;
  Tensor zp300 = Tensor::Zeros(DType::kS32, {});
  zp300.data_as<int32_t>()[0] = 300;
  std::vector<Bad> cases = {
      {"r_scale", Tensor::FromFloats({}, {0.0f}), "scale"},
      {"x_scale", Tensor::FromFloats({}, {INFINITY}), "scale"},
      {"r_scale", Tensor::FromFloats({}, {-0.5f}), "scale"},
      {"w_scale", nan8, "nan"},
      {"w_scale", Tensor::FromFloats({5}, std::vector<float>(5, 0.01f)), "[5]"},
      {"w_zero_point", Tensor::Zeros(DType::kS8, {3}), "zero"},
      {"x_zero_point", zp300, "s32"},
  };
  for (const Bad& bad : cases) {
    absl::Status s = LoadWith(bad.init, bad.value);
    EXPECT_FALSE(s.ok()) << bad.init << " " << bad.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(bad.message)) << bad.init;
  }
}

}  // namespace
}  // namespace octet
