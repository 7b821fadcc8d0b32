// The Predict request octet-bench sends over and over: random inputs of the shapes and dtypes the
// server reports in GetModelMetadata (signature "serving_default"), or inputs read from .npy
// files. One request is built once and shared by every call (it is only read).
#ifndef OCTET_DEPLOY_BENCH_REQUEST_BUILDER_H_
#define OCTET_DEPLOY_BENCH_REQUEST_BUILDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tensorflow/core/protobuf/meta_graph.pb.h"
#include "tensorflow_serving/apis/get_model_metadata.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace octet::bench {

// The signature "serving_default" of a GetModelMetadata response; NOT_FOUND when absent.
absl::StatusOr<tensorflow::SignatureDef> DefaultSignature(
    const tensorflow::serving::GetModelMetadataResponse& response);

// Every input of `signature` filled with seeded random values: floats uniform in [0, 1), integers
// in [0, 10], booleans. An unknown first dimension becomes `batch`; an input with another unknown
// dimension is INVALID_ARGUMENT (give it with --input).
absl::StatusOr<tensorflow::serving::PredictRequest> BuildRandomRequest(
    const tensorflow::SignatureDef& signature, int64_t batch, uint64_t seed);

// Inputs read from .npy files, checked against `signature`: every name is an input of the model,
// every input is given, dtypes match. Shapes are left to the server to judge.
absl::StatusOr<tensorflow::serving::PredictRequest> BuildNpyRequest(
    const tensorflow::SignatureDef& signature,
    const std::vector<std::pair<std::string, std::string>>& inputs);

// Rows of the request: the first dimension of its first input (1 for a scalar).
int64_t RequestRows(const tensorflow::serving::PredictRequest& request);

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_REQUEST_BUILDER_H_
