// `octet run --model M --input NAME=FILE.npy ... --output-dir DIR`: runs a model once on .npy
// inputs and writes one .npy file per output.
#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/npy.h"
#include "core/tool/args.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace octet::tool {
namespace {

// Reads every --input and orders the tensors as the model's inputs.
absl::StatusOr<std::vector<Tensor>> ReadInputs(const Model& model,
                                               const std::vector<std::string>& flags) {
  std::map<std::string, std::string> files;  // input name -> .npy path
  for (const std::string& flag : flags) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = SplitAssignment("input", flag);
    if (!kv.ok()) return kv.status();
    if (!files.emplace(kv->first, kv->second).second) {
      return absl::InvalidArgumentError(absl::StrCat("input '", kv->first, "' given twice"));
    }
  }
  std::vector<std::string> expected;
  for (const TensorSpec& spec : model.inputs()) expected.push_back(spec.name);
  for (const auto& [name, file] : files) {
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the model has no input '", name, "' (inputs: ", absl::StrJoin(expected, ", "), ")"));
    }
  }
  std::vector<Tensor> inputs;
  for (const TensorSpec& spec : model.inputs()) {
    auto it = files.find(spec.name);
    if (it == files.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing input '", spec.name, "' (",
                                                     SpecToString(spec), "); pass --input ",
                                                     spec.name, "=FILE.npy"));
    }
    absl::StatusOr<Tensor> tensor = ReadNpy(it->second);
    if (!tensor.ok()) return tensor.status();
    if (absl::Status s = CheckAgainstSpec(*tensor, spec, it->second); !s.ok()) return s;
    inputs.push_back(*std::move(tensor));
  }
  return inputs;
}

}  // namespace

int RunMain(const std::vector<std::string>& args) {
  ArgParser parser("run", "run --model MODEL --input NAME=FILE.npy [--input ...] --output-dir DIR",
                   "Runs the model once. Every model input must be given as a .npy file (C order, "
                   "little endian,\nthe input's dtype). Writes DIR/<output name>.npy for each "
                   "output (characters that are not\nsafe in file names become '_') and prints "
                   "which file holds which output.");
  parser.AddFlag("model", "MODEL", "The ONNX model file.", /*required=*/true);
  parser.AddFlag("input", "NAME=FILE.npy", "A model input and the .npy file holding it.",
                 /*required=*/false, /*repeated=*/true);
  parser.AddFlag("output-dir", "DIR", "Directory for the outputs (created if missing).",
                 /*required=*/true);
  parser.AddFlag("threads", "T", "Engine threads (default 1).");
  if (absl::Status s = parser.Parse(args); !s.ok()) return ReportUsageError("run", s);
  if (parser.help_requested()) {
    std::cout << parser.Usage();
    return kExitOk;
  }
  absl::StatusOr<int64_t> threads = ParseIntFlag("threads", parser.Get("threads", "1"), 1, 1024);
  if (!threads.ok()) return ReportUsageError("run", threads.status());

  absl::StatusOr<std::shared_ptr<const Model>> model = LoadModel(parser.Get("model"));
  if (!model.ok()) return ReportError("run", model.status());
  absl::StatusOr<std::vector<Tensor>> inputs = ReadInputs(**model, parser.GetAll("input"));
  if (!inputs.ok()) return ReportError("run", inputs.status());

  ContextOptions options;
  options.num_threads = static_cast<int>(*threads);
  absl::StatusOr<std::unique_ptr<ExecutionContext>> context = (*model)->CreateContext(options);
  if (!context.ok()) return ReportError("run", context.status());
  absl::StatusOr<std::vector<Tensor>> outputs = (*context)->Run(*inputs);
  if (!outputs.ok()) return ReportError("run", outputs.status());

  const std::filesystem::path dir = parser.Get("output-dir");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return ReportError("run", absl::PermissionDeniedError(
                                  absl::StrCat("cannot create output directory ", dir.string(),
                                               ec ? absl::StrCat(": ", ec.message()) : "")));
  }
  std::vector<std::string> taken;
  for (size_t i = 0; i < outputs->size(); ++i) {
    const std::string& name = (*model)->outputs()[i].name;
    const std::string path = (dir / (SafeFileName(name, &taken) + ".npy")).string();
    if (absl::Status s = WriteNpy(path, (*outputs)[i]); !s.ok()) return ReportError("run", s);
    std::cout << "output '" << name << "' " << TensorSummary((*outputs)[i]) << " -> " << path
              << "\n";
  }
  return kExitOk;
}

}  // namespace octet::tool
