// `octet quantize --model FP32.onnx --calibration NAME=FILE.npy --output INT8.onnx`: static
// post-training quantization to a standard ONNX QDQ model (core/quant/quantizer.h), with an
// optional accuracy guard that moves the most sensitive layers back to FP32.
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/npy.h"
#include "core/quant/quantizer.h"
#include "core/tool/args.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace octet::tool {
namespace {

constexpr char kCommand[] = "quantize";

// NAME=FILE.npy flags -> tensors by input name.
absl::StatusOr<std::map<std::string, Tensor>> ReadNamedNpy(const std::string& flag,
                                                           const std::vector<std::string>& values) {
  std::map<std::string, Tensor> tensors;
  for (const std::string& text : values) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = SplitAssignment(flag, text);
    if (!kv.ok()) return kv.status();
    if (tensors.count(kv->first)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": input '", kv->first, "' given twice"));
    }
    absl::StatusOr<Tensor> t = ReadNpy(kv->second);
    if (!t.ok()) return t.status();
    tensors[kv->first] = *std::move(t);
  }
  return tensors;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open model file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "calibrating [#########-----------]  240/500 samples", redrawn in place on a terminal; when
// stderr is a file or pipe, only the final state is written (no carriage-return clutter in logs).
void DrawProgress(int64_t done, int64_t total) {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  if (!tty && done < total) return;
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::cerr << "\rcalibrating [" << std::string(filled, '#') << std::string(kWidth - filled, '-')
            << "] " << done << "/" << total << " samples" << (done >= total ? "\n" : "")
            << std::flush;
}

std::string FormatSqnr(double db) {
  return std::isinf(db) && db > 0 ? "exact" : absl::StrFormat("%.1f", db);
}

void PrintReport(const QuantizeResult& r) {
  std::cout << absl::StrFormat("%-24s %-18s %-24s %11s %4s %8s %8s %s\n", "node", "op", "tensor",
                               "scale", "zp", "clip%", "SQNR dB", "precision");
  for (const LayerReport& l : r.layers) {
    if (l.quantized) {
      std::cout << absl::StrFormat("%-24s %-18s %-24s %11.4g %4d %8.4f %8s %s\n", l.node, l.op_type,
                                   l.tensor, l.scale, l.zero_point, l.clipped_percent,
                                   FormatSqnr(l.sqnr_db), "int8");
    } else {
      std::cout << absl::StrFormat("%-24s %-18s %-24s %11s %4s %8s %8s %s\n", l.node, l.op_type,
                                   l.tensor, "-", "-", "-", FormatSqnr(l.sqnr_db), "fp32");
    }
  }
  std::cout << absl::StrFormat("weights: FP32 %d bytes -> INT8 model %d bytes (%.2fx smaller)\n",
                               r.fp32_weight_bytes, r.int8_weight_bytes,
                               r.int8_weight_bytes > 0
                                   ? static_cast<double>(r.fp32_weight_bytes) / r.int8_weight_bytes
                                   : 0.0);
}

void PrintFidelityGuard(const FidelityGuardResult& g, const FidelityGuardOptions& options) {
  std::cout << absl::StrFormat("cosine INT8 vs FP32: %.5f (target %.5f)\n", g.initial_cosine,
                               options.min_cosine);
  if (!g.ranking.empty()) {
    std::cout << (options.probe == FidelityGuardOptions::Probe::kFp32Alone
                      ? "measured cosine with one layer kept in FP32 (highest gain first):\n"
                      : "measured cosine with one layer alone in INT8 (gain = 1 - cosine, "
                        "highest first):\n");
    for (const LayerSensitivity& l : g.ranking) {
      std::cout << absl::StrFormat("  %-32s cosine %.5f gain %+.5f  %.1f MMAC\n", l.node, l.cosine,
                                   l.gain, l.macs / 1e6);
    }
  }
  for (size_t i = 0; i < g.moved_to_fp32.size(); ++i) {
    std::cout << absl::StrFormat("moved '%s' to FP32: cosine %.5f, %.1f%% of MACs INT8\n",
                                 g.moved_to_fp32[i], g.cosine_after_move[i],
                                 100 * g.int8_macs_after_move[i]);
  }
  std::cout << absl::StrFormat(
      "final: cosine %.5f with %d layer(s) moved to FP32, %.1f%% of MACs and %.1f%% of layer "
      "weights INT8, %s\n",
      g.cosine, g.moved_to_fp32.size(), 100 * g.int8_mac_fraction, 100 * g.int8_weight_fraction,
      g.within_budget ? "within budget" : "BELOW TARGET");
}

}  // namespace

int QuantizeMain(const std::vector<std::string>& args) {
  ArgParser parser(
      kCommand,
      "quantize --model FP32.onnx --calibration NAME=FILE.npy [...] --output INT8.onnx [FLAGS]",
      "Static post-training quantization. Runs the FP32 model over the calibration samples (each "
      ".npy file\nholds N samples of one input stacked along dimension 0), chooses activation "
      "ranges, and writes a\nstandard ONNX QDQ model (opset >= 13): u8 asymmetric activations, s8 "
      "symmetric weights, s32\nbiases. Prints each quantized tensor's scale, zero point, "
      "clipping and SQNR against FP32.\nWith --validate and --labels, layers are moved back to "
      "FP32 "
      "(lowest SQNR first) until the INT8\ntop-1 accuracy is within --max-accuracy-drop points of "
      "FP32. With --validate and --min-cosine (no labels),\nlayers are moved back to FP32 in order "
      "of their measured gain until the mean cosine similarity\nof the INT8 and FP32 models' first "
      "output over the validation samples is >= --min-cosine.");
  parser.AddFlag("model", "FP32.onnx", "The FP32 ONNX model.", /*required=*/true);
  parser.AddFlag("calibration", "NAME=FILE.npy", "Calibration samples for a model input.",
                 /*required=*/true, /*repeated=*/true);
  parser.AddFlag("output", "INT8.onnx", "Where to write the quantized model.", /*required=*/true);
  parser.AddFlag("method", "METHOD",
                 "Activation range: minmax (default), percentile, entropy or mse.");
  parser.AddFlag("percentile", "P", "Percentile kept by --method percentile (default 99.99).");
  parser.AddSwitch("per-channel", "One weight scale per output channel (the default).");
  parser.AddSwitch("no-per-channel", "One weight scale per weight tensor.");
  parser.AddFlag("exclude", "NODE[,NODE]", "Nodes kept in FP32.", /*required=*/false,
                 /*repeated=*/true);
  parser.AddFlag("threads", "T", "Engine threads (default 1).");
  parser.AddFlag("batch", "B", "Calibration samples per engine run (default 16).");
  parser.AddFlag("validate", "NAME=X.npy", "Validation samples for a model input.",
                 /*required=*/false, /*repeated=*/true);
  parser.AddFlag("labels", "Y.npy", "Integer class labels of the validation samples.");
  parser.AddFlag("max-accuracy-drop", "P",
                 "Largest allowed top-1 drop in percentage points with --validate (default 0.5).");
  parser.AddFlag("min-cosine", "C",
                 "With --validate (no --labels): smallest allowed mean cosine similarity of the "
                 "INT8 and FP32 outputs, in (0, 1].");
  parser.AddFlag("probes", "N",
                 "With --min-cosine: measure the gain of the first N quantized layers only "
                 "(default 0 = all; each costs one quantize and validation run).");
  parser.AddFlag("probe-samples", "N",
                 "With --min-cosine: the probes run on the first N validation samples (default 0 "
                 "= all; the moves are always measured on all).");
  parser.AddFlag("probe", "MODE",
                 "With --min-cosine, how a layer's gain is measured: int8-alone (default: only "
                 "it quantized) or fp32-alone (only it kept in FP32).");
  if (absl::Status s = parser.Parse(args); !s.ok()) return ReportUsageError(kCommand, s);
  if (parser.help_requested()) {
    std::cout << parser.Usage();
    return kExitOk;
  }
  QuantizeOptions options;
  absl::StatusOr<CalibrationMethod> method = ParseCalibrationMethod(parser.Get("method", "minmax"));
  if (!method.ok()) return ReportUsageError(kCommand, method.status());
  options.range.method = *method;
  if (parser.Has("percentile")) {
    absl::StatusOr<double> p = ParseDoubleFlag("percentile", parser.Get("percentile"), 0);
    if (!p.ok()) return ReportUsageError(kCommand, p.status());
    if (*p > 100) {
      return ReportUsageError(kCommand,
                              absl::InvalidArgumentError("--percentile must be in (0, 100]"));
    }
    options.range.percentile = *p;
  }
  if (parser.Has("per-channel") && parser.Has("no-per-channel")) {
    return ReportUsageError(
        kCommand, absl::InvalidArgumentError("--per-channel and --no-per-channel contradict"));
  }
  options.per_channel = !parser.Has("no-per-channel");
  for (const std::string& e : parser.GetAll("exclude")) {
    for (absl::string_view name : absl::StrSplit(e, ',', absl::SkipEmpty())) {
      options.exclude.emplace_back(name);
    }
  }
  absl::StatusOr<int64_t> threads = ParseIntFlag("threads", parser.Get("threads", "1"), 1, 1024);
  if (!threads.ok()) return ReportUsageError(kCommand, threads.status());
  options.num_threads = static_cast<int>(*threads);
  absl::StatusOr<int64_t> batch = ParseIntFlag("batch", parser.Get("batch", "16"), 1, 1 << 20);
  if (!batch.ok()) return ReportUsageError(kCommand, batch.status());
  options.calibration_batch = *batch;
  const bool validate = parser.Has("validate");
  const bool fidelity = parser.Has("min-cosine");
  if (parser.Has("labels") && !validate) {
    return ReportUsageError(kCommand, absl::InvalidArgumentError("--labels needs --validate"));
  }
  if (fidelity && !validate) {
    return ReportUsageError(kCommand, absl::InvalidArgumentError("--min-cosine needs --validate"));
  }
  if (fidelity && parser.Has("labels")) {
    return ReportUsageError(
        kCommand, absl::InvalidArgumentError(
                      "--min-cosine (label-free guard) and --labels (top-1 guard): give one"));
  }
  if (validate && !fidelity && !parser.Has("labels")) {
    return ReportUsageError(
        kCommand,
        absl::InvalidArgumentError(
            "--validate needs --labels (top-1 guard) or --min-cosine (label-free guard)"));
  }
  if (parser.Has("max-accuracy-drop") && !parser.Has("labels")) {
    return ReportUsageError(
        kCommand, absl::InvalidArgumentError("--max-accuracy-drop needs --validate and --labels"));
  }
  for (const char* flag : {"probes", "probe", "probe-samples"}) {
    if (parser.Has(flag) && !fidelity) {
      return ReportUsageError(
          kCommand, absl::InvalidArgumentError(absl::StrCat("--", flag, " needs --min-cosine")));
    }
  }
  FidelityGuardOptions fidelity_guard;
  if (fidelity) {
    absl::StatusOr<double> c = ParseDoubleFlag("min-cosine", parser.Get("min-cosine"), -2);
    if (!c.ok() || !(*c > 0 && *c <= 1)) {
      return ReportUsageError(kCommand, absl::InvalidArgumentError(absl::StrCat(
                                            "--min-cosine must be a number in (0, 1], got '",
                                            parser.Get("min-cosine"), "'")));
    }
    fidelity_guard.min_cosine = *c;
    absl::StatusOr<int64_t> probes = ParseIntFlag("probes", parser.Get("probes", "0"), 0, 1 << 20);
    if (!probes.ok()) return ReportUsageError(kCommand, probes.status());
    fidelity_guard.max_probes = static_cast<int>(*probes);
    absl::StatusOr<int64_t> probe_samples =
        ParseIntFlag("probe-samples", parser.Get("probe-samples", "0"), 0, int64_t{1} << 40);
    if (!probe_samples.ok()) return ReportUsageError(kCommand, probe_samples.status());
    fidelity_guard.probe_samples = *probe_samples;
    const std::string mode = parser.Get("probe", "int8-alone");
    if (mode == "fp32-alone") {
      fidelity_guard.probe = FidelityGuardOptions::Probe::kFp32Alone;
    } else if (mode != "int8-alone") {
      return ReportUsageError(kCommand,
                              absl::InvalidArgumentError(absl::StrCat(
                                  "--probe must be int8-alone or fp32-alone, got '", mode, "'")));
    }
  }
  AccuracyGuardOptions guard;
  if (parser.Has("max-accuracy-drop")) {
    absl::StatusOr<double> d =
        ParseDoubleFlag("max-accuracy-drop", parser.Get("max-accuracy-drop"), -1);
    if (!d.ok() || *d < 0) {
      return ReportUsageError(kCommand, absl::InvalidArgumentError(absl::StrCat(
                                            "--max-accuracy-drop must be a number >= 0, got '",
                                            parser.Get("max-accuracy-drop"), "'")));
    }
    guard.max_accuracy_drop = *d;
  }

  absl::StatusOr<std::string> model = ReadFile(parser.Get("model"));
  if (!model.ok()) return ReportError(kCommand, model.status());
  absl::StatusOr<std::map<std::string, Tensor>> calibration =
      ReadNamedNpy("calibration", parser.GetAll("calibration"));
  if (!calibration.ok()) return ReportError(kCommand, calibration.status());
  options.progress = DrawProgress;

  QuantizeResult result;
  if (fidelity) {
    absl::StatusOr<std::map<std::string, Tensor>> inputs =
        ReadNamedNpy("validate", parser.GetAll("validate"));
    if (!inputs.ok()) return ReportError(kCommand, inputs.status());
    absl::StatusOr<FidelityGuardResult> g =
        QuantizeWithFidelityGuard(*model, *calibration, options, *inputs, fidelity_guard);
    if (!g.ok()) return ReportError(kCommand, g.status());
    result = std::move(g->result);
    PrintReport(result);
    PrintFidelityGuard(*g, fidelity_guard);
  } else if (validate) {
    ValidationSet set;
    absl::StatusOr<std::map<std::string, Tensor>> inputs =
        ReadNamedNpy("validate", parser.GetAll("validate"));
    if (!inputs.ok()) return ReportError(kCommand, inputs.status());
    set.inputs = *std::move(inputs);
    absl::StatusOr<Tensor> labels = ReadNpy(parser.Get("labels"));
    if (!labels.ok()) return ReportError(kCommand, labels.status());
    set.labels = *std::move(labels);
    absl::StatusOr<AccuracyGuardResult> g =
        QuantizeWithAccuracyGuard(*model, *calibration, options, set, guard);
    if (!g.ok()) return ReportError(kCommand, g.status());
    result = std::move(g->result);
    PrintReport(result);
    std::cout << absl::StrFormat(
        "top-1: FP32 %.2f%%, INT8 %.2f%% (drop %.2f points, budget %.2f)\n", g->fp32_accuracy,
        g->initial_int8_accuracy, g->fp32_accuracy - g->initial_int8_accuracy,
        guard.max_accuracy_drop);
    for (size_t i = 0; i < g->moved_to_fp32.size(); ++i) {
      std::cout << absl::StrFormat("moved '%s' to FP32: INT8 top-1 %.2f%%\n", g->moved_to_fp32[i],
                                   g->accuracy_after_move[i]);
    }
    std::cout << absl::StrFormat("final: INT8 top-1 %.2f%% with %d layer(s) moved to FP32, %s\n",
                                 g->int8_accuracy, g->moved_to_fp32.size(),
                                 g->within_budget ? "within budget" : "OVER BUDGET");
  } else {
    absl::StatusOr<QuantizeResult> r = QuantizeModel(*model, *calibration, options);
    if (!r.ok()) return ReportError(kCommand, r.status());
    result = *std::move(r);
    PrintReport(result);
  }
  const std::string out_path = parser.Get("output");
  std::ofstream out(out_path, std::ios::binary);
  out.write(result.onnx_bytes.data(), static_cast<std::streamsize>(result.onnx_bytes.size()));
  out.close();
  if (!out) {
    return ReportError(kCommand,
                       absl::PermissionDeniedError(absl::StrCat(out_path, ": cannot write")));
  }
  std::cout << "wrote " << out_path << "\n";
  return kExitOk;
}

}  // namespace octet::tool
