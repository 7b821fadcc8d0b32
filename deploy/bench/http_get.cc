#include "deploy/bench/http_get.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace octet::bench {
namespace {

std::string UrlText(const HttpUrl& url) {
  return absl::StrCat("http://", url.host, ":", url.port, url.path);
}

}  // namespace

absl::StatusOr<std::string> HttpGet(const HttpUrl& url, absl::Duration timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  const std::string port = std::to_string(url.port);
  if (int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &addresses); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("GET ", UrlText(url), ": cannot resolve host: ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string connect_error = "no address";
  for (addrinfo* a = addresses; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(timeout));
    tv.tv_usec = static_cast<suseconds_t>(absl::ToInt64Microseconds(timeout) % 1000000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      connect_error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addresses);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("GET ", UrlText(url), ": ", connect_error));
  }
  const std::string request =
      absl::StrCat("GET ", url.path, " HTTP/1.0\r\nHost: ", url.host, "\r\n\r\n");
  std::string reply;
  bool failed = write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size());
  char buffer[16384];
  while (!failed) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      failed = true;
      break;
    }
    reply.append(buffer, static_cast<size_t>(n));
  }
  const int saved_errno = errno;
  close(fd);
  if (failed) {
    return absl::UnavailableError(
        absl::StrCat("GET ", UrlText(url), ": ", std::strerror(saved_errno)));
  }
  const size_t header_end = reply.find("\r\n\r\n");
  const std::string status_line = reply.substr(0, reply.find("\r\n"));
  if (header_end == std::string::npos || !absl::StartsWith(status_line, "HTTP/")) {
    return absl::UnavailableError(absl::StrCat("GET ", UrlText(url), ": not an HTTP reply"));
  }
  if (!absl::StrContains(status_line, " 200")) {
    return absl::FailedPreconditionError(absl::StrCat("GET ", UrlText(url), ": ", status_line));
  }
  return reply.substr(header_end + 4);
}

}  // namespace octet::bench
