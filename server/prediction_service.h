// tensorflow.serving.PredictionService: Predict (validated, batched, executed by the model's
// LoadedVersion) and GetModelMetadata (the serving_default SignatureDef). Uses gRPC's callback
// API so that a request waiting in the batching queue holds no thread.
#ifndef OCTET_SERVER_PREDICTION_SERVICE_H_
#define OCTET_SERVER_PREDICTION_SERVICE_H_

#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/request_gate.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace octet::server {

class PredictionServiceImpl final : public tensorflow::serving::PredictionService::CallbackService {
 public:
  // Not owned; all must outlive the service.
  PredictionServiceImpl(ModelRepository* repository, Metrics* metrics, RequestGate* gate)
      : repository_(repository), metrics_(metrics), gate_(gate) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context,
                                    const tensorflow::serving::PredictRequest* request,
                                    tensorflow::serving::PredictResponse* response) override;
  grpc::ServerUnaryReactor* GetModelMetadata(
      grpc::CallbackServerContext* context,
      const tensorflow::serving::GetModelMetadataRequest* request,
      tensorflow::serving::GetModelMetadataResponse* response) override;

 private:
  ModelRepository* const repository_;
  Metrics* const metrics_;
  RequestGate* const gate_;
};

// Fills the SignatureDefMap TF Serving returns under metadata["signature_def"].
void FillSignatureDefMap(const Servable& servable,
                         tensorflow::serving::GetModelMetadataResponse* response);

}  // namespace octet::server

#endif  // OCTET_SERVER_PREDICTION_SERVICE_H_
