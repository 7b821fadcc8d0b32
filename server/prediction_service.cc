#include "server/prediction_service.h"

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/request_validation.h"
#include "server/status_util.h"
#include "server/tensor_proto_util.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow_serving/apis/get_model_metadata.pb.h"

namespace octet::server {
namespace {

using tensorflow::serving::ModelSpec;

std::optional<int64_t> RequestedVersion(const ModelSpec& spec) {
  if (spec.has_version()) return spec.version().value();
  return std::nullopt;
}

absl::Status CheckModelSpec(const ModelSpec& spec) {
  if (spec.name().empty()) return absl::InvalidArgumentError("model_spec.name is empty");
  if (spec.version_choice_case() == ModelSpec::kVersionLabel) {
    return absl::InvalidArgumentError("model_spec.version_label is not supported; use version");
  }
  return absl::OkStatus();
}

void FillModelSpec(const LoadedVersion& version, ModelSpec* spec) {
  spec->set_name(version.model());
  spec->mutable_version()->set_value(version.version());
  spec->set_signature_name(kDefaultSignature);
}

absl::Time ToAbslDeadline(std::chrono::system_clock::time_point deadline) {
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// One Predict call. Lives until gRPC calls OnDone(); the batch thread finishes it.
class PredictReactor : public grpc::ServerUnaryReactor {
 public:
  PredictReactor(Metrics* metrics, RequestGate* gate) : metrics_(metrics), gate_(gate) {}

  // Answers a request that never reached the batcher.
  void FinishEarly(const absl::Status& status, bool entered) {
    if (version_ != nullptr) {
      version_->metrics().RecordRequest(status.code());
    } else {
      metrics_->RecordUnroutedRequest(status.code());
    }
    if (entered) gate_->Exit();
    Finish(ToGrpcStatus(status));
  }

  void Start(std::shared_ptr<LoadedVersion> version) { version_ = std::move(version); }
  LoadedVersion* version() const { return version_.get(); }

  void SetRequest(std::shared_ptr<InferenceRequest> request) {
    absl::MutexLock lock(&mu_);
    request_ = std::move(request);
  }

  // Called once by the InferenceRequest (on a batch thread) or right after a failed Submit.
  void Complete(const absl::Status& status) {
    VersionMetrics& m = version_->metrics();
    m.RecordRequest(status.code());
    m.request_latency.Observe(absl::ToDoubleSeconds(absl::Now() - start_));
    m.inflight.Decrement();
    gate_->Exit();
    Finish(ToGrpcStatus(status));
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (request_ != nullptr) request_->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  Metrics* const metrics_;
  RequestGate* const gate_;
  const absl::Time start_ = absl::Now();
  std::shared_ptr<LoadedVersion> version_;  // held until answered: keeps the version loaded
  absl::Mutex mu_;
  std::shared_ptr<InferenceRequest> request_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* PredictionServiceImpl::Predict(
    grpc::CallbackServerContext* context, const tensorflow::serving::PredictRequest* request,
    tensorflow::serving::PredictResponse* response) {
  auto* reactor = new PredictReactor(metrics_, gate_);
  if (absl::Status st = gate_->Enter(context); !st.ok()) {
    reactor->FinishEarly(st, /*entered=*/false);
    return reactor;
  }
  if (absl::Status st = CheckModelSpec(request->model_spec()); !st.ok()) {
    reactor->FinishEarly(st, true);
    return reactor;
  }
  absl::StatusOr<std::shared_ptr<LoadedVersion>> version =
      repository_->Get(request->model_spec().name(), RequestedVersion(request->model_spec()));
  if (!version.ok()) {
    reactor->FinishEarly(version.status(), true);
    return reactor;
  }
  reactor->Start(*version);
  LoadedVersion* v = reactor->version();
  ValidationLimits limits;
  limits.batchable = v->batchable();
  limits.max_request_rows = v->max_request_rows();
  limits.nan_policy = v->config().nan_policy();
  absl::StatusOr<ValidatedRequest> validated =
      ValidatePredictRequest(*request, v->servable().inputs(), v->servable().outputs(), limits);
  if (!validated.ok()) {
    reactor->FinishEarly(validated.status(), true);
    return reactor;
  }
  FillModelSpec(*v, response->mutable_model_spec());
  v->metrics().inflight.Increment();
  auto inference = std::make_shared<InferenceRequest>(
      std::move(validated->inputs), validated->rows, ToAbslDeadline(context->deadline()),
      std::move(validated->batch_key),
      [reactor, response, v, indices = std::move(validated->output_indices)](
          absl::Status status, InferenceRequest& done) {
        if (status.ok()) {
          const auto& specs = v->servable().outputs();
          auto* outputs = response->mutable_outputs();
          for (int i : indices) {
            if (static_cast<size_t>(i) >= done.outputs().size()) {
              status = absl::InternalError("the model returned fewer outputs than it declares");
              break;
            }
            TensorToProto(done.outputs()[static_cast<size_t>(i)], &(*outputs)[specs[i].name]);
          }
        }
        reactor->Complete(status);
      });
  reactor->SetRequest(inference);
  if (absl::Status st = v->Submit(inference); !st.ok()) reactor->Complete(st);
  return reactor;
}

void FillSignatureDefMap(const Servable& servable,
                         tensorflow::serving::GetModelMetadataResponse* response) {
  tensorflow::serving::SignatureDefMap map;
  tensorflow::SignatureDef& def = (*map.mutable_signature_def())[kDefaultSignature];
  def.set_method_name("tensorflow/serving/predict");
  auto fill = [](const TensorSpec& spec, tensorflow::TensorInfo* info) {
    info->set_name(spec.name);
    info->set_dtype(ToDataType(spec.dtype));
    for (size_t d = 0; d < spec.dims.size(); ++d) {
      auto* dim = info->mutable_tensor_shape()->add_dim();
      dim->set_size(spec.dims[d] >= 0 ? spec.dims[d] : -1);
      if (d < spec.dim_names.size()) dim->set_name(spec.dim_names[d]);
    }
  };
  for (const TensorSpec& s : servable.inputs()) fill(s, &(*def.mutable_inputs())[s.name]);
  for (const TensorSpec& s : servable.outputs()) fill(s, &(*def.mutable_outputs())[s.name]);
  (*response->mutable_metadata())["signature_def"].PackFrom(map);
}

grpc::ServerUnaryReactor* PredictionServiceImpl::GetModelMetadata(
    grpc::CallbackServerContext* context,
    const tensorflow::serving::GetModelMetadataRequest* request,
    tensorflow::serving::GetModelMetadataResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = gate_->Enter(context);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  status = CheckModelSpec(request->model_spec());
  if (status.ok() && request->metadata_field_size() == 0) {
    status = absl::InvalidArgumentError("metadata_field is empty; ask for \"signature_def\"");
  }
  for (const std::string& field : request->metadata_field()) {
    if (status.ok() && field != "signature_def") {
      status = absl::InvalidArgumentError(absl::StrCat(
          "metadata_field ", QuoteName(field), " is not supported; only \"signature_def\" is"));
    }
  }
  if (status.ok()) {
    absl::StatusOr<std::shared_ptr<LoadedVersion>> version =
        repository_->Get(request->model_spec().name(), RequestedVersion(request->model_spec()));
    if (version.ok()) {
      FillModelSpec(**version, response->mutable_model_spec());
      FillSignatureDefMap((*version)->servable(), response);
    } else {
      status = version.status();
    }
  }
  gate_->Exit();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace octet::server
