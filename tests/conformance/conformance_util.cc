#include "tests/conformance/conformance_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace octet {

namespace fs = std::filesystem;

absl::StatusOr<onnx::ModelProto> ReadModelProto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid ONNX model"));
  }
  return model;
}

std::set<std::string> OpTypes(const onnx::ModelProto& model) {
  std::set<std::string> ops;
  for (const onnx::NodeProto& node : model.graph().node()) {
    if (node.domain().empty() || node.domain() == "ai.onnx") {
      ops.insert(node.op_type());
    } else {
      ops.insert(absl::StrCat(node.domain(), ":", node.op_type()));
    }
  }
  return ops;
}

bool IsCleanRefusal(const absl::Status& status, const onnx::ModelProto& model) {
  if (status.ok() || status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown) {
    return false;
  }
  absl::string_view message = status.message();
  if (absl::StrContains(message, "opset")) return true;
  auto named = [&](const std::string& name) {
    return !name.empty() && absl::StrContains(message, name);
  };
  const onnx::GraphProto& g = model.graph();
  for (const onnx::NodeProto& node : g.node()) {
    if (named(node.op_type())) return true;
    for (const std::string& out : node.output()) {
      if (named(absl::StrCat("'", out, "'"))) return true;
    }
  }
  for (const auto& v : g.input()) {
    if (named(absl::StrCat("'", v.name(), "'"))) return true;
  }
  for (const auto& v : g.output()) {
    if (named(absl::StrCat("'", v.name(), "'"))) return true;
  }
  for (const auto& t : g.initializer()) {
    if (named(absl::StrCat("'", t.name(), "'"))) return true;
  }
  return false;
}

std::vector<fs::path> DataSets(const std::string& test_dir) {
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(test_dir)) {
    if (entry.is_directory() &&
        absl::StartsWith(entry.path().filename().string(), "test_data_set_")) {
      sets.push_back(entry.path());
    }
  }
  std::sort(sets.begin(), sets.end());
  return sets;
}

std::vector<fs::path> NumberedFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int i = 0;; ++i) {
    fs::path p = dir / absl::StrCat(prefix, "_", i, ".pb");
    if (!fs::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

std::string CompareTensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype()) {
    return absl::StrCat("dtype ", DTypeName(got.dtype()), ", expected ", DTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return absl::StrCat("shape ", ShapeToString(got.shape()), ", expected ",
                        ShapeToString(want.shape()));
  }
  const int64_t n = want.num_elements();
  int64_t mismatches = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool ok;
    if (want.dtype() == DType::kF32) {
      double g = got.data_as<float>()[i], w = want.data_as<float>()[i];
      if (std::isnan(w) || std::isnan(g)) {
        ok = std::isnan(w) && std::isnan(g);
      } else if (std::isinf(w) || std::isinf(g)) {
        ok = g == w;
      } else {
        ok = std::fabs(g - w) <= atol + rtol * std::fabs(w);
        worst = std::max(worst, std::fabs(g - w));
      }
    } else {
      ok = got.GetAsInt64(i) == want.GetAsInt64(i);
    }
    if (!ok) {
      if (first < 0) first = i;
      ++mismatches;
    }
  }
  if (mismatches == 0) return "";
  return absl::StrCat(mismatches, " of ", n, " values differ; first at flat index ", first,
                      ": got ", got.GetAsDouble(first), ", expected ", want.GetAsDouble(first),
                      want.dtype() == DType::kF32 ? absl::StrCat(" (max |diff| ", worst, ")") : "");
}

}  // namespace octet
