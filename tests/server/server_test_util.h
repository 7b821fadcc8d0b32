// A running OctetServer on 127.0.0.1 (free ports) over a temporary model repository served by
// the fake loader, plus clients built from the .proto files.
#ifndef OCTET_TESTS_SERVER_SERVER_TEST_UTIL_H_
#define OCTET_TESTS_SERVER_SERVER_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fake_servable.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace octet::server::testing {

// HTTP GET of `path` on 127.0.0.1:port; the whole response ("" on failure).
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        std::filesystem::path(::testing::TempDir()) /
        ("server_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }
  void AddModel(const std::string& name, const std::string& config, int64_t version,
                const std::string& content = "features: 3") {
    WriteFile(root_ / name / "config.pbtxt", config);
    AddVersion(name, version, content);
  }
  void AddVersion(const std::string& name, int64_t version,
                  const std::string& content = "features: 3") {
    WriteFile(root_ / name / std::to_string(version) / "model.onnx", content);
  }
  // The /metrics HTTP endpoint costs ~2 s at shutdown (civetweb), so only tests that read it
  // over HTTP start it; the others read Metrics::Scrape().
  void StartServer(int max_message_bytes = 1 << 20, bool metrics_endpoint = false) {
    OctetServer::Options options;
    options.model_repository = root_.string();
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.metrics_port = metrics_endpoint ? 0 : -1;
    options.poll_interval = absl::Hours(1);  // tests poll by hand
    options.max_message_bytes = max_message_bytes;
    options.cpu_budget = 2;
    options.cost.per_core_hour = 0.05;
    options.cost.per_gib_hour = 0.01;
    options.loader = FakeLoader(&stats_);
    options.drain_quiet_period = absl::ZeroDuration();  // nothing here keeps sending at shutdown
    auto server = OctetServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                         grpc::InsecureChannelCredentials(), args);
    predict_ = tensorflow::serving::PredictionService::NewStub(channel_);
    models_ = tensorflow::serving::ModelService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  // A request for `rows` rows of 3 features, value(r, k) = seed + 10 r + k.
  static tensorflow::serving::PredictRequest MakeRequest(const std::string& model, int64_t rows,
                                                         float seed, bool typed = false) {
    tensorflow::serving::PredictRequest request;
    request.mutable_model_spec()->set_name(model);
    tensorflow::TensorProto& x = (*request.mutable_inputs())["x"];
    x.set_dtype(tensorflow::DT_FLOAT);
    x.mutable_tensor_shape()->add_dim()->set_size(rows);
    x.mutable_tensor_shape()->add_dim()->set_size(3);
    std::vector<float> values;
    for (int64_t r = 0; r < rows; ++r) {
      for (int k = 0; k < 3; ++k) values.push_back(seed + 10.0f * r + k);
    }
    if (typed) {
      for (float v : values) x.add_float_val(v);
    } else {
      x.set_tensor_content(values.data(), values.size() * sizeof(float));
    }
    return request;
  }
  static std::vector<float> Floats(const tensorflow::TensorProto& t) {
    std::vector<float> out(t.tensor_content().size() / sizeof(float));
    std::memcpy(out.data(), t.tensor_content().data(), t.tensor_content().size());
    return out;
  }
  // True if `response` is the fake model's answer to MakeRequest(_, rows, seed) for `version`.
  static bool IsExpectedAnswer(const tensorflow::serving::PredictResponse& response, int64_t rows,
                               float seed, int64_t version) {
    auto y = response.outputs().find("y");
    auto sum = response.outputs().find("rowsum");
    if (y == response.outputs().end() || sum == response.outputs().end()) return false;
    std::vector<float> yv = Floats(y->second), sv = Floats(sum->second);
    if (yv.size() != static_cast<size_t>(rows * 3) || sv.size() != static_cast<size_t>(rows)) {
      return false;
    }
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0;
      for (int k = 0; k < 3; ++k) {
        const float x = seed + 10.0f * r + k;
        s += x;
        if (yv[r * 3 + k] != 2 * x + version) return false;
      }
      if (sv[r] != s) return false;
    }
    return response.model_spec().version().value() == version;
  }

  grpc::Status Predict(const tensorflow::serving::PredictRequest& request,
                       tensorflow::serving::PredictResponse* response,
                       absl::Duration timeout = absl::Seconds(30)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return predict_->Predict(&context, request, response);
  }
  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status st = health_->Check(&context, request, &response);
    return st.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }

  std::filesystem::path root_;
  FakeStats stats_;
  std::unique_ptr<OctetServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tensorflow::serving::PredictionService::Stub> predict_;
  std::unique_ptr<tensorflow::serving::ModelService::Stub> models_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace octet::server::testing

#endif  // OCTET_TESTS_SERVER_SERVER_TEST_UTIL_H_
