// octet-bench: a load generator for octet-server, in the spirit of Triton's perf_analyzer.
// Sends Predict requests at a fixed concurrency (closed loop) or at Poisson arrival times (open
// loop), reports throughput, latency percentiles and errors by gRPC code, and with --metrics_url
// the server's own split of the same window into queueing and compute (from /metrics deltas).
// One CSV row per run with --csv; the columns are documented in deploy/bench/run_report.h.
//
//   octet-bench --target 127.0.0.1:8500 --model fashion_mlp --concurrency 1,16,64
//       --seconds 10 --metrics_url http://127.0.0.1:8502/metrics --csv runs.csv
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "deploy/bench/bench_options.h"
#include "deploy/bench/http_get.h"
#include "deploy/bench/load_runner.h"
#include "deploy/bench/metrics_snapshot.h"
#include "deploy/bench/request_builder.h"
#include "deploy/bench/run_report.h"
#include "grpcpp/grpcpp.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

ABSL_FLAG(std::string, target, "", "host:port of octet-server's gRPC port (required).");
ABSL_FLAG(std::string, model, "", "Model name (required).");
ABSL_FLAG(int64_t, version, 0, "Model version; 0 = the latest the server serves.");
ABSL_FLAG(std::vector<std::string>, input, {},
          "NAME=FILE.npy: send this input from a .npy file (repeatable, or comma-separated). "
          "Without it: random inputs of the shapes GetModelMetadata reports.");
ABSL_FLAG(int64_t, batch, 1, "Rows per request of random inputs (the unknown first dimension).");
ABSL_FLAG(std::string, concurrency, "",
          "Closed loop: outstanding requests; a list (1,16,64) sweeps, one run each.");
ABSL_FLAG(std::string, request_rate, "",
          "Open loop: Poisson arrivals per second; a list sweeps, one run each.");
ABSL_FLAG(double, warmup_seconds, 1, "Load before each measured window, not counted.");
ABSL_FLAG(double, seconds, 10, "Length of each measured window.");
ABSL_FLAG(int64_t, timeout_ms, 10000, "Deadline of each request, in milliseconds.");
ABSL_FLAG(std::string, metrics_url, "",
          "http://HOST:PORT/metrics of the server: adds its request count, queue vs compute "
          "time, batch sizes and CPU use over the same window.");
ABSL_FLAG(std::string, csv, "",
          "Append one row per run to this CSV file (header written when the file is new).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of random inputs and Poisson arrivals.");
ABSL_FLAG(std::string, rpc, "predict",
          "predict, or model_status: send GetModelStatus(model) instead of Predict, the floor of "
          "one round trip through the same client and server without the model's work.");

namespace octet::bench {
namespace {

constexpr int kUsageError = 2;
constexpr int kRunError = 1;

int Fail(int code, const std::string& message) {
  std::cerr << "octet-bench: " << message << "\n";
  if (code == kUsageError) std::cerr << "Run octet-bench --help for the flags.\n";
  return code;
}

// absl keeps only the last occurrence of a flag; --input is repeatable, so every occurrence is
// folded into one comma-separated --input before parsing.
std::vector<std::string> FoldRepeatedInputs(int argc, char** argv) {
  std::vector<std::string> args, inputs;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--input" || arg == "-input") {
      if (i + 1 < argc)
        inputs.push_back(argv[++i]);
      else
        args.push_back(arg);  // absl reports the missing value
    } else if (absl::StartsWith(arg, "--input=") || absl::StartsWith(arg, "-input=")) {
      inputs.push_back(arg.substr(arg.find('=') + 1));
    } else {
      args.push_back(arg);
    }
  }
  if (!inputs.empty()) args.push_back("--input=" + absl::StrJoin(inputs, ","));
  return args;
}

absl::StatusOr<BenchOptions> OptionsFromFlags() {
  BenchOptions o;
  o.target = absl::GetFlag(FLAGS_target);
  o.model = absl::GetFlag(FLAGS_model);
  o.version = absl::GetFlag(FLAGS_version);
  for (const std::string& text : absl::GetFlag(FLAGS_input)) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseInputAssignment(text);
    if (!kv.ok()) return kv.status();
    o.inputs.push_back(*kv);
  }
  o.batch = absl::GetFlag(FLAGS_batch);
  if (const std::string c = absl::GetFlag(FLAGS_concurrency); !c.empty()) {
    absl::StatusOr<std::vector<int64_t>> list = ParseIntList("concurrency", c);
    if (!list.ok()) return list.status();
    o.concurrency = *list;
  }
  if (const std::string r = absl::GetFlag(FLAGS_request_rate); !r.empty()) {
    absl::StatusOr<std::vector<double>> list = ParseRateList("request_rate", r);
    if (!list.ok()) return list.status();
    o.request_rate = *list;
  }
  o.warmup_seconds = absl::GetFlag(FLAGS_warmup_seconds);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  o.metrics_url = absl::GetFlag(FLAGS_metrics_url);
  o.csv = absl::GetFlag(FLAGS_csv);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.rpc = absl::GetFlag(FLAGS_rpc);
  if (absl::Status s = o.Validate(); !s.ok()) return s;
  return o;
}

std::string StatusText(const grpc::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                      s.error_message());
}

absl::StatusOr<MetricsSnapshot> Scrape(const HttpUrl& url) {
  absl::StatusOr<std::string> text = HttpGet(url, absl::Seconds(10));
  if (!text.ok()) return text.status();
  return MetricsSnapshot::Parse(*text);
}

int Run(const BenchOptions& o) {
  // Before any load: a CSV that cannot be written (or has other columns) fails now, not after.
  if (!o.csv.empty()) {
    if (absl::Status s = AppendCsv(o.csv, {}); !s.ok()) {
      return Fail(kRunError, std::string(s.message()));
    }
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  channel_args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), channel_args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(o.timeout_ms))) {
    return Fail(kRunError,
                absl::StrCat("cannot connect to ", o.target, " within ", o.timeout_ms, " ms"));
  }
  auto stub = tensorflow::serving::PredictionService::NewStub(channel);

  // What the server serves: the version and the input signature.
  tensorflow::serving::GetModelMetadataRequest meta_request;
  meta_request.mutable_model_spec()->set_name(o.model);
  if (o.version > 0) meta_request.mutable_model_spec()->mutable_version()->set_value(o.version);
  meta_request.add_metadata_field("signature_def");
  tensorflow::serving::GetModelMetadataResponse meta;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = stub->GetModelMetadata(&context, meta_request, &meta);
    if (!s.ok()) {
      return Fail(kRunError,
                  absl::StrCat("GetModelMetadata(", o.model, ") failed: ", StatusText(s)));
    }
  }
  const int64_t version = meta.model_spec().version().value();
  absl::StatusOr<tensorflow::SignatureDef> signature = DefaultSignature(meta);
  if (!signature.ok()) return Fail(kRunError, signature.status().ToString());
  absl::StatusOr<tensorflow::serving::PredictRequest> request =
      o.inputs.empty() ? BuildRandomRequest(*signature, o.batch, o.seed)
                       : BuildNpyRequest(*signature, o.inputs);
  if (!request.ok()) return Fail(kRunError, std::string(request.status().message()));
  request->mutable_model_spec()->set_name(o.model);
  request->mutable_model_spec()->mutable_version()->set_value(version);
  const int64_t rows = RequestRows(*request);

  // One call first, so that a request the server refuses is one clear error, not a flood.
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(o.timeout_ms));
    tensorflow::serving::PredictResponse response;
    grpc::Status s = stub->Predict(&context, *request, &response);
    if (!s.ok()) return Fail(kRunError, absl::StrCat("the first Predict failed: ", StatusText(s)));
  }

  std::optional<HttpUrl> metrics_url;
  if (!o.metrics_url.empty()) {
    metrics_url = *ParseHttpUrl(o.metrics_url);
    absl::StatusOr<MetricsSnapshot> probe = Scrape(*metrics_url);
    if (!probe.ok()) return Fail(kRunError, std::string(probe.status().message()));
    if (!probe->Has("octet_requests_total",
                    {{"model", o.model}, {"version", std::to_string(version)}})) {
      return Fail(kRunError, absl::StrCat(o.metrics_url, " has no octet_requests_total for ",
                                          o.model, " version ", version,
                                          ": is it the metrics port of ", o.target, "?"));
    }
  }

  LoadRunner::Options runner_options;
  runner_options.timeout = absl::Milliseconds(o.timeout_ms);
  const bool floor = o.rpc == "model_status";
  tensorflow::serving::GetModelStatusRequest status_request;
  *status_request.mutable_model_spec() = request->model_spec();
  std::unique_ptr<LoadRunner> runner =
      floor ? std::make_unique<LoadRunner>(runner_options,
                                           tensorflow::serving::ModelService::NewStub(channel),
                                           std::move(status_request))
            : std::make_unique<LoadRunner>(runner_options, std::move(stub), *request);
  const bool open_loop = !o.request_rate.empty();
  const size_t runs = open_loop ? o.request_rate.size() : o.concurrency.size();
  std::vector<RunReport> reports;
  for (size_t i = 0; i < runs; ++i) {
    auto phase = [&](double seconds) {
      const absl::Duration d = absl::Seconds(seconds);
      return open_loop ? runner->RunOpenLoop(o.request_rate[i], d, o.seed + i)
                       : runner->RunClosedLoop(o.concurrency[i], d);
    };
    if (o.warmup_seconds > 0) phase(o.warmup_seconds);
    std::optional<MetricsSnapshot> before;
    absl::Time before_time;
    if (metrics_url) {
      absl::StatusOr<MetricsSnapshot> s = Scrape(*metrics_url);
      if (!s.ok()) return Fail(kRunError, std::string(s.status().message()));
      before = std::move(*s);
      before_time = absl::Now();
    }
    PhaseResult result = phase(o.seconds);
    RunReport r;
    if (metrics_url) {
      absl::StatusOr<MetricsSnapshot> after = Scrape(*metrics_url);
      if (!after.ok()) return Fail(kRunError, std::string(after.status().message()));
      r.server = ComputeServerWindow(*before, *after, o.model, version,
                                     absl::ToDoubleSeconds(absl::Now() - before_time));
    }
    r.timestamp_utc = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
    r.target = o.target;
    r.model = o.model;
    r.version = version;
    r.open_loop = open_loop;
    if (open_loop)
      r.request_rate = o.request_rate[i];
    else
      r.concurrency = o.concurrency[i];
    r.batch = rows;
    r.warmup_s = o.warmup_seconds;
    r.window_s = o.seconds;
    r.elapsed_s = result.elapsed_seconds;
    r.ok = result.ok;
    r.error_codes = result.errors;
    r.late_sends = result.late_sends;
    r.latency = Summarize(std::move(result.ok_latencies));
    if (floor) std::cout << "GetModelStatus instead of Predict (--rpc=model_status): ";
    std::cout << HumanSummary(r) << std::flush;
    reports.push_back(std::move(r));
  }
  if (!o.csv.empty()) {
    if (absl::Status s = AppendCsv(o.csv, reports); !s.ok()) {
      return Fail(kRunError, std::string(s.message()));
    }
    std::cout << "wrote " << reports.size() << " row(s) to " << o.csv << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace octet::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octet-bench --target HOST:PORT --model NAME (--concurrency C[,C...] | --request_rate "
      "R[,R...]) [--batch B | --input NAME=FILE.npy ...] [--seconds S] [--warmup_seconds W] "
      "[--metrics_url http://HOST:PORT/metrics] [--csv FILE]");
  // --help lists the flags of this file (absl's default looks for a file named like the binary).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "bench/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<std::string> folded = octet::bench::FoldRepeatedInputs(argc, argv);
  std::vector<char*> args;
  for (std::string& a : folded) args.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() > 1) {
    return octet::bench::Fail(octet::bench::kUsageError,
                              absl::StrCat("unexpected argument '", positional[1], "'"));
  }
  // As in octet-server: Debian's absl (built without NDEBUG) would check lock order on every
  // absl::Mutex lock, gRPC's included, which release builds of absl do not do.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<octet::bench::BenchOptions> options = octet::bench::OptionsFromFlags();
  if (!options.ok()) {
    return octet::bench::Fail(octet::bench::kUsageError, std::string(options.status().message()));
  }
  return octet::bench::Run(*options);
}
