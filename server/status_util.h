// The one place where absl::Status becomes grpc::Status (codes are the same numbers).
#ifndef OCTET_SERVER_STATUS_UTIL_H_
#define OCTET_SERVER_STATUS_UTIL_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace octet::server {

// Longest error message sent to clients, in bytes. Messages quote client-supplied names, so an
// attacker-sized input name must not come back as an attacker-sized trailer.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `message` cut to at most `max_bytes` (at a UTF-8 character boundary) with "... (truncated)".
std::string TruncateMessage(absl::string_view message, size_t max_bytes = kMaxStatusMessageBytes);

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace octet::server

#endif  // OCTET_SERVER_STATUS_UTIL_H_
