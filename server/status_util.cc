#include "server/status_util.h"

#include "absl/strings/str_cat.h"

namespace octet::server {

std::string TruncateMessage(absl::string_view message, size_t max_bytes) {
  if (message.size() <= max_bytes) return std::string(message);
  static constexpr absl::string_view kSuffix = "... (truncated)";
  size_t keep = max_bytes > kSuffix.size() ? max_bytes - kSuffix.size() : 0;
  // Do not cut a multi-byte character: back off over continuation bytes (10xxxxxx).
  while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
  return absl::StrCat(message.substr(0, keep), kSuffix);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      TruncateMessage(status.message()));
}

}  // namespace octet::server
