#include "server/request_validation.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/tensor_proto_util.h"

namespace octet::server {
namespace {

std::string SpecNames(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& s : specs) names.push_back(QuoteName(s.name));
  return absl::StrJoin(names, ", ");
}

std::string SpecString(const TensorSpec& spec) {
  return absl::StrCat(DataTypeName(ToDataType(spec.dtype)), " ", ShapeToString(spec.dims));
}

absl::Status CheckShape(const Tensor& t, const TensorSpec& spec) {
  const std::string prefix = absl::StrCat("input ", QuoteName(spec.name), ": ");
  if (t.rank() != static_cast<int>(spec.dims.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "shape ", ShapeToString(t.shape()), " has rank ", t.rank(),
        " but the model expects rank ", spec.dims.size(), " ", ShapeToString(spec.dims)));
  }
  for (int d = 0; d < t.rank(); ++d) {
    if (spec.dims[d] >= 0 && spec.dims[d] != t.dim(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "dimension ", d, " is ", t.dim(d), " but the model expects ",
                       spec.dims[d], " (got shape ", ShapeToString(t.shape()), ", model shape ",
                       ShapeToString(spec.dims), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const Tensor& t, const std::string& name) {
  if (t.dtype() != DType::kF32) return absl::OkStatus();
  const float* v = t.data_as<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat("input ", QuoteName(name), ": element ", i,
                                                     " is ", std::isnan(v[i]) ? "NaN" : "infinite",
                                                     " and the model's nan_policy is NAN_REJECT"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ValidatedRequest> ValidatePredictRequest(
    const tensorflow::serving::PredictRequest& request, const std::vector<TensorSpec>& inputs,
    const std::vector<TensorSpec>& outputs, const ValidationLimits& limits) {
  const std::string& signature = request.model_spec().signature_name();
  if (!signature.empty() && signature != kDefaultSignature) {
    return absl::InvalidArgumentError(absl::StrCat("signature ", QuoteName(signature),
                                                   " not found; the model has only '",
                                                   kDefaultSignature, "'"));
  }
  // Unknown names first, in a stable order, so that the error does not depend on map order.
  std::vector<std::string> given;
  for (const auto& [name, tensor] : request.inputs()) given.push_back(name);
  std::sort(given.begin(), given.end());
  for (const std::string& name : given) {
    const bool known = std::any_of(inputs.begin(), inputs.end(),
                                   [&name](const TensorSpec& s) { return s.name == name; });
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown input ", QuoteName(name), "; the model's inputs are ", SpecNames(inputs)));
    }
  }

  ValidatedRequest out;
  const std::string* batch_from = nullptr;  // input that fixed out.rows
  for (const TensorSpec& spec : inputs) {
    auto it = request.inputs().find(spec.name);
    if (it == request.inputs().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing input ", QuoteName(spec.name), " (", SpecString(spec), ")"));
    }
    if (it->second.dtype() != ToDataType(spec.dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", QuoteName(spec.name), ": dtype ", DataTypeName(it->second.dtype()),
                       " does not match the model's ", DataTypeName(ToDataType(spec.dtype))));
    }
    absl::StatusOr<Tensor> tensor = TensorFromProto(it->second, spec.name);
    if (!tensor.ok()) return tensor.status();
    if (absl::Status st = CheckShape(*tensor, spec); !st.ok()) return st;
    if (limits.batchable) {
      const int64_t rows = tensor->dim(0);
      if (rows < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("input ", QuoteName(spec.name), ": the batch (dimension 0) is empty"));
      }
      if (batch_from == nullptr) {
        out.rows = rows;
        batch_from = &spec.name;
      } else if (rows != out.rows) {
        return absl::InvalidArgumentError(
            absl::StrCat("input ", QuoteName(spec.name), ": batch size ", rows,
                         " differs from input ", QuoteName(*batch_from), "'s ", out.rows));
      }
      if (rows > limits.max_request_rows) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input ", QuoteName(spec.name), ": batch of ", rows, " rows exceeds the limit of ",
            limits.max_request_rows, " rows per request"));
      }
      // Dimensions the model leaves open besides the batch decide what can be batched together.
      for (size_t d = 1; d < spec.dims.size(); ++d) {
        if (spec.dims[d] < 0)
          absl::StrAppend(&out.batch_key, spec.name, ":", d, "=", tensor->dim(d), ";");
      }
    }
    if (limits.nan_policy == config::NAN_REJECT) {
      if (absl::Status st = CheckFinite(*tensor, spec.name); !st.ok()) return st;
    }
    out.inputs.push_back(std::move(tensor).value());
  }

  std::set<std::string> seen;
  for (const std::string& name : request.output_filter()) {
    auto it = std::find_if(outputs.begin(), outputs.end(),
                           [&name](const TensorSpec& s) { return s.name == name; });
    if (it == outputs.end()) {
      return absl::InvalidArgumentError(absl::StrCat("output_filter names unknown output ",
                                                     QuoteName(name), "; the model's outputs are ",
                                                     SpecNames(outputs)));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("output_filter names output ", QuoteName(name), " twice"));
    }
    out.output_indices.push_back(static_cast<int>(it - outputs.begin()));
  }
  if (out.output_indices.empty()) {
    for (size_t i = 0; i < outputs.size(); ++i) out.output_indices.push_back(static_cast<int>(i));
  }
  return out;
}

}  // namespace octet::server
