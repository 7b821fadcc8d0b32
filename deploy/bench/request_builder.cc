#include "deploy/bench/request_builder.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/npy.h"
#include "core/tensor.h"

namespace octet::bench {
namespace {

constexpr char kSignature[] = "serving_default";

struct WireType {
  tensorflow::DataType dtype;
  DType core;
};
constexpr WireType kTypes[] = {
    {tensorflow::DT_FLOAT, DType::kF32}, {tensorflow::DT_UINT8, DType::kU8},
    {tensorflow::DT_INT8, DType::kS8},   {tensorflow::DT_INT32, DType::kS32},
    {tensorflow::DT_INT64, DType::kS64}, {tensorflow::DT_BOOL, DType::kBool},
};

absl::StatusOr<DType> CoreType(tensorflow::DataType dtype, const std::string& input) {
  for (const WireType& t : kTypes) {
    if (t.dtype == dtype) return t.core;
  }
  return absl::UnimplementedError(absl::StrCat("input '", input, "' has dtype ",
                                               tensorflow::DataType_Name(dtype),
                                               ", which octet-bench cannot generate"));
}

void SetTensor(const Tensor& tensor, tensorflow::DataType dtype, tensorflow::TensorProto* proto) {
  proto->set_dtype(dtype);
  for (int64_t d : tensor.shape()) proto->mutable_tensor_shape()->add_dim()->set_size(d);
  proto->set_tensor_content(static_cast<const char*>(tensor.data()), tensor.byte_size());
}

}  // namespace

absl::StatusOr<tensorflow::SignatureDef> DefaultSignature(
    const tensorflow::serving::GetModelMetadataResponse& response) {
  auto it = response.metadata().find("signature_def");
  tensorflow::serving::SignatureDefMap map;
  if (it == response.metadata().end() || !it->second.UnpackTo(&map)) {
    return absl::NotFoundError("GetModelMetadata returned no signature_def");
  }
  auto sig = map.signature_def().find(kSignature);
  if (sig == map.signature_def().end()) {
    return absl::NotFoundError(absl::StrCat("the model has no signature '", kSignature, "'"));
  }
  return sig->second;
}

absl::StatusOr<tensorflow::serving::PredictRequest> BuildRandomRequest(
    const tensorflow::SignatureDef& signature, int64_t batch, uint64_t seed) {
  tensorflow::serving::PredictRequest request;
  std::mt19937_64 rng(seed);
  // Map order is unspecified: sort names so that the same seed gives the same values.
  std::vector<std::string> names;
  for (const auto& [name, info] : signature.inputs()) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const tensorflow::TensorInfo& info = signature.inputs().at(name);
    absl::StatusOr<DType> dtype = CoreType(info.dtype(), name);
    if (!dtype.ok()) return dtype.status();
    Shape shape;
    for (int i = 0; i < info.tensor_shape().dim_size(); ++i) {
      int64_t d = info.tensor_shape().dim(i).size();
      if (d < 0 && i == 0) d = batch;
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", name, "' has an unknown dimension ", i,
                         " (not the batch); give the input with --input ", name, "=FILE.npy"));
      }
      shape.push_back(d);
    }
    Tensor t = Tensor::Zeros(*dtype, shape);
    const int64_t n = t.num_elements();
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::uniform_int_distribution<int> small(0, 10);
    for (int64_t i = 0; i < n; ++i) {
      switch (*dtype) {
        case DType::kF32:
          t.data_as<float>()[i] = unit(rng);
          break;
        case DType::kU8:
          t.data_as<uint8_t>()[i] = static_cast<uint8_t>(small(rng));
          break;
        case DType::kS8:
          t.data_as<int8_t>()[i] = static_cast<int8_t>(small(rng));
          break;
        case DType::kS32:
          t.data_as<int32_t>()[i] = small(rng);
          break;
        case DType::kS64:
          t.data_as<int64_t>()[i] = small(rng);
          break;
        case DType::kBool:
          t.data_as<bool>()[i] = small(rng) % 2 == 0;
          break;
      }
    }
    SetTensor(t, info.dtype(), &(*request.mutable_inputs())[name]);
  }
  return request;
}

absl::StatusOr<tensorflow::serving::PredictRequest> BuildNpyRequest(
    const tensorflow::SignatureDef& signature,
    const std::vector<std::pair<std::string, std::string>>& inputs) {
  tensorflow::serving::PredictRequest request;
  for (const auto& [name, path] : inputs) {
    auto it = signature.inputs().find(name);
    if (it == signature.inputs().end()) {
      std::vector<std::string> known;
      for (const auto& [n, info] : signature.inputs()) known.push_back(n);
      std::sort(known.begin(), known.end());
      return absl::InvalidArgumentError(
          absl::StrCat("--input ", name, ": the model has no input '", name,
                       "' (inputs: ", absl::StrJoin(known, ", "), ")"));
    }
    absl::StatusOr<DType> dtype = CoreType(it->second.dtype(), name);
    if (!dtype.ok()) return dtype.status();
    absl::StatusOr<Tensor> tensor = ReadNpy(path);
    if (!tensor.ok()) return tensor.status();
    if (tensor->dtype() != *dtype) {
      return absl::InvalidArgumentError(absl::StrCat("--input ", name, ": ", path, " holds ",
                                                     DTypeName(tensor->dtype()),
                                                     " but the model expects ", DTypeName(*dtype)));
    }
    SetTensor(*tensor, it->second.dtype(), &(*request.mutable_inputs())[name]);
  }
  for (const auto& [name, info] : signature.inputs()) {
    if (!request.inputs().contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--input: the model also needs input '", name, "'"));
    }
  }
  return request;
}

int64_t RequestRows(const tensorflow::serving::PredictRequest& request) {
  if (request.inputs().empty()) return 0;
  // The smallest name, so the answer does not depend on map order.
  const tensorflow::TensorProto* first = nullptr;
  std::string first_name;
  for (const auto& [name, proto] : request.inputs()) {
    if (first == nullptr || name < first_name) {
      first = &proto;
      first_name = name;
    }
  }
  return first->tensor_shape().dim_size() == 0 ? 1 : first->tensor_shape().dim(0).size();
}

}  // namespace octet::bench
