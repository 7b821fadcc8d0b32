// Helpers shared by the `octet` subcommands.
#ifndef OCTET_CORE_TOOL_TOOL_UTIL_H_
#define OCTET_CORE_TOOL_TOOL_UTIL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model.h"
#include "core/plan.h"
#include "core/tensor.h"

namespace octet::tool {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // bad model, bad input file, run error
inline constexpr int kExitUsage = 2;    // bad command line

// Prints "octet <command>: error: <message>" as a single line on stderr; returns kExitFailure.
int ReportError(absl::string_view command, const absl::Status& status);
// Prints the usage error and a pointer to --help on one line; returns kExitUsage.
int ReportUsageError(absl::string_view command, const absl::Status& status);

// Loads a model; a missing or unreadable file is reported as such before the importer runs.
absl::StatusOr<std::shared_ptr<const Model>> LoadModel(const std::string& path);

// "x f32[N,3,224,224]": symbolic dimensions by name ("?" when unnamed).
std::string SpecToString(const TensorSpec& spec);
// "f32[1,3,224,224]".
std::string TensorSummary(const Tensor& tensor);

// Splits "NAME=VALUE" at the first '='; both sides must be non-empty.
absl::StatusOr<std::pair<std::string, std::string>> SplitAssignment(absl::string_view flag,
                                                                    absl::string_view text);

// Parses "1x3x224x224" (a scalar is "scalar").
absl::StatusOr<Shape> ParseShapeText(absl::string_view text);

// Checks dtype, rank and the static dimensions of `tensor` against `spec`. `origin` says where the
// tensor came from (a file name) for the error message.
absl::Status CheckAgainstSpec(const Tensor& tensor, const TensorSpec& spec,
                              absl::string_view origin);

// A file name for an output tensor name: letters, digits, '.', '-' and '_' are kept, everything
// else becomes '_'; never empty, never starting with '.', at most 200 characters. `taken` holds
// the names already used; a clash gets a numeric suffix.
std::string SafeFileName(absl::string_view name, std::vector<std::string>* taken);

// Multiply-accumulates of one run of `plan`: convolutions (output elements x C/group x kernel
// size) and matrix products (output elements x K), FP32 or int8. Other ops are not counted.
int64_t PlanMacs(const ExecutionPlan& plan);

// The process's resident set size now (VmRSS) and its peak so far (VmHWM), in bytes; 0 if
// unknown.
int64_t RssBytes();
int64_t PeakRssBytes();

}  // namespace octet::tool

#endif  // OCTET_CORE_TOOL_TOOL_UTIL_H_
