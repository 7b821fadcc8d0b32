#include "core/tool/tool_util.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace octet::tool {
namespace {

// Keeps error output to one line whatever the message holds.
std::string OneLine(absl::string_view text) {
  std::string s(text);
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

int ReportError(absl::string_view command, const absl::Status& status) {
  std::cerr << "octet " << command << ": error: " << OneLine(status.message()) << std::endl;
  return kExitFailure;
}

int ReportUsageError(absl::string_view command, const absl::Status& status) {
  std::cerr << "octet " << command << ": error: " << OneLine(status.message()) << " (see 'octet "
            << command << " --help')" << std::endl;
  return kExitUsage;
}

absl::StatusOr<std::shared_ptr<const Model>> LoadModel(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary)) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open model file"));
  }
  absl::StatusOr<std::shared_ptr<const Model>> model = Model::LoadFromFile(path);
  if (!model.ok() && model.status().message().find(path) == absl::string_view::npos) {
    return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

std::string SpecToString(const TensorSpec& spec) {
  std::vector<std::string> dims;
  for (size_t i = 0; i < spec.dims.size(); ++i) {
    if (spec.dims[i] >= 0) {
      dims.push_back(absl::StrCat(spec.dims[i]));
    } else {
      bool named = i < spec.dim_names.size() && !spec.dim_names[i].empty();
      dims.push_back(named ? spec.dim_names[i] : "?");
    }
  }
  return absl::StrCat(spec.name, " ", DTypeName(spec.dtype), "[", absl::StrJoin(dims, ","), "]");
}

std::string TensorSummary(const Tensor& tensor) {
  return absl::StrCat(DTypeName(tensor.dtype()), ShapeToString(tensor.shape()));
}

absl::StatusOr<std::pair<std::string, std::string>> SplitAssignment(absl::string_view flag,
                                                                    absl::string_view text) {
  size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " expects NAME=VALUE, got '", text, "'"));
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

absl::StatusOr<Shape> ParseShapeText(absl::string_view text) {
  if (text == "scalar") return Shape{};
  Shape shape;
  for (absl::string_view part : absl::StrSplit(text, 'x')) {
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 0 || d > (int64_t{1} << 40)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad shape '", text, "' (expected dimensions like 1x3x224x224)"));
    }
    shape.push_back(d);
  }
  return shape;
}

absl::Status CheckAgainstSpec(const Tensor& tensor, const TensorSpec& spec,
                              absl::string_view origin) {
  bool ok = tensor.dtype() == spec.dtype && tensor.rank() == static_cast<int>(spec.dims.size());
  for (int i = 0; ok && i < tensor.rank(); ++i) {
    ok = spec.dims[i] < 0 || spec.dims[i] == tensor.dim(i);
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "input '", spec.name, "' expects ", SpecToString(spec).substr(spec.name.size() + 1), ", got ",
      TensorSummary(tensor), " from ", origin));
}

std::string SafeFileName(absl::string_view name, std::vector<std::string>* taken) {
  std::string safe;
  for (char c : name.substr(0, 200)) {
    bool keep =
        absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    safe.push_back(keep ? c : '_');
  }
  if (safe.empty()) safe = "output";
  if (safe[0] == '.') safe[0] = '_';  // no hidden files, no "." or ".."
  std::string candidate = safe;
  for (int n = 2; std::find(taken->begin(), taken->end(), candidate) != taken->end(); ++n) {
    candidate = absl::StrCat(safe, "_", n);
  }
  taken->push_back(candidate);
  return candidate;
}

int64_t PlanMacs(const ExecutionPlan& plan) {
  static const std::set<std::string> kConv = {"Conv", "ConvInteger", "QLinearConv", "QConv"};
  static const std::set<std::string> kMatMul = {"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul",
                                                "QMatMul"};
  int64_t total = 0;
  for (const ExecutionPlan::Step& step : plan.steps()) {
    const bool conv = kConv.count(step.op_type) > 0;
    if ((!conv && !kMatMul.count(step.op_type)) || step.outputs.empty()) continue;
    const PlanValue* out = plan.FindValue(step.outputs[0]);
    // Conv weights: input 1 (input 3 for the quantized convolutions, after x's parameters).
    const bool q = step.op_type == "QLinearConv" || step.op_type == "QConv";
    const size_t operand = conv ? (q ? 3 : 1) : 0;
    if (out == nullptr || step.inputs.size() <= operand) continue;
    const PlanValue* in = plan.FindValue(step.inputs[operand]);
    if (in == nullptr || in->shape.empty() || out->shape.empty()) continue;
    int64_t per_output = 1;
    if (conv) {
      for (size_t d = 1; d < in->shape.size(); ++d) per_output *= in->shape[d];
    } else if (step.op_type == "Gemm") {
      per_output = NumElements(in->shape) / std::max<int64_t>(out->shape[0], 1);  // A or A^T
    } else {
      per_output = in->shape.back();
    }
    total += NumElements(out->shape) * per_output;
  }
  return total;
}

namespace {
int64_t ProcStatusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::atoll(line.c_str() + field.size()) * 1024;  // kB
  }
  return 0;
}
}  // namespace

int64_t RssBytes() { return ProcStatusBytes("VmRSS:"); }
int64_t PeakRssBytes() { return ProcStatusBytes("VmHWM:"); }

}  // namespace octet::tool
