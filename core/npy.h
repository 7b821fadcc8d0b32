// NumPy .npy file reading and writing for Octet tensors.
//
// Supported: format versions 1.0, 2.0 and 3.0; C order; little-endian (or byte-order-free)
// dtypes float32 '<f4', uint8 '|u1', int8 '|i1', int32 '<i4', int64 '<i8' and bool '|b1'.
// Everything else (Fortran order, big endian, other dtypes, structured dtypes, truncated data,
// malformed headers) is refused with INVALID_ARGUMENT.
#ifndef OCTET_CORE_NPY_H_
#define OCTET_CORE_NPY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace octet {

// Parses the bytes of a whole .npy file into a new owned tensor.
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes);

// Reads and parses a .npy file; errors name the file.
absl::StatusOr<Tensor> ReadNpy(const std::string& path);

// Serializes `tensor` as a .npy file (version 1.0, or 2.0 when the header needs it).
std::string SerializeNpy(const Tensor& tensor);

// Writes `tensor` to `path` as a .npy file; errors name the file.
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace octet

#endif  // OCTET_CORE_NPY_H_
