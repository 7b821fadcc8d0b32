// tensorflow.serving.ModelService: GetModelStatus from the model repository's version states.
#ifndef OCTET_SERVER_MODEL_SERVICE_H_
#define OCTET_SERVER_MODEL_SERVICE_H_

#include "server/model_repository.h"
#include "server/request_gate.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"

namespace octet::server {

class ModelServiceImpl final : public tensorflow::serving::ModelService::CallbackService {
 public:
  // Not owned; both must outlive the service.
  ModelServiceImpl(ModelRepository* repository, RequestGate* gate)
      : repository_(repository), gate_(gate) {}

  grpc::ServerUnaryReactor* GetModelStatus(
      grpc::CallbackServerContext* context,
      const tensorflow::serving::GetModelStatusRequest* request,
      tensorflow::serving::GetModelStatusResponse* response) override;

 private:
  ModelRepository* const repository_;
  RequestGate* const gate_;
};

}  // namespace octet::server

#endif  // OCTET_SERVER_MODEL_SERVICE_H_
