// Validation of a PredictRequest against a model's inputs and outputs. Every problem is
// INVALID_ARGUMENT naming the tensor: unknown or missing inputs, wrong dtype, wrong rank or
// dimension, byte or value count not matching the shape, inconsistent batch sizes, a batch over
// the per-request limit, unknown output_filter names, a signature other than serving_default.
//
// NaN policy: with NAN_ALLOW (the default, as TF Serving) NaN and infinite floats reach the model
// unchanged and may produce NaN outputs; with NAN_REJECT in config.pbtxt the request is refused
// naming the tensor and the first non-finite element.
#ifndef OCTET_SERVER_REQUEST_VALIDATION_H_
#define OCTET_SERVER_REQUEST_VALIDATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/tensor.h"
#include "octet/model_config.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace octet::server {

// The only signature an Octet model has.
inline constexpr char kDefaultSignature[] = "serving_default";

struct ValidationLimits {
  // The first dimension of every input is the batch and may be split and batched.
  bool batchable = true;
  // Most rows per request (batchable models). >= 1.
  int64_t max_request_rows = 1024;
  config::NanPolicy nan_policy = config::NAN_ALLOW;
};

struct ValidatedRequest {
  std::vector<Tensor> inputs;       // in model input order
  int64_t rows = 1;                 // common first dimension (1 when not batchable)
  std::string batch_key;            // requests batch together only with equal keys
  std::vector<int> output_indices;  // model outputs to return, in response order
};

absl::StatusOr<ValidatedRequest> ValidatePredictRequest(
    const tensorflow::serving::PredictRequest& request, const std::vector<TensorSpec>& inputs,
    const std::vector<TensorSpec>& outputs, const ValidationLimits& limits);

}  // namespace octet::server

#endif  // OCTET_SERVER_REQUEST_VALIDATION_H_
