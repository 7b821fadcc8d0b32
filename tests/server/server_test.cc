// The server end to end over gRPC on 127.0.0.1, with the fake model: Predict, metadata, status,
// health, reflection, errors, malformed and oversized messages, metrics.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "server_test_util.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow_serving/apis/get_model_metadata.pb.h"

namespace octet::server {
namespace {

using tensorflow::serving::PredictRequest;
using tensorflow::serving::PredictResponse;
using ::testing::HasSubstr;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

class ServerTest : public testing::ServerFixture {};

TEST_F(ServerTest, PredictReturnsTheModelsOutputs) {
  AddModel("m", "", 1);
  StartServer();
  for (bool typed : {false, true}) {
    PredictResponse response;
    grpc::Status st = Predict(MakeRequest("m", 2, 5.0f, typed), &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(IsExpectedAnswer(response, 2, 5.0f, 1));
    EXPECT_EQ(response.model_spec().name(), "m");
    EXPECT_EQ(response.model_spec().signature_name(), "serving_default");
    EXPECT_EQ(response.outputs().at("y").dtype(), tensorflow::DT_FLOAT);
    EXPECT_EQ(response.outputs().at("y").tensor_shape().dim(1).size(), 3);
  }
  PredictRequest filtered = MakeRequest("m", 1, 0.0f);
  filtered.add_output_filter("rowsum");
  filtered.mutable_model_spec()->mutable_version()->set_value(1);
  PredictResponse response;
  ASSERT_TRUE(Predict(filtered, &response).ok());
  EXPECT_EQ(response.outputs().size(), 1u);
  EXPECT_EQ(Floats(response.outputs().at("rowsum")), std::vector<float>{3.0f});
}

TEST_F(ServerTest, EveryErrorHasItsCodeAndNamesTheProblem) {
  AddModel("m", "batching { max_request_rows: 4 }", 1);
  StartServer();
  PredictResponse response;
  auto expect = [&](const PredictRequest& r, grpc::StatusCode code, const std::string& text) {
    grpc::Status st = Predict(r, &response);
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(text));
  };
  expect(MakeRequest("nope", 1, 0), grpc::StatusCode::NOT_FOUND, "model 'nope' not found");
  expect(MakeRequest("../m", 1, 0), grpc::StatusCode::NOT_FOUND, "not found");
  PredictRequest v9 = MakeRequest("m", 1, 0);
  v9.mutable_model_spec()->mutable_version()->set_value(9);
  expect(v9, grpc::StatusCode::NOT_FOUND, "version 9");
  PredictRequest label = MakeRequest("m", 1, 0);
  label.mutable_model_spec()->set_version_label("stable");
  expect(label, grpc::StatusCode::INVALID_ARGUMENT, "version_label");
  PredictRequest dtype = MakeRequest("m", 1, 0);
  (*dtype.mutable_inputs())["x"].set_dtype(tensorflow::DT_INT32);
  expect(dtype, grpc::StatusCode::INVALID_ARGUMENT, "input 'x': dtype DT_INT32");
  PredictRequest shape = MakeRequest("m", 1, 0);
  (*shape.mutable_inputs())["x"].mutable_tensor_shape()->mutable_dim(1)->set_size(4);
  expect(shape, grpc::StatusCode::INVALID_ARGUMENT, "input 'x'");
  PredictRequest bytes = MakeRequest("m", 1, 0);
  (*bytes.mutable_inputs())["x"].mutable_tensor_content()->pop_back();
  expect(bytes, grpc::StatusCode::INVALID_ARGUMENT, "tensor_content has 11 bytes");
  PredictRequest missing = MakeRequest("m", 1, 0);
  missing.mutable_inputs()->clear();
  expect(missing, grpc::StatusCode::INVALID_ARGUMENT, "missing input 'x'");
  PredictRequest extra = MakeRequest("m", 1, 0);
  (*extra.mutable_inputs())["z"] = extra.inputs().at("x");
  expect(extra, grpc::StatusCode::INVALID_ARGUMENT, "unknown input 'z'");
  expect(MakeRequest("m", 5, 0), grpc::StatusCode::INVALID_ARGUMENT,
         "batch of 5 rows exceeds the limit of 4");
  PredictRequest no_name = MakeRequest("", 1, 0);
  expect(no_name, grpc::StatusCode::INVALID_ARGUMENT, "model_spec.name is empty");
  // Still serving after all that.
  ASSERT_TRUE(Predict(MakeRequest("m", 4, 1.0f), &response).ok());
  EXPECT_TRUE(IsExpectedAnswer(response, 4, 1.0f, 1));
  const std::string metrics = server_->metrics().Scrape();
  EXPECT_THAT(
      metrics,
      HasSubstr("octet_requests_total{code=\"INVALID_ARGUMENT\",model=\"m\",version=\"1\"}"));
  EXPECT_THAT(metrics,
              HasSubstr("octet_requests_total{code=\"NOT_FOUND\",model=\"\",version=\"\"}"));
}

TEST_F(ServerTest, MetadataAndStatusDescribeTheModel) {
  AddModel("m", "", 1);
  AddModel("broken", "", 1, "corrupt");
  StartServer();
  grpc::ClientContext ctx;
  tensorflow::serving::GetModelMetadataRequest request;
  request.mutable_model_spec()->set_name("m");
  request.add_metadata_field("signature_def");
  tensorflow::serving::GetModelMetadataResponse response;
  ASSERT_TRUE(predict_->GetModelMetadata(&ctx, request, &response).ok());
  EXPECT_EQ(response.model_spec().version().value(), 1);
  tensorflow::serving::SignatureDefMap map;
  ASSERT_TRUE(response.metadata().at("signature_def").UnpackTo(&map));
  const tensorflow::SignatureDef& def = map.signature_def().at("serving_default");
  EXPECT_EQ(def.method_name(), "tensorflow/serving/predict");
  const tensorflow::TensorInfo& x = def.inputs().at("x");
  EXPECT_EQ(x.name(), "x");
  EXPECT_EQ(x.dtype(), tensorflow::DT_FLOAT);
  ASSERT_EQ(x.tensor_shape().dim_size(), 2);
  EXPECT_EQ(x.tensor_shape().dim(0).size(), -1);
  EXPECT_EQ(x.tensor_shape().dim(0).name(), "batch");
  EXPECT_EQ(x.tensor_shape().dim(1).size(), 3);
  EXPECT_EQ(def.outputs().at("rowsum").tensor_shape().dim_size(), 1);

  grpc::ClientContext bad_ctx;
  request.set_metadata_field(0, "everything");
  EXPECT_EQ(predict_->GetModelMetadata(&bad_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext status_ctx;
  tensorflow::serving::GetModelStatusRequest status_request;
  status_request.mutable_model_spec()->set_name("broken");
  tensorflow::serving::GetModelStatusResponse status;
  ASSERT_TRUE(models_->GetModelStatus(&status_ctx, status_request, &status).ok());
  ASSERT_EQ(status.model_version_status_size(), 1);
  EXPECT_EQ(status.model_version_status(0).state(), tensorflow::serving::ModelVersionStatus::END);
  EXPECT_EQ(status.model_version_status(0).status().error_code(),
            tensorflow::error::INVALID_ARGUMENT);
  EXPECT_THAT(status.model_version_status(0).status().error_message(), HasSubstr("corrupt"));

  grpc::ClientContext ok_ctx;
  status_request.mutable_model_spec()->set_name("m");
  ASSERT_TRUE(models_->GetModelStatus(&ok_ctx, status_request, &status).ok());
  ASSERT_EQ(status.model_version_status_size(), 1);
  EXPECT_EQ(status.model_version_status(0).state(),
            tensorflow::serving::ModelVersionStatus::AVAILABLE);
  EXPECT_EQ(status.model_version_status(0).status().error_code(), tensorflow::error::OK);

  grpc::ClientContext missing_ctx;
  status_request.mutable_model_spec()->set_name("nope");
  EXPECT_EQ(models_->GetModelStatus(&missing_ctx, status_request, &status).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, HealthIsServingOnlyWhenEveryModelIsLoaded) {
  AddModel("m", "", 1);
  AddModel("later", "", 1, "corrupt");
  StartServer();
  EXPECT_EQ(Health(""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(Health("tensorflow.serving.PredictionService"), HealthStatus::NOT_SERVING);
  AddVersion("later", 2);
  server_->repository().Poll();
  EXPECT_EQ(Health(""), HealthStatus::SERVING);
  EXPECT_EQ(Health("tensorflow.serving.PredictionService"), HealthStatus::SERVING);
  EXPECT_EQ(Health("tensorflow.serving.ModelService"), HealthStatus::SERVING);
  EXPECT_TRUE(server_->Drain(absl::Seconds(5)));
  EXPECT_EQ(Health(""), HealthStatus::UNKNOWN);  // the listener is gone after draining
}

grpc::Status RawCall(grpc::GenericStub& stub, const std::string& method, const std::string& bytes,
                     std::string* reply) {
  grpc::ClientContext ctx;
  grpc::Slice slice(bytes);
  grpc::ByteBuffer in(&slice, 1), out;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (status.ok() && reply != nullptr) {
    std::vector<grpc::Slice> slices;
    (void)out.Dump(&slices);
    reply->clear();
    for (const auto& s : slices) reply->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

TEST_F(ServerTest, UnservedMethodsAreUnimplemented) {
  AddModel("m", "", 1);
  StartServer();
  grpc::GenericStub generic(channel_);
  for (const char* method : {"/tensorflow.serving.PredictionService/Classify",
                             "/tensorflow.serving.PredictionService/MultiInference",
                             "/tensorflow.serving.ModelService/HandleReloadConfigRequest"}) {
    EXPECT_EQ(RawCall(generic, method, "", nullptr).error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << method;
  }
}

TEST_F(ServerTest, MalformedAndOversizedMessagesLeaveTheServerServing) {
  AddModel("m", "", 1);
  StartServer(/*max_message_bytes=*/64 << 10);
  grpc::GenericStub generic(channel_);
  grpc::Status st = RawCall(generic, "/tensorflow.serving.PredictionService/Predict",
                            std::string("\xff\xff\xff\xff\x0f garbage", 14), nullptr);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  PredictResponse response;
  PredictRequest big = MakeRequest("m", 10000, 0);  // 120 kB > 64 kB
  EXPECT_EQ(Predict(big, &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A well-formed message whose shape claims far more than it carries.
  PredictRequest liar = MakeRequest("m", 1, 0);
  (*liar.mutable_inputs())["x"].mutable_tensor_shape()->mutable_dim(0)->set_size(int64_t{1} << 39);
  EXPECT_EQ(Predict(liar, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Predict(MakeRequest("m", 3, 2.0f), &response).ok());
  EXPECT_TRUE(IsExpectedAnswer(response, 3, 2.0f, 1));
}

// Minimal grpc.reflection.v1alpha client: the message types come from the descriptors that
// libgrpc++_reflection registers, encoded with DynamicMessage and sent over a generic stream.
class ReflectionClient {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel) : stub_(std::move(channel)) {
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    request_type_ = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
    response_type_ =
        pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  }
  bool ready() const { return request_type_ != nullptr && response_type_ != nullptr; }

  // Sends one request with `field` = `value`; returns the response as text format.
  std::string Ask(const std::string& field, const std::string& value) {
    std::unique_ptr<google::protobuf::Message> request(factory_.GetPrototype(request_type_)->New());
    request->GetReflection()->SetString(request.get(), request_type_->FindFieldByName(field),
                                        value);
    grpc::ClientContext ctx;
    grpc::CompletionQueue cq;
    auto call = stub_.PrepareCall(&ctx,
                                  "/grpc.reflection.v1alpha.ServerReflection/"
                                  "ServerReflectionInfo",
                                  &cq);
    void* tag;
    bool ok;
    call->StartCall(reinterpret_cast<void*>(1));
    cq.Next(&tag, &ok);
    grpc::Slice slice(request->SerializeAsString());
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    call->WritesDone(reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
    grpc::ByteBuffer reply;
    call->Read(&reply, reinterpret_cast<void*>(4));
    cq.Next(&tag, &ok);
    std::string bytes;
    std::vector<grpc::Slice> slices;
    if (ok && reply.Dump(&slices).ok()) {
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    std::unique_ptr<google::protobuf::Message> response(
        factory_.GetPrototype(response_type_)->New());
    if (!response->ParseFromString(bytes)) return "";
    return response->DebugString();
  }

 private:
  grpc::GenericStub stub_;
  google::protobuf::DynamicMessageFactory factory_;
  const google::protobuf::Descriptor* request_type_ = nullptr;
  const google::protobuf::Descriptor* response_type_ = nullptr;
};

TEST_F(ServerTest, ReflectionListsAndDescribesTheServices) {
  AddModel("m", "", 1);
  StartServer();
  ReflectionClient reflection(channel_);
  ASSERT_TRUE(reflection.ready());
  const std::string services = reflection.Ask("list_services", "");
  EXPECT_THAT(services, HasSubstr("tensorflow.serving.PredictionService"));
  EXPECT_THAT(services, HasSubstr("tensorflow.serving.ModelService"));
  EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health"));
  const std::string file =
      reflection.Ask("file_containing_symbol", "tensorflow.serving.PredictionService");
  EXPECT_THAT(file, HasSubstr("file_descriptor_response"));
  EXPECT_THAT(file, HasSubstr("prediction_service.proto"));
  EXPECT_THAT(reflection.Ask("file_containing_symbol", "grpc.health.v1.Health"),
              HasSubstr("health.proto"));
}

TEST_F(ServerTest, MetricsEndpointExposesEveryMetric) {
  AddModel("m", "", 1);
  StartServer(1 << 20, /*metrics_endpoint=*/true);
  PredictResponse response;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Predict(MakeRequest("m", 2, float(i)), &response).ok());
  const std::string body = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_THAT(body, HasSubstr("200 OK"));
  for (const char* name :
       {"octet_requests_total{code=\"OK\",model=\"m\",version=\"1\"} 5",
        "octet_inferences_total{model=\"m\",version=\"1\"} 10",
        "octet_request_latency_seconds_count{model=\"m\",version=\"1\"} 5",
        "octet_queue_latency_seconds_count{model=\"m\",version=\"1\"} 5",
        "octet_compute_latency_seconds_count{model=\"m\",version=\"1\"}",
        "octet_batch_size_sum{model=\"m\",version=\"1\"} 10", "octet_queue_depth{",
        "octet_inflight_requests{model=\"m\",version=\"1\"} 0",
        "octet_model_weight_bytes{model=\"m\",version=\"1\"} 1000",
        "octet_model_fp32_weight_bytes{model=\"m\",version=\"1\"} 4000",
        "octet_model_loaded{model=\"m\",version=\"1\"} 1", "octet_compute_cpu_seconds_total{",
        "octet_cost_per_million_inferences{model=\"m\",version=\"1\"}",
        "process_resident_memory_bytes ", "process_cpu_seconds_total ",
        "process_start_time_seconds "}) {
    EXPECT_THAT(body, HasSubstr(name));
  }
}

}  // namespace
}  // namespace octet::server
