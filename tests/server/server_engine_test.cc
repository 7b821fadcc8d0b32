// The server with the real engine (OctetModelLoader): a small MLP built here as an ONNX file,
// served over gRPC; answers must match the engine run in-process on the same inputs and the
// hand-computed relu(x W + b).
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "core/model.h"
#include "core/onnx_tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "server_test_util.h"

namespace octet::server {
namespace {

constexpr int64_t kIn = 5;
constexpr int64_t kOut = 4;

float Weight(int64_t i, int64_t o) {
  return 0.1f * static_cast<float>((i * 7 + o * 3) % 11) - 0.5f;
}
float Bias(int64_t o) { return 0.05f * static_cast<float>(o) - 0.1f; }

// input "input" f32 [batch, kIn] -> Gemm(W, b) -> Relu -> "logits" [batch, kOut] (what
// torch.nn.Linear + ReLU export to).
// `batch` < 0 makes the batch dimension symbolic.
std::string MlpOnnx(int64_t batch) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(13);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("mlp");
  std::vector<float> w, b;
  for (int64_t i = 0; i < kIn; ++i) {
    for (int64_t o = 0; o < kOut; ++o) w.push_back(Weight(i, o));
  }
  for (int64_t o = 0; o < kOut; ++o) b.push_back(Bias(o));
  *g->add_initializer() = TensorToProto(Tensor::FromFloats({kIn, kOut}, w), "W");
  *g->add_initializer() = TensorToProto(Tensor::FromFloats({kOut}, b), "B");
  auto add_value = [batch](onnx::ValueInfoProto* v, const std::string& name, int64_t width) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* d0 = t->mutable_shape()->add_dim();
    if (batch < 0) {
      d0->set_dim_param("batch");
    } else {
      d0->set_dim_value(batch);
    }
    t->mutable_shape()->add_dim()->set_dim_value(width);
  };
  add_value(g->add_input(), "input", kIn);
  add_value(g->add_output(), "logits", kOut);
  auto node = [g](const std::string& op, std::vector<std::string> in, const std::string& out) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(op);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
  };
  node("Gemm", {"input", "W", "B"}, "pre");
  node("Relu", {"pre"}, "logits");
  return model.SerializeAsString();
}

class ServerEngineTest : public testing::ServerFixture {
 protected:
  void AddMlp(const std::string& name, int64_t batch, const std::string& config) {
    testing::WriteFile(root_ / name / "config.pbtxt", config);
    testing::WriteFile(root_ / name / "1" / "model.onnx", MlpOnnx(batch));
  }
  void StartWithEngine() {
    OctetServer::Options options;
    options.model_repository = root_.string();
    options.host = "127.0.0.1";
    options.grpc_port = 0;
    options.metrics_port = -1;
    options.poll_interval = absl::Hours(1);
    options.cpu_budget = 2;  // loader left empty: the Octet engine
    auto server = OctetServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    predict_ = tensorflow::serving::PredictionService::NewStub(channel_);
  }
  static std::vector<float> Input(int64_t rows, float seed) {
    std::vector<float> x;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < kIn; ++i) x.push_back(std::sin(seed + 0.7f * r + 0.3f * i));
    }
    return x;
  }
  static tensorflow::serving::PredictRequest Request(const std::string& model, int64_t rows,
                                                     const std::vector<float>& x) {
    tensorflow::serving::PredictRequest request;
    request.mutable_model_spec()->set_name(model);
    auto& t = (*request.mutable_inputs())["input"];
    t.set_dtype(tensorflow::DT_FLOAT);
    t.mutable_tensor_shape()->add_dim()->set_size(rows);
    t.mutable_tensor_shape()->add_dim()->set_size(kIn);
    t.set_tensor_content(x.data(), x.size() * sizeof(float));
    return request;
  }
  static std::vector<float> HandComputed(const std::vector<float>& x) {
    std::vector<float> y;
    for (size_t r = 0; r < x.size() / kIn; ++r) {
      for (int64_t o = 0; o < kOut; ++o) {
        float acc = Bias(o);
        for (int64_t i = 0; i < kIn; ++i) acc += x[r * kIn + i] * Weight(i, o);
        y.push_back(std::max(acc, 0.0f));
      }
    }
    return y;
  }
};

TEST_F(ServerEngineTest, PredictMatchesTheEngineAndTheHandComputedResult) {
  AddMlp("mlp", -1, "batching { max_batch_size: 8 }");
  StartWithEngine();
  const std::vector<float> x = Input(3, 0.25f);
  tensorflow::serving::PredictResponse response;
  grpc::Status st = Predict(Request("mlp", 3, x), &response);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::vector<float> served = Floats(response.outputs().at("logits"));

  auto model = Model::LoadFromBytes(MlpOnnx(-1));
  ASSERT_TRUE(model.ok()) << model.status();
  auto context = (*model)->CreateContext();
  ASSERT_TRUE(context.ok());
  auto engine = (*context)->Run({Tensor::FromFloats({3, kIn}, x)});
  ASSERT_TRUE(engine.ok()) << engine.status();
  const Tensor& expected = (*engine)[0];
  const std::vector<float> hand = HandComputed(x);
  ASSERT_EQ(served.size(), hand.size());
  for (size_t i = 0; i < served.size(); ++i) {
    EXPECT_EQ(served[i], expected.data_as<float>()[i]) << i;
    EXPECT_NEAR(served[i], hand[i], 1e-5f) << i;
  }
}

TEST_F(ServerEngineTest, ConcurrentBatchedRequestsMatchTheirSingleRequestResults) {
  AddMlp("mlp", -1, "batching { max_batch_size: 16 max_queue_delay_micros: 2000 }");
  StartWithEngine();
  constexpr int kClients = 16;
  std::atomic<int> bad{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 10; ++i) {
        const int64_t rows = 1 + (c + i) % 4;
        const std::vector<float> x = Input(rows, float(c * 10 + i));
        tensorflow::serving::PredictResponse response;
        if (!Predict(Request("mlp", rows, x), &response).ok()) {
          bad.fetch_add(1);
          continue;
        }
        const std::vector<float> served = Floats(response.outputs().at("logits"));
        const std::vector<float> hand = HandComputed(x);
        if (served.size() != hand.size()) {
          bad.fetch_add(1);
          continue;
        }
        for (size_t k = 0; k < hand.size(); ++k) {
          if (std::fabs(served[k] - hand[k]) > 1e-5f) {
            bad.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_THAT(server_->metrics().Scrape(),
              ::testing::HasSubstr("octet_model_weight_bytes{model=\"mlp\",version=\"1\"}"));
}

TEST_F(ServerEngineTest, FixedBatchModelIsServedUnbatched) {
  AddMlp("fixed", 2, "");
  StartWithEngine();
  const std::vector<float> x = Input(2, 1.5f);
  tensorflow::serving::PredictResponse response;
  ASSERT_TRUE(Predict(Request("fixed", 2, x), &response).ok());
  const std::vector<float> served = Floats(response.outputs().at("logits"));
  const std::vector<float> hand = HandComputed(x);
  ASSERT_EQ(served.size(), hand.size());
  for (size_t i = 0; i < hand.size(); ++i) EXPECT_NEAR(served[i], hand[i], 1e-5f);
  grpc::Status st = Predict(Request("fixed", 3, Input(3, 0)), &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("input 'input': dimension 0 is 3"));
}

TEST_F(ServerEngineTest, CorruptOnnxIsRefusedWithItsReason) {
  AddMlp("mlp", -1, "");
  testing::WriteFile(root_ / "mlp" / "2" / "model.onnx", "not an onnx file");
  StartWithEngine();
  auto version = server_->repository().Get("mlp", std::nullopt);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ((*version)->version(), 1);
  auto status = server_->repository().GetStatus("mlp", 2).value();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_FALSE(status[0].status.ok());
}

}  // namespace
}  // namespace octet::server
