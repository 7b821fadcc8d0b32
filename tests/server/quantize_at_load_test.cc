// QuantizeAtLoad: calibration entries of a config.pbtxt quantize block resolved to files and
// input names (version directory before model directory, NAME=FILE for several inputs), the
// result identical to QuantizeModel on the same samples, and each configuration error refused
// with a message naming what is wrong.
#include "server/quantize_at_load.h"

#include <cmath>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/npy.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/util/onnx_builder.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// a [N,4] x W1 + b [N,4] x W2 -> y [N,3]
std::string TwoInputOnnx() {
  std::vector<float> w1, w2;
  for (int i = 0; i < 12; ++i) {
    w1.push_back(0.1f * static_cast<float>(i % 5) - 0.2f);
    w2.push_back(0.05f * static_cast<float>(i % 7) - 0.15f);
  }
  OnnxBuilder b;
  b.Input("a", {-1, 4}).Input("b", {-1, 4});
  b.Initializer("w1", {4, 3}, w1).Initializer("w2", {4, 3}, w2);
  b.Node("MatMul", {"a", "w1"}, {"p"}, "mm_a");
  b.Node("MatMul", {"b", "w2"}, {"q"}, "mm_b");
  b.Node("Add", {"p", "q"}, {"y"}, "add");
  b.Output("y");
  return b.Bytes();
}

Tensor Samples(int64_t rows, float seed) {
  std::vector<float> v;
  for (int64_t i = 0; i < rows * 4; ++i) v.push_back(std::sin(seed + 0.37f * i) * (1 + seed));
  return Tensor::FromFloats({rows, 4}, v);
}

class QuantizeAtLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ =
        fs::path(::testing::TempDir()) /
        ("qal_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(model_dir_);
    fs::create_directories(model_dir_ / "1");
    onnx_ = TwoInputOnnx();
    auto model = Model::LoadFromBytes(onnx_);
    ASSERT_TRUE(model.ok()) << model.status();
    inputs_ = (*model)->inputs();
  }
  void TearDown() override { fs::remove_all(model_dir_); }
  void Write(const fs::path& path, const Tensor& t) {
    ASSERT_TRUE(WriteNpy(path.string(), t).ok());
  }
  static config::QuantizeConfig Config(const std::string& text) {
    config::QuantizeConfig c;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
    return c;
  }
  absl::StatusOr<QuantizeResult> Run(const std::string& text) {
    return QuantizeAtLoad(onnx_, inputs_, (model_dir_ / "1").string(), Config(text));
  }
  static QuantizeOptions Options() {
    QuantizeOptions options;
    options.num_threads = 1;
    return options;
  }

  fs::path model_dir_;
  std::string onnx_;
  std::vector<TensorSpec> inputs_;
};

TEST_F(QuantizeAtLoadTest, NamedFilesGiveWhatQuantizeModelGives) {
  const Tensor a = Samples(20, 0.5f), b = Samples(20, 1.5f);
  Write(model_dir_ / "a.npy", a);
  Write(model_dir_ / "1" / "b.npy", b);
  auto result = Run("calibration: [\"a=a.npy\", \"b=b.npy\"]");
  ASSERT_TRUE(result.ok()) << result.status();
  auto expected = QuantizeModel(onnx_, {{"a", a}, {"b", b}}, Options());
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(result->onnx_bytes, expected->onnx_bytes);
  const std::vector<std::string> lines = QuantizeSummary(*result, Config(""));
  ASSERT_EQ(lines.size(), result->layers.size() + 1);
  EXPECT_THAT(lines[0], HasSubstr("quantized at load (minmax, per-channel weights)"));
  EXPECT_THAT(lines[0], HasSubstr(absl::StrCat("weights ", result->fp32_weight_bytes, " -> ",
                                               result->int8_weight_bytes, " bytes")));
}

TEST_F(QuantizeAtLoadTest, VersionDirectoryFileWinsOverTheModelDirectoryOne) {
  const Tensor in_version = Samples(16, 2.0f), in_model = Samples(16, 0.1f), b = Samples(16, 1.f);
  Write(model_dir_ / "1" / "a.npy", in_version);
  Write(model_dir_ / "a.npy", in_model);
  Write(model_dir_ / "b.npy", b);
  auto result = Run("calibration: \"a=a.npy\" calibration: \"b=b.npy\" method: \"mse\"");
  ASSERT_TRUE(result.ok()) << result.status();
  QuantizeOptions options = Options();
  options.range.method = CalibrationMethod::kMse;
  auto from_version = QuantizeModel(onnx_, {{"a", in_version}, {"b", b}}, options);
  auto from_model = QuantizeModel(onnx_, {{"a", in_model}, {"b", b}}, options);
  ASSERT_TRUE(from_version.ok() && from_model.ok());
  ASSERT_NE(from_version->onnx_bytes, from_model->onnx_bytes);
  EXPECT_EQ(result->onnx_bytes, from_version->onnx_bytes);
  // An absolute path is taken as it is.
  auto absolute = Run(absl::StrCat("calibration: \"a=", (model_dir_ / "a.npy").string(),
                                   "\" calibration: \"b=b.npy\" method: \"mse\""));
  ASSERT_TRUE(absolute.ok()) << absolute.status();
  EXPECT_EQ(absolute->onnx_bytes, from_model->onnx_bytes);
}

TEST_F(QuantizeAtLoadTest, ConfigurationErrorsSayWhatIsWrong) {
  Write(model_dir_ / "a.npy", Samples(8, 0.5f));
  Write(model_dir_ / "b.npy", Samples(8, 1.5f));
  Write(model_dir_ / "wide.npy", Tensor::FromFloats({8, 5}, std::vector<float>(40, 1.0f)));
  const struct {
    const char* config;
    absl::StatusCode code;
    const char* message;
  } cases[] = {
      {"", absl::StatusCode::kInvalidArgument, "quantize: no calibration file"},
      {"calibration: \"a.npy\"", absl::StatusCode::kInvalidArgument,
       "does not name its input; the model has 2 inputs ('a', 'b')"},
      {"calibration: \"c=a.npy\"", absl::StatusCode::kInvalidArgument,
       "calibration for 'c', which is not a model input (inputs: 'a', 'b')"},
      {"calibration: \"a=a.npy\"", absl::StatusCode::kInvalidArgument,
       "no calibration file for input 'b'"},
      {"calibration: [\"a=a.npy\", \"a=b.npy\"]", absl::StatusCode::kInvalidArgument,
       "calibration for input 'a' given twice"},
      {"calibration: [\"a=a.npy\", \"b=missing.npy\"]", absl::StatusCode::kNotFound,
       "calibration file 'missing.npy' not found in"},
      {"calibration: [\"a=a.npy\", \"b=wide.npy\"]", absl::StatusCode::kInvalidArgument,
       "for input 'b' holds f32 [8,5]; the input takes f32 [N,4]"},
      {"calibration: [\"a=a.npy\", \"b=b.npy\"] method: \"max\"",
       absl::StatusCode::kInvalidArgument, "quantize: method: unknown calibration method 'max'"},
      {"calibration: [\"a=a.npy\", \"b=b.npy\"] calibration_batch: 0",
       absl::StatusCode::kInvalidArgument, "calibration_batch must be >= 1, got 0"},
      {"calibration: [\"a=a.npy\", \"b=b.npy\"] method: \"percentile\" percentile: 0",
       absl::StatusCode::kInvalidArgument, "quantize: "},
      {"calibration: [\"a=a.npy\", \"b=b.npy\"] exclude: \"nope\"",
       absl::StatusCode::kInvalidArgument, "nope"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config);
    auto result = Run(c.config);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), c.code) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(result.status().message()), ::testing::StartsWith("quantize: "));
  }
  // Excluding a real node works and is reported.
  auto excluded = Run("calibration: [\"a=a.npy\", \"b=b.npy\"] exclude: \"mm_b\"");
  ASSERT_TRUE(excluded.ok()) << excluded.status();
  bool found = false;
  for (const LayerReport& l : excluded->layers) found = found || (l.node == "mm_b" && !l.quantized);
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace octet::server
