// `octet inspect MODEL`: what a model takes and returns, what it is made of, and the optimized
// plan the engine runs.
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>

#include "absl/strings/str_format.h"
#include "core/onnx_tensor.h"
#include "core/tool/args.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"
#include "onnx/onnx_pb.h"

namespace octet::tool {
namespace {

std::string Bytes(int64_t n) {
  if (n < 1024) return absl::StrFormat("%d B", n);
  if (n < 1024 * 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  return absl::StrFormat("%.2f MiB", n / (1024.0 * 1024.0));
}

// Counts from the ONNX file itself: ops as exported (before fusion) and parameters.
void PrintOnnxSummary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return;  // the engine loaded it, so this does not happen
  int64_t opset = 0;
  for (const auto& op : proto.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
  }
  std::map<std::string, int> ops;
  for (const auto& node : proto.graph().node()) ++ops[node.op_type()];
  int64_t params = 0, shape_constants = 0;
  for (const auto& init : proto.graph().initializer()) {
    int64_t n = 1;
    for (int64_t d : init.dims()) n *= d;
    // INT64 initializers are shapes and indices, not learned parameters.
    (init.data_type() == onnx::TensorProto::INT64 ? shape_constants : params) += n;
  }
  std::cout << absl::StrFormat("ONNX: opset %d, %d nodes", opset, proto.graph().node_size());
  if (!proto.producer_name().empty()) {
    std::cout << ", producer " << proto.producer_name() << " " << proto.producer_version();
  }
  std::cout << "\n";
  std::cout << "op counts:";
  for (const auto& [op, n] : ops) std::cout << " " << op << " x" << n;
  std::cout << "\n"
            << absl::StrFormat(
                   "parameters: %d (initializer elements, plus %d in INT64 "
                   "shape/index constants)\n",
                   params, shape_constants);
}

}  // namespace

int InspectMain(const std::vector<std::string>& args) {
  ArgParser parser("inspect", "inspect MODEL",
                   "Prints the model's inputs and outputs (shapes and dtypes; symbolic dimensions "
                   "by name),\nits op counts and parameter count, the bytes its weights take, and "
                   "the optimized plan:\none line per node with its precision and fused post-ops.");
  parser.SetPositional("MODEL", "An ONNX model file.", 1, 1);
  if (absl::Status s = parser.Parse(args); !s.ok()) return ReportUsageError("inspect", s);
  if (parser.help_requested()) {
    std::cout << parser.Usage();
    return kExitOk;
  }
  const std::string path = parser.positional()[0];
  absl::StatusOr<std::shared_ptr<const Model>> model = LoadModel(path);
  if (!model.ok()) return ReportError("inspect", model.status());

  std::cout << "model: " << path << "\ninputs:\n";
  for (const TensorSpec& spec : (*model)->inputs()) std::cout << "  " << SpecToString(spec) << "\n";
  std::cout << "outputs:\n";
  for (const TensorSpec& spec : (*model)->outputs()) {
    std::cout << "  " << SpecToString(spec) << "\n";
  }
  PrintOnnxSummary(path);
  std::cout << "weights: " << Bytes((*model)->weight_bytes()) << " as loaded ("
            << Bytes((*model)->fp32_weight_bytes()) << " in FP32)\n";
  // Compute per sample: a plan at batch 1 (symbolic first dimensions bound to 1).
  std::vector<Shape> shapes;
  bool bound = true;
  for (const TensorSpec& spec : (*model)->inputs()) {
    Shape s = spec.dims;
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] < 0 && d == 0) s[d] = 1;
      bound = bound && s[d] >= 0;
    }
    shapes.push_back(s);
  }
  absl::StatusOr<std::unique_ptr<ExecutionContext>> ctx = (*model)->CreateContext();
  absl::StatusOr<const ExecutionPlan*> batch1 =
      bound && ctx.ok() ? (*ctx)->PlanFor(shapes) : absl::StatusOr<const ExecutionPlan*>(nullptr);
  if (batch1.ok() && *batch1 != nullptr) {
    const int64_t macs = PlanMacs(**batch1);
    std::cout << absl::StrFormat("MACs per sample: %d (%.3f G; Conv/Gemm/MatMul at batch 1)\n",
                                 macs, macs / 1e9);
  } else {
    std::cout << "MACs per sample: unknown ("
              << (batch1.ok() ? "symbolic dimensions besides the batch"
                              : batch1.status().ToString())
              << ")\n";
  }
  const std::string plan = (*model)->Describe();
  std::cout << "optimized plan:\n" << plan;
  if (!plan.empty() && plan.back() != '\n') std::cout << "\n";
  return kExitOk;
}

}  // namespace octet::tool
