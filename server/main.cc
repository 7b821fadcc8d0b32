// octet-server: serves a model repository over gRPC (TF Serving's Predict API) with dynamic
// batching, health, reflection and Prometheus metrics. Every flag can also be set with an
// environment variable OCTET_<FLAG NAME IN UPPER CASE> (for Kubernetes); a flag on the command
// line wins over the environment.
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/openmp_env.h"
#include "server/log.h"
#include "server/server.h"

ABSL_FLAG(std::string, model_repository, "/models",
          "Directory of <model>/config.pbtxt and <model>/<version>/model.onnx.");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address the gRPC and metrics servers listen on.");
ABSL_FLAG(int, grpc_port, 8500, "gRPC port (Predict, GetModelMetadata, GetModelStatus, health).");
ABSL_FLAG(int, health_port, -1,
          "Extra plaintext port serving only grpc.health.v1.Health, for probes that cannot use "
          "TLS (Kubernetes gRPC probes); -1 = none, 0 = pick a free one.");
ABSL_FLAG(int, metrics_port, 8502, "Prometheus /metrics port; -1 disables it.");
ABSL_FLAG(int, poll_interval_seconds, 5, "How often the model repository is rescanned.");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "Largest gRPC message accepted or sent, in bytes.");
ABSL_FLAG(int, max_concurrent_streams, 1024,
          "Requests one client connection may have open at once (more wait at the client); "
          "bounds the server's memory under overload. 0 = no limit.");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM server certificate; enables TLS with the key.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM CA; when set, Predict/metadata/status require client certificates it signed "
          "(mTLS). Health never requires one.");
ABSL_FLAG(int, drain_grace_seconds, 20,
          "On SIGTERM: seconds to let queued and in-flight requests finish.");
ABSL_FLAG(double, cost_per_core_hour, 0.0, "Price of a CPU core-hour, for the cost gauge.");
ABSL_FLAG(double, cost_per_gib_hour, 0.0, "Price of a GiB-hour of memory, for the cost gauge.");
ABSL_FLAG(int, cpu_budget, 0,
          "CPUs to plan workers x threads within; 0 = cgroup quota and affinity.");

namespace {

constexpr const char* kFlagNames[] = {"model_repository",   "host",
                                      "grpc_port",          "health_port",
                                      "metrics_port",       "poll_interval_seconds",
                                      "max_message_bytes",  "max_concurrent_streams",
                                      "tls_cert_file",      "tls_key_file",
                                      "tls_ca_file",        "drain_grace_seconds",
                                      "cost_per_core_hour", "cost_per_gib_hour",
                                      "cpu_budget"};

// Applies OCTET_<NAME> environment variables as flag values; command-line parsing runs after
// and overrides them.
bool ApplyEnvironment() {
  for (const char* name : kFlagNames) {
    const std::string var = absl::StrCat("OCTET_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      octet::server::LogError(absl::StrCat("bad value for ", var, ": ", error));
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Idle OpenMP threads must sleep, not spin: several workers' teams share the cores. libgomp
  // reads the policy when it loads, before main(), so this re-executes the binary if it is unset.
  octet::EnsurePassiveOpenMp(argv);
  absl::SetProgramUsageMessage(
      "octet-server --model_repository=DIR [--grpc_port=8500] [--metrics_port=8502] ...");
  if (!ApplyEnvironment()) return 2;
  absl::ParseCommandLine(argc, argv);
  // Debian's absl is built without NDEBUG, so every absl::Mutex lock (ours and gRPC's) records
  // lock order in a process-wide graph: ~60 ns per lock, 5x an uncontended lock, dozens of locks
  // per request. Release builds of absl skip it; the tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // SIGTERM/SIGINT are taken synchronously by this thread; block them before any thread starts
  // so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  octet::server::OctetServer::Options options;
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  options.host = absl::GetFlag(FLAGS_host);
  options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.health_port = absl::GetFlag(FLAGS_health_port);
  options.poll_interval = absl::Seconds(std::max(1, absl::GetFlag(FLAGS_poll_interval_seconds)));
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  options.cost.per_core_hour = absl::GetFlag(FLAGS_cost_per_core_hour);
  options.cost.per_gib_hour = absl::GetFlag(FLAGS_cost_per_gib_hour);
  options.cpu_budget = absl::GetFlag(FLAGS_cpu_budget);

  absl::StatusOr<std::unique_ptr<octet::server::OctetServer>> server =
      octet::server::OctetServer::Start(options);
  if (!server.ok()) {
    octet::server::LogError(absl::StrCat("cannot start: ", server.status().ToString()));
    return 1;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  octet::server::LogInfo(absl::StrCat("received signal ", signal_number));
  (*server)->Drain(absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds)));
  server->reset();
  return 0;
}
