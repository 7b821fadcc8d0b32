// INT8 serving with the real engine: the bundled INT8 demo models (deploy/models) answer Predict
// exactly as `octet run` does on the same file, and a config.pbtxt `quantize { ... }` block
// serves what QuantizeModel makes of the FP32 model (results, metadata, weight-bytes metrics);
// bad quantize blocks are refused with their reason while the previous version keeps serving.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/model.h"
#include "core/npy.h"
#include "core/quant/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server_test_util.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using tensorflow::serving::ModelVersionStatus;
using ::testing::HasSubstr;

fs::path SourceDir() {
  const char* dir = std::getenv("OCTET_SOURCE_DIR");
  return dir != nullptr ? fs::path(dir) : fs::path(OCTET_SOURCE_DIR_DEFAULT);
}
fs::path DemoModels() { return SourceDir() / "deploy" / "models"; }

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first `rows` of the committed calibration images (real Fashion-MNIST pixels/255).
Tensor Images(int64_t rows) {
  absl::StatusOr<Tensor> all =
      ReadNpy((DemoModels() / "fashion_cnn_int8_at_load" / "calib_64.npy").string());
  EXPECT_TRUE(all.ok()) << all.status();
  if (!all.ok()) return Tensor();
  const int64_t row = all->num_elements() / all->dim(0);
  std::vector<float> values(all->data_as<float>(), all->data_as<float>() + rows * row);
  Shape shape = all->shape();
  shape[0] = rows;
  return Tensor::FromFloats(shape, values);
}

// Value of the sample `name{model="<model>",version="1"}` in a Prometheus text scrape; -1 if
// absent.
double MetricValue(const std::string& scrape, const std::string& name, const std::string& model) {
  const std::string key = absl::StrCat(name, "{model=\"", model, "\",version=\"1\"} ");
  const size_t at = scrape.find(key);
  if (at == std::string::npos) return -1;
  const size_t end = scrape.find('\n', at);
  double v = -1;
  if (!absl::SimpleAtod(scrape.substr(at + key.size(), end - at - key.size()), &v)) return -1;
  return v;
}

// Element-wise: the same engine on the same batch, so equal up to float rounding.
void ExpectSameFloats(const std::vector<float>& served, const Tensor& expected) {
  ASSERT_EQ(served.size(), static_cast<size_t>(expected.num_elements()));
  for (size_t i = 0; i < served.size(); ++i) {
    const float e = expected.data_as<float>()[i];
    EXPECT_NEAR(served[i], e, 1e-5f * std::max(1.0f, std::fabs(e))) << i;
  }
}

class ServerQuantizeTest : public testing::ServerFixture {
 protected:
  void StartWithEngine(const fs::path& repository) {
    OctetServer::Options options;
    options.model_repository = repository.string();
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.metrics_port = -1;
    options.poll_interval = absl::Hours(1);  // polled by hand
    options.cpu_budget = 2;                  // loader left empty: the Octet engine
    auto server = OctetServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    predict_ = tensorflow::serving::PredictionService::NewStub(channel_);
    models_ = tensorflow::serving::ModelService::NewStub(channel_);
  }
  static tensorflow::serving::PredictRequest Request(const std::string& model, const Tensor& x) {
    tensorflow::serving::PredictRequest request;
    request.mutable_model_spec()->set_name(model);
    auto& t = (*request.mutable_inputs())["input"];
    t.set_dtype(tensorflow::DT_FLOAT);
    for (int64_t d : x.shape()) t.mutable_tensor_shape()->add_dim()->set_size(d);
    t.set_tensor_content(x.data_as<float>(), x.byte_size());
    return request;
  }
  // Predict on `model`; the "logits" output, or empty on failure (reported).
  std::vector<float> ServedLogits(const std::string& model, const Tensor& x,
                                  int64_t* version = nullptr) {
    tensorflow::serving::PredictResponse response;
    grpc::Status st = Predict(Request(model, x), &response);
    EXPECT_TRUE(st.ok()) << model << ": " << st.error_message();
    if (!st.ok() || !response.outputs().count("logits")) return {};
    if (version != nullptr) *version = response.model_spec().version().value();
    return Floats(response.outputs().at("logits"));
  }
  ModelVersionStatus VersionStatus(const std::string& model, int64_t version) {
    grpc::ClientContext ctx;
    tensorflow::serving::GetModelStatusRequest request;
    request.mutable_model_spec()->set_name(model);
    request.mutable_model_spec()->mutable_version()->set_value(version);
    tensorflow::serving::GetModelStatusResponse response;
    grpc::Status st = models_->GetModelStatus(&ctx, request, &response);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (!st.ok() || response.model_version_status_size() != 1) return ModelVersionStatus();
    return response.model_version_status(0);
  }
  // <root>/<name>: the FP32 demo CNN as version 1 and `config`.
  void AddFp32Cnn(const std::string& name, const std::string& config) {
    testing::WriteFile(root_ / name / "config.pbtxt", config);
    fs::create_directories(root_ / name / "1");
    fs::copy_file(DemoModels() / "fashion_cnn" / "1" / "model.onnx",
                  root_ / name / "1" / "model.onnx");
  }
  static void WriteSamples(const fs::path& path, const Tensor& t) {
    fs::create_directories(path.parent_path());
    ASSERT_TRUE(WriteNpy(path.string(), t).ok());
  }
};

// `octet run` on `model_file` with input `x`; its logits.
Tensor OctetRun(const fs::path& model_file, const Tensor& x, const fs::path& dir) {
  fs::create_directories(dir);
  EXPECT_TRUE(WriteNpy((dir / "x.npy").string(), x).ok());
  const std::string command =
      absl::StrCat("'", OCTET_CLI_PATH, "' run --model '", model_file.string(), "' --input input='",
                   (dir / "x.npy").string(), "' --output-dir '", (dir / "out").string(), "' > '",
                   (dir / "log").string(), "' 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0) << ReadBytes(dir / "log");
  absl::StatusOr<Tensor> y = ReadNpy((dir / "out" / "logits.npy").string());
  EXPECT_TRUE(y.ok()) << y.status();
  return y.ok() ? *std::move(y) : Tensor();
}

TEST_F(ServerQuantizeTest, DemoRepositoryInt8ModelsAnswerAsOctetRunAndAreDescribed) {
  StartWithEngine(DemoModels());
  EXPECT_TRUE(server_->repository().AllModelsReady());
  const Tensor images = Images(8);
  for (const std::string model : {"fashion_cnn_int8", "fashion_mlp_int8"}) {
    SCOPED_TRACE(model);
    const fs::path file = DemoModels() / model / "1" / "model.onnx";
    Tensor x = images;
    if (model == "fashion_mlp_int8") x = *images.Reshaped({8, 784});
    int64_t version = 0;
    const std::vector<float> served = ServedLogits(model, x, &version);
    EXPECT_EQ(version, 1);
    ExpectSameFloats(served, OctetRun(file, x, root_ / model));

    // The file really is INT8: its weights are about a quarter of the FP32 model's.
    auto int8 = Model::LoadFromFile(file.string());
    ASSERT_TRUE(int8.ok()) << int8.status();
    const std::string scrape = server_->metrics().Scrape();
    const double loaded = MetricValue(scrape, "octet_model_weight_bytes", model);
    const double fp32 = MetricValue(scrape, "octet_model_fp32_weight_bytes", model);
    EXPECT_EQ(loaded, static_cast<double>((*int8)->weight_bytes()));
    EXPECT_EQ(fp32, static_cast<double>((*int8)->fp32_weight_bytes()));
    EXPECT_LT(loaded * 3, fp32);

    grpc::ClientContext ctx;
    tensorflow::serving::GetModelMetadataRequest request;
    request.mutable_model_spec()->set_name(model);
    request.add_metadata_field("signature_def");
    tensorflow::serving::GetModelMetadataResponse response;
    ASSERT_TRUE(predict_->GetModelMetadata(&ctx, request, &response).ok());
    EXPECT_EQ(response.model_spec().version().value(), 1);
    tensorflow::serving::SignatureDefMap map;
    ASSERT_TRUE(response.metadata().at("signature_def").UnpackTo(&map));
    const tensorflow::SignatureDef& def = map.signature_def().at("serving_default");
    const tensorflow::TensorInfo& in = def.inputs().at("input");
    EXPECT_EQ(in.dtype(), tensorflow::DT_FLOAT);
    ASSERT_EQ(in.tensor_shape().dim_size(), x.rank());
    EXPECT_EQ(in.tensor_shape().dim(0).size(), -1);
    for (int d = 1; d < x.rank(); ++d) EXPECT_EQ(in.tensor_shape().dim(d).size(), x.dim(d));
    const tensorflow::TensorInfo& out = def.outputs().at("logits");
    ASSERT_EQ(out.tensor_shape().dim_size(), 2);
    EXPECT_EQ(out.tensor_shape().dim(1).size(), 10);

    const ModelVersionStatus status = VersionStatus(model, 1);
    EXPECT_EQ(status.state(), ModelVersionStatus::AVAILABLE);
    EXPECT_EQ(status.status().error_code(), tensorflow::error::OK);
  }
  // The demo model quantized at load serves INT8 too.
  const std::string scrape = server_->metrics().Scrape();
  EXPECT_LT(MetricValue(scrape, "octet_model_weight_bytes", "fashion_cnn_int8_at_load") * 3,
            MetricValue(scrape, "octet_model_fp32_weight_bytes", "fashion_cnn_int8_at_load"));
}

TEST_F(ServerQuantizeTest, QuantizeBlockServesTheQuantizeModelOutput) {
  // Calibration file in the model directory, shared by the versions.
  AddFp32Cnn("q",
             "quantize { calibration: \"calib.npy\" method: \"percentile\" percentile: 99.9 "
             "per_channel: false calibration_batch: 8 }");
  const Tensor calib = Images(40);
  WriteSamples(root_ / "q" / "calib.npy", calib);
  StartWithEngine(root_);
  ASSERT_EQ(VersionStatus("q", 1).state(), ModelVersionStatus::AVAILABLE)
      << VersionStatus("q", 1).status().error_message();

  const std::string fp32_bytes = ReadBytes(root_ / "q" / "1" / "model.onnx");
  QuantizeOptions options;
  options.range.method = CalibrationMethod::kPercentile;
  options.range.percentile = 99.9;
  options.per_channel = false;
  options.calibration_batch = 8;
  options.num_threads = 1;
  auto quantized = QuantizeModel(fp32_bytes, {{"input", calib}}, options);
  ASSERT_TRUE(quantized.ok()) << quantized.status();
  auto int8 = Model::LoadFromBytes(quantized->onnx_bytes);
  ASSERT_TRUE(int8.ok()) << int8.status();
  auto fp32 = Model::LoadFromBytes(fp32_bytes);
  ASSERT_TRUE(fp32.ok()) << fp32.status();

  const Tensor x = Images(6);
  auto context = (*int8)->CreateContext();
  ASSERT_TRUE(context.ok());
  auto expected = (*context)->Run({x});
  ASSERT_TRUE(expected.ok()) << expected.status();
  const std::vector<float> served = ServedLogits("q", x);
  ExpectSameFloats(served, (*expected)[0]);
  // ... and that is not the FP32 model's answer (the INT8 rounding shows).
  auto fp32_context = (*fp32)->CreateContext();
  auto fp32_out = (*fp32_context)->Run({x});
  ASSERT_TRUE(fp32_out.ok());
  ASSERT_EQ(served.size(), static_cast<size_t>((*fp32_out)[0].num_elements()));
  double diff = 0;
  for (size_t i = 0; i < served.size(); ++i) {
    diff = std::max(diff, double(std::fabs(served[i] - (*fp32_out)[0].data_as<float>()[i])));
  }
  EXPECT_GT(diff, 1e-4);

  const std::string scrape = server_->metrics().Scrape();
  EXPECT_EQ(MetricValue(scrape, "octet_model_weight_bytes", "q"),
            static_cast<double>((*int8)->weight_bytes()));
  EXPECT_EQ(MetricValue(scrape, "octet_model_fp32_weight_bytes", "q"),
            static_cast<double>((*fp32)->fp32_weight_bytes()));
  EXPECT_LT((*int8)->weight_bytes() * 3, (*fp32)->fp32_weight_bytes());
}

TEST_F(ServerQuantizeTest, BadQuantizeBlocksAreRefusedWhileThePreviousVersionServes) {
  // Version 1 brings its calibration file in its own directory.
  AddFp32Cnn("q", "quantize { calibration: \"calib.npy\" }");
  WriteSamples(root_ / "q" / "1" / "calib.npy", Images(16));
  // A model whose only version asks for an unknown method.
  AddFp32Cnn("median", "quantize { calibration: \"calib.npy\" method: \"median\" }");
  WriteSamples(root_ / "median" / "calib.npy", Images(16));
  StartWithEngine(root_);
  const ModelVersionStatus median = VersionStatus("median", 1);
  EXPECT_EQ(median.state(), ModelVersionStatus::END);
  EXPECT_EQ(median.status().error_code(), tensorflow::error::INVALID_ARGUMENT);
  EXPECT_THAT(median.status().error_message(), HasSubstr("quantize: method"));
  EXPECT_THAT(median.status().error_message(), HasSubstr("minmax"));
  const Tensor x = Images(3);
  int64_t version = 0;
  const std::vector<float> v1 = ServedLogits("q", x, &version);
  EXPECT_EQ(version, 1);

  // Version 2: no calibration file in its directory nor in the model's.
  fs::create_directories(root_ / "q" / "2");
  fs::copy_file(root_ / "q" / "1" / "model.onnx", root_ / "q" / "2" / "model.onnx");
  server_->repository().Poll();
  ModelVersionStatus status = VersionStatus("q", 2);
  EXPECT_EQ(status.state(), ModelVersionStatus::END);
  EXPECT_EQ(status.status().error_code(), tensorflow::error::NOT_FOUND);
  EXPECT_THAT(status.status().error_message(), HasSubstr("calibration file 'calib.npy' not found"));
  EXPECT_EQ(ServedLogits("q", x, &version), v1);
  EXPECT_EQ(version, 1);

  // Version 3: samples of the wrong image size.
  fs::create_directories(root_ / "q" / "3");
  fs::copy_file(root_ / "q" / "1" / "model.onnx", root_ / "q" / "3" / "model.onnx");
  WriteSamples(root_ / "q" / "3" / "calib.npy",
               Tensor::FromFloats({4, 1, 14, 14}, std::vector<float>(4 * 14 * 14, 0.5f)));
  server_->repository().Poll();
  status = VersionStatus("q", 3);
  EXPECT_EQ(status.state(), ModelVersionStatus::END);
  EXPECT_EQ(status.status().error_code(), tensorflow::error::INVALID_ARGUMENT);
  EXPECT_THAT(
      status.status().error_message(),
      HasSubstr("for input 'input' holds f32 [4,1,14,14]; the input takes f32 [N,1,28,28]"));
  EXPECT_EQ(ServedLogits("q", x, &version), v1);
  EXPECT_EQ(version, 1);

  // An unknown method in config.pbtxt: the reload of version 1 fails, version 1 keeps serving.
  fs::remove_all(root_ / "q" / "2");
  fs::remove_all(root_ / "q" / "3");
  testing::WriteFile(root_ / "q" / "config.pbtxt",
                     "quantize { calibration: \"calib.npy\" method: \"median\" }");
  server_->repository().Poll();
  EXPECT_EQ(ServedLogits("q", x, &version), v1);
  EXPECT_EQ(version, 1);
  EXPECT_THAT(server_->metrics().Scrape(),
              HasSubstr("octet_model_load_failures_total{model=\"q\"} 3"));
  EXPECT_EQ(VersionStatus("q", 1).state(), ModelVersionStatus::AVAILABLE);
}

}  // namespace
}  // namespace octet::server
