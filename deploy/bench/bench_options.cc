#include "deploy/bench/bench_options.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace octet::bench {
namespace {

absl::Status Invalid(absl::string_view flag, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", problem));
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ParseIntList(absl::string_view flag, absl::string_view text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v;
    if (!absl::SimpleAtoi(part, &v) || v < 1 || v > 100000) {
      return Invalid(
          flag,
          absl::StrCat("expected integers in [1, 100000] separated by commas, got '", text, "'"));
    }
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<double>> ParseRateList(absl::string_view flag, absl::string_view text) {
  std::vector<double> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double v;
    if (!absl::SimpleAtod(part, &v) || !std::isfinite(v) || v <= 0) {
      return Invalid(flag, absl::StrCat("expected numbers > 0 (requests per second) separated by "
                                        "commas, got '",
                                        text, "'"));
    }
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseInputAssignment(absl::string_view text) {
  std::pair<std::string, std::string> kv = absl::StrSplit(text, absl::MaxSplits('=', 1));
  if (kv.first.empty() || kv.second.empty() || !absl::StrContains(text, '=')) {
    return Invalid("input", absl::StrCat("expected NAME=FILE.npy, got '", text, "'"));
  }
  return kv;
}

absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url) {
  constexpr absl::string_view kScheme = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    return Invalid("metrics_url", absl::StrCat("expected http://HOST:PORT/PATH, got '", url, "'"));
  }
  absl::string_view rest = url.substr(kScheme.size());
  HttpUrl out;
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) out.path = std::string(rest.substr(slash));
  const size_t colon = authority.rfind(':');
  out.host = std::string(authority.substr(0, colon));
  if (colon != absl::string_view::npos) {
    int port;
    if (!absl::SimpleAtoi(authority.substr(colon + 1), &port) || port < 1 || port > 65535) {
      return Invalid("metrics_url", absl::StrCat("bad port in '", url, "'"));
    }
    out.port = port;
  }
  if (out.host.empty()) return Invalid("metrics_url", absl::StrCat("no host in '", url, "'"));
  return out;
}

absl::Status BenchOptions::Validate() const {
  if (target.empty()) return Invalid("target", "required (host:port of octet-server)");
  const size_t colon = target.rfind(':');
  int port;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(target).substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return Invalid("target", absl::StrCat("expected HOST:PORT, got '", target, "'"));
  }
  if (model.empty()) return Invalid("model", "required");
  if (version < 0) return Invalid("version", "must be >= 0 (0 = latest)");
  if (batch < 1) return Invalid("batch", "must be >= 1");
  if (!inputs.empty() && batch != 1) {
    return Invalid("batch",
                   "applies to random inputs only; the .npy files given with --input "
                   "carry their own batch dimension");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (inputs[i].first == inputs[j].first) {
        return Invalid("input", absl::StrCat("input '", inputs[i].first, "' given twice"));
      }
    }
  }
  if (concurrency.empty() == request_rate.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --concurrency (closed loop) and --request_rate (Poisson arrivals)");
  }
  if (!(warmup_seconds >= 0) || !std::isfinite(warmup_seconds)) {
    return Invalid("warmup_seconds", "must be >= 0");
  }
  if (!(seconds > 0) || !std::isfinite(seconds)) return Invalid("seconds", "must be > 0");
  if (timeout_ms <= 0) return Invalid("timeout_ms", "must be > 0");
  if (!metrics_url.empty()) {
    if (absl::StatusOr<HttpUrl> url = ParseHttpUrl(metrics_url); !url.ok()) return url.status();
  }
  if (rpc != "predict" && rpc != "model_status") {
    return Invalid("rpc", absl::StrCat("expected predict or model_status, got '", rpc, "'"));
  }
  if (rpc != "predict" && !csv.empty()) {
    return Invalid("csv", "rows are Predict runs; leave --csv out with --rpc=model_status");
  }
  return absl::OkStatus();
}

}  // namespace octet::bench
