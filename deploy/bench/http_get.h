// A minimal HTTP/1.0 GET over a plain socket, for scraping /metrics. octet-bench ships in the
// runtime image, whose package list has no libcurl; HTTP/1.0 keeps the reply unchunked.
#ifndef OCTET_DEPLOY_BENCH_HTTP_GET_H_
#define OCTET_DEPLOY_BENCH_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deploy/bench/bench_options.h"

namespace octet::bench {

// The body of a 200 reply. UNAVAILABLE when the server cannot be reached or times out,
// FAILED_PRECONDITION on another status code; errors name the URL.
absl::StatusOr<std::string> HttpGet(const HttpUrl& url, absl::Duration timeout);

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_HTTP_GET_H_
