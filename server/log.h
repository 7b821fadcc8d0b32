// Minimal line logging to stderr (Debian's absl 20220623 has no absl/log). One line per call,
// prefixed with time and severity, written with a single write so threads do not interleave.
#ifndef OCTET_SERVER_LOG_H_
#define OCTET_SERVER_LOG_H_

#include "absl/strings/string_view.h"

namespace octet::server {

void LogInfo(absl::string_view message);
void LogWarning(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace octet::server

#endif  // OCTET_SERVER_LOG_H_
