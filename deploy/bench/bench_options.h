// What one octet-bench invocation does: which model on which server, how the load is shaped
// (closed loop at a fixed concurrency, or open loop with Poisson arrivals at a fixed rate), for
// how long, and where the results go. Filled from the command line by main.cc and checked by
// Validate() so that a bad combination is one clear error before any request is sent.
#ifndef OCTET_DEPLOY_BENCH_BENCH_OPTIONS_H_
#define OCTET_DEPLOY_BENCH_BENCH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet::bench {

struct BenchOptions {
  // gRPC address of octet-server, host:port (e.g. 127.0.0.1:8500). Required.
  std::string target;
  // Model name. Required.
  std::string model;
  // Model version; 0 = the latest version the server serves.
  int64_t version = 0;
  // (input name, .npy path) pairs. Empty = random inputs of the shapes GetModelMetadata reports.
  std::vector<std::pair<std::string, std::string>> inputs;
  // Rows per request for random inputs (the first, batch, dimension). >= 1.
  int64_t batch = 1;
  // Closed loop: this many requests outstanding at all times, one run per value (a sweep).
  // Exactly one of concurrency and request_rate is set.
  std::vector<int64_t> concurrency;
  // Open loop: Poisson arrivals at this many requests per second, one run per value.
  std::vector<double> request_rate;
  // Load before each measured window, in seconds; not counted. >= 0.
  double warmup_seconds = 1;
  // Length of each measured window, in seconds. > 0.
  double seconds = 10;
  // Per-request deadline, in milliseconds. > 0.
  int64_t timeout_ms = 10000;
  // http://HOST:PORT/metrics of the server; "" = no server-side figures.
  std::string metrics_url;
  // CSV file that gets one row per run (created with a header, else appended to); "" = none.
  std::string csv;
  // Seed of the random inputs and of the Poisson arrivals (runs are repeatable).
  uint64_t seed = 1;
  // The RPC each call makes: "predict", or "model_status" (GetModelStatus of the model: the floor
  // of one round trip through the same client and server, without the model's work).
  std::string rpc = "predict";

  // Everything above is consistent: required fields present, ranges respected, exactly one load
  // shape. INVALID_ARGUMENT naming the flag otherwise.
  absl::Status Validate() const;
};

// "1,16,64" -> {1, 16, 64}; every value in [1, 100000]. Errors name `flag`.
absl::StatusOr<std::vector<int64_t>> ParseIntList(absl::string_view flag, absl::string_view text);
// "50,200.5" -> {50, 200.5}; every value > 0 and finite. Errors name `flag`.
absl::StatusOr<std::vector<double>> ParseRateList(absl::string_view flag, absl::string_view text);
// "NAME=FILE.npy" -> (NAME, FILE.npy).
absl::StatusOr<std::pair<std::string, std::string>> ParseInputAssignment(absl::string_view text);
// "http://127.0.0.1:8502/metrics" -> host, port, path. Only plain http.
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string path = "/";
};
absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url);

}  // namespace octet::bench

#endif  // OCTET_DEPLOY_BENCH_BENCH_OPTIONS_H_
