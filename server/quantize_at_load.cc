#include "server/quantize_at_load.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/npy.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;

std::string InputNames(const std::vector<TensorSpec>& inputs) {
  std::vector<std::string> names;
  for (const TensorSpec& spec : inputs) names.push_back(absl::StrCat("'", spec.name, "'"));
  return absl::StrJoin(names, ", ");
}

// version_dir/file, else model_dir/file (absolute paths as given).
absl::StatusOr<std::string> ResolveCalibrationFile(const std::string& file,
                                                   const std::string& version_dir) {
  if (file.empty()) return absl::InvalidArgumentError("quantize: empty calibration file name");
  const fs::path path(file);
  if (path.is_absolute()) return file;
  const fs::path version = fs::path(version_dir);
  const fs::path model = version.parent_path();
  std::error_code ec;
  for (const fs::path& dir : {version, model}) {
    if (fs::is_regular_file(dir / path, ec)) return (dir / path).string();
  }
  return absl::NotFoundError(absl::StrCat("quantize: calibration file '", file, "' not found in ",
                                          version.string(), " or ", model.string()));
}

std::string ShapeText(const std::vector<int64_t>& dims, bool batch_is_n) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < dims.size(); ++i) {
    parts.push_back(i == 0 && batch_is_n ? "N" : dims[i] < 0 ? "?" : absl::StrCat(dims[i]));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

// Samples stacked along dimension 0 in the input's dtype, the other dimensions as the model
// declares them (symbolic ones match anything).
absl::Status CheckSamples(const Tensor& t, const TensorSpec& spec, const std::string& path) {
  bool ok = t.dtype() == spec.dtype && t.shape().size() == spec.dims.size() && !t.shape().empty() &&
            t.shape()[0] >= 1;
  for (size_t i = 1; ok && i < spec.dims.size(); ++i) {
    ok = spec.dims[i] < 0 || spec.dims[i] == t.shape()[i];
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("quantize: calibration file ", path, " for input '", spec.name, "' holds ",
                   DTypeName(t.dtype()), " ", ShapeText(t.shape(), false), "; the input takes ",
                   DTypeName(spec.dtype), " ", ShapeText(spec.dims, true), " (N >= 1 samples)"));
}

// Calibration entries ("FILE" or "NAME=FILE") -> tensors by input name, one for every input.
absl::StatusOr<std::map<std::string, Tensor>> ReadCalibration(const config::QuantizeConfig& config,
                                                              const std::vector<TensorSpec>& inputs,
                                                              const std::string& version_dir) {
  if (config.calibration().empty()) {
    return absl::InvalidArgumentError(
        "quantize: no calibration file (calibration: \"FILE.npy\", or one \"NAME=FILE.npy\" per "
        "input)");
  }
  std::map<std::string, Tensor> tensors;
  for (const std::string& entry : config.calibration()) {
    const TensorSpec* spec = nullptr;
    std::string file;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) {
      if (inputs.size() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "quantize: calibration \"", entry, "\" does not name its input; the model ", "has ",
            inputs.size(), " inputs (", InputNames(inputs),
            "): give one \"NAME=FILE.npy\" per input"));
      }
      spec = &inputs[0];
      file = entry;
    } else {
      const std::string name = entry.substr(0, eq);
      file = entry.substr(eq + 1);
      for (const TensorSpec& s : inputs) {
        if (s.name == name) spec = &s;
      }
      if (spec == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("quantize: calibration for '", name,
                         "', which is not a model input (inputs: ", InputNames(inputs), ")"));
      }
    }
    if (tensors.count(spec->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantize: calibration for input '", spec->name, "' given twice"));
    }
    absl::StatusOr<std::string> path = ResolveCalibrationFile(file, version_dir);
    if (!path.ok()) return path.status();
    absl::StatusOr<Tensor> tensor = ReadNpy(*path);
    if (!tensor.ok()) {
      return absl::Status(tensor.status().code(),
                          absl::StrCat("quantize: calibration: ", tensor.status().message()));
    }
    if (absl::Status s = CheckSamples(*tensor, *spec, *path); !s.ok()) return s;
    tensors[spec->name] = *std::move(tensor);
  }
  for (const TensorSpec& spec : inputs) {
    if (!tensors.count(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantize: no calibration file for input '", spec.name, "'"));
    }
  }
  return tensors;
}

std::string FormatSqnr(double db) {
  return std::isinf(db) && db > 0 ? "exact" : absl::StrFormat("%.1fdB", db);
}

}  // namespace

absl::StatusOr<QuantizeResult> QuantizeAtLoad(const std::string& fp32_onnx_bytes,
                                              const std::vector<TensorSpec>& inputs,
                                              const std::string& version_dir,
                                              const config::QuantizeConfig& config) {
  QuantizeOptions options;
  absl::StatusOr<CalibrationMethod> method = ParseCalibrationMethod(config.method());
  if (!method.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: method: ", method.status().message()));
  }
  options.range.method = *method;
  options.range.percentile = config.percentile();
  options.per_channel = config.per_channel();
  options.exclude.assign(config.exclude().begin(), config.exclude().end());
  if (config.calibration_batch() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: calibration_batch must be >= 1, got ", config.calibration_batch()));
  }
  options.calibration_batch = config.calibration_batch();
  // Loads run one at a time on the repository's poll thread, next to serving versions: one
  // engine thread keeps them from competing with served batches for the CPUs.
  options.num_threads = 1;
  absl::StatusOr<std::map<std::string, Tensor>> calibration =
      ReadCalibration(config, inputs, version_dir);
  if (!calibration.ok()) return calibration.status();
  absl::StatusOr<QuantizeResult> result = QuantizeModel(fp32_onnx_bytes, *calibration, options);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("quantize: ", result.status().message()));
  }
  return result;
}

std::vector<std::string> QuantizeSummary(const QuantizeResult& result,
                                         const config::QuantizeConfig& config) {
  int quantized = 0;
  const LayerReport* worst = nullptr;
  std::vector<std::string> fp32;
  for (const LayerReport& l : result.layers) {
    if (!l.quantized) {
      fp32.push_back(l.node);
      continue;
    }
    ++quantized;
    if (worst == nullptr || l.sqnr_db < worst->sqnr_db) worst = &l;
  }
  std::vector<std::string> lines;
  lines.push_back(absl::StrFormat(
      "quantized at load (%s%s, %s weights): %d tensors INT8, %d layers FP32%s; weights %d -> %d "
      "bytes; lowest SQNR %s",
      config.method(),
      config.method() == "percentile" ? absl::StrFormat(" %g", config.percentile()) : "",
      config.per_channel() ? "per-channel" : "per-tensor", quantized, fp32.size(),
      fp32.empty() ? "" : absl::StrCat(" (", absl::StrJoin(fp32, ", "), ")"),
      result.fp32_weight_bytes, result.int8_weight_bytes,
      worst == nullptr ? "-" : absl::StrCat(FormatSqnr(worst->sqnr_db), " at ", worst->tensor)));
  for (const LayerReport& l : result.layers) {
    if (l.quantized) {
      lines.push_back(absl::StrFormat("  %s %s -> %s: scale %.4g zp %d clip %.3f%% SQNR %s",
                                      l.op_type, l.node, l.tensor, l.scale, l.zero_point,
                                      l.clipped_percent, FormatSqnr(l.sqnr_db)));
    } else {
      lines.push_back(absl::StrFormat("  %s %s: FP32", l.op_type, l.node));
    }
  }
  return lines;
}

}  // namespace octet::server
