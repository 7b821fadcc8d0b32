// Server reflection as an outside tool uses it: buf curl (installed from npm into the build tree
// by the server_buf_install fixture) lists the services and methods of the real octet-server and
// calls health and GetModelMetadata with no .proto file at hand. Its answers are checked against
// the same calls made with the generated C++ stubs.
#include <stdio.h>
#include <sys/wait.h>

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server_process.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ServerProcess;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout
  std::string errors;  // stderr
  std::string all() const { return output + errors; }
};

// Runs `command` with sh; stderr goes through `stderr_file`.
CommandResult RunCommand(const std::string& command, const fs::path& stderr_file) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>'" + stderr_file.string() + "'").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.errors = testing::ReadWholeFile(stderr_file);
  return result;
}

class ServerBufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(OCTET_BUF_PATH))
        << OCTET_BUF_PATH << " is missing: the server_buf_install test installs it from the npm "
        << "registry (tests/server/install_buf.sh)";
    dir_ = testing::FreshTestDir("buf");
    testing::CopyDemoModel("fashion_mlp", dir_ / "models");
    ServerProcess::Options options;
    options.model_repository = dir_ / "models";
    options.health_port = true;
    ASSERT_TRUE(server_.Start(options));
    ASSERT_TRUE(server_.WaitServing(server_.InsecureChannel())) << server_.Log();
  }

  // buf curl over plaintext HTTP/2 (gRPC) to http://127.0.0.1:`port``path` (port 0 = the gRPC
  // port); a private HOME and cache so nothing outside the test directory is touched.
  CommandResult Curl(const std::string& args, const std::string& path = "", int port = 0) {
    return RunCommand(
        absl::StrCat("HOME='", dir_.string(), "' BUF_CACHE_DIR='", dir_.string(), "/buf-cache' '",
                     OCTET_BUF_PATH, "' curl --protocol grpc --http2-prior-knowledge ",
                     "--connect-timeout 30 ", args,
                     " http://127.0.0.1:", port ? port : server_.grpc_port(), path),
        dir_ / "buf.stderr");
  }

  fs::path dir_;
  ServerProcess server_;
};

TEST_F(ServerBufTest, ListsServicesAndMethodsThroughReflection) {
  CommandResult services = Curl("--list-services");
  ASSERT_EQ(services.exit_code, 0) << services.all();
  EXPECT_THAT(services.output, HasSubstr("tensorflow.serving.PredictionService"));
  EXPECT_THAT(services.output, HasSubstr("tensorflow.serving.ModelService"));
  EXPECT_THAT(services.output, HasSubstr("grpc.health.v1.Health"));

  CommandResult methods = Curl("--list-methods");
  ASSERT_EQ(methods.exit_code, 0) << methods.all();
  for (const char* method :
       {"tensorflow.serving.PredictionService/Predict",
        "tensorflow.serving.PredictionService/GetModelMetadata",
        "tensorflow.serving.ModelService/GetModelStatus", "grpc.health.v1.Health/Check"}) {
    EXPECT_THAT(methods.output, HasSubstr(method));
  }
}

TEST_F(ServerBufTest, CallsHealthAndGetModelMetadataWithoutProtoFiles) {
  CommandResult health = Curl("-d '{\"service\": \"\"}'", "/grpc.health.v1.Health/Check");
  ASSERT_EQ(health.exit_code, 0) << health.all();
  EXPECT_THAT(health.output, HasSubstr("\"SERVING\""));

  const std::string request_json =
      R"({"modelSpec": {"name": "fashion_mlp"}, "metadataField": ["signature_def"]})";
  CommandResult metadata = Curl(absl::StrCat("-d '", request_json, "'"),
                                "/tensorflow.serving.PredictionService/GetModelMetadata");
  ASSERT_EQ(metadata.exit_code, 0) << metadata.all();
  // The Any holding the signature was resolved through reflection too.
  EXPECT_THAT(metadata.output, HasSubstr("type.googleapis.com/tensorflow.serving.SignatureDefMap"));

  // Reference: the same call with the generated stub.
  tensorflow::serving::GetModelMetadataRequest request;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(request_json, &request).ok());
  tensorflow::serving::GetModelMetadataResponse want;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  ASSERT_TRUE(tensorflow::serving::PredictionService::NewStub(server_.InsecureChannel())
                  ->GetModelMetadata(&context, request, &want)
                  .ok());
  tensorflow::serving::GetModelMetadataResponse got;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(metadata.output, &got).ok())
      << metadata.output;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, want))
      << "buf: " << got.DebugString() << "\nstub: " << want.DebugString();
  EXPECT_EQ(want.model_spec().version().value(), 1);
}

TEST_F(ServerBufTest, HealthPortOffersNoReflection) {
  ASSERT_GT(server_.health_port(), 0);
  CommandResult services = Curl("--list-services", "", server_.health_port());
  EXPECT_NE(services.exit_code, 0) << services.all();
  EXPECT_THAT(services.all(), ::testing::Not(HasSubstr("tensorflow.serving")));
}

}  // namespace
}  // namespace octet::server
