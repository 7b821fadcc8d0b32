// Helpers for the ONNX conformance harness: reading the backend test data layout and comparing
// engine outputs with reference outputs.
#ifndef OCTET_TESTS_CONFORMANCE_CONFORMANCE_UTIL_H_
#define OCTET_TESTS_CONFORMANCE_CONFORMANCE_UTIL_H_

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {

// Tolerances of ONNX's backend tests for floating-point outputs.
inline constexpr double kConformanceRtol = 1e-4;
inline constexpr double kConformanceAtol = 1e-5;

absl::StatusOr<onnx::ModelProto> ReadModelProto(const std::string& path);

// Op types of the main graph's nodes; ops of other domains are prefixed "domain:".
std::set<std::string> OpTypes(const onnx::ModelProto& model);

// A refusal is clean when its code is a deliberate one (not OK, INTERNAL or UNKNOWN) and its
// message names what it refuses: one of the model's op types, a graph input/output/initializer
// or node output name, or the opset.
bool IsCleanRefusal(const absl::Status& status, const onnx::ModelProto& model);

// The test_data_set_* directories of a test, in order.
std::vector<std::filesystem::path> DataSets(const std::string& test_dir);

// `prefix`_0.pb, `prefix`_1.pb, ... in a data set directory, in numeric order.
std::vector<std::filesystem::path> NumberedFiles(const std::filesystem::path& dir,
                                                 const std::string& prefix);

// "" when `got` matches `want`: same dtype and shape, floats within
// |got - want| <= atol + rtol * |want| (NaN matches NaN), everything else exact. Otherwise a
// one-line description of the mismatch.
std::string CompareTensors(const Tensor& got, const Tensor& want, double rtol = kConformanceRtol,
                           double atol = kConformanceAtol);

}  // namespace octet

#endif  // OCTET_TESTS_CONFORMANCE_CONFORMANCE_UTIL_H_
