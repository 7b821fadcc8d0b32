#include "server/model_service.h"

#include <optional>

#include "server/status_util.h"

namespace octet::server {

grpc::ServerUnaryReactor* ModelServiceImpl::GetModelStatus(
    grpc::CallbackServerContext* context, const tensorflow::serving::GetModelStatusRequest* request,
    tensorflow::serving::GetModelStatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = gate_->Enter(context);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  const auto& spec = request->model_spec();
  if (spec.name().empty()) {
    status = absl::InvalidArgumentError("model_spec.name is empty");
  } else if (spec.version_choice_case() == tensorflow::serving::ModelSpec::kVersionLabel) {
    status = absl::InvalidArgumentError("model_spec.version_label is not supported; use version");
  } else {
    std::optional<int64_t> version;
    if (spec.has_version()) version = spec.version().value();
    absl::StatusOr<std::vector<VersionStatus>> versions =
        repository_->GetStatus(spec.name(), version);
    if (versions.ok()) {
      for (const VersionStatus& v : *versions) {
        auto* out = response->add_model_version_status();
        out->set_version(v.version);
        out->set_state(v.state);
        out->mutable_status()->set_error_code(
            static_cast<tensorflow::error::Code>(v.status.code()));
        out->mutable_status()->set_error_message(TruncateMessage(v.status.message()));
      }
    } else {
      status = versions.status();
    }
  }
  gate_->Exit();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace octet::server
