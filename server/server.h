// OctetServer: the whole serving process minus flag parsing: model repository, gRPC services
// (Predict, GetModelMetadata, GetModelStatus, health, reflection), and the /metrics endpoint.
// Tests start it on 127.0.0.1 with port 0 and a fake loader.
#ifndef OCTET_SERVER_SERVER_H_
#define OCTET_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/cpu_slots.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/request_gate.h"
#include "server/servable.h"

namespace grpc {
class CallbackGenericService;
}

namespace prometheus {
class Exposer;
}

namespace octet::server {

class PredictionServiceImpl;
class ModelServiceImpl;

class OctetServer {
 public:
  struct Options {
    // Directory of <model>/config.pbtxt and <model>/<version>/model.onnx. Required.
    std::string model_repository;
    // Address to listen on; "0.0.0.0" for all interfaces.
    std::string host = "0.0.0.0";
    // gRPC port; 0 = pick a free one (see grpc_port()).
    int grpc_port = 8500;
    // Extra plaintext port that serves only grpc.health.v1.Health (no reflection, no models), for
    // probes that cannot speak TLS (Kubernetes gRPC probes). -1 = none; 0 = pick a free one.
    int health_port = -1;
    // Prometheus /metrics port; 0 = pick a free one; -1 = no metrics endpoint.
    int metrics_port = 8502;
    // How often the repository is rescanned.
    absl::Duration poll_interval = absl::Seconds(5);
    // Largest gRPC message accepted or sent, in bytes.
    int max_message_bytes = 64 << 20;
    // Requests (HTTP/2 streams) one client connection may have open at once; further ones wait
    // at the client. Bounds what the server holds beyond its batching queues when it cannot even
    // refuse as fast as requests arrive (overload on saturated CPUs). 0 = gRPC's default (no
    // limit).
    int max_concurrent_streams = 1024;
    // PEM files. With cert and key the port uses TLS; with a CA too, Predict/metadata/status
    // require a client certificate signed by it (health stays open for probes).
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_ca_file;
    CostRates cost;
    // Drain: once the last accepted request is answered, new ones keep being refused UNAVAILABLE
    // until none has come for this long (bounded by the grace period), and only then does the
    // listener close. Clients still sending thus get a clear refusal instead of a call cancelled
    // by the closing connection.
    absl::Duration drain_quiet_period = absl::Seconds(1);
    // CPUs to plan workers x threads within; 0 = read cgroup quota and affinity.
    int cpu_budget = 0;
    // How versions are loaded; empty = the Octet engine (model.onnx).
    ServableLoader loader;
  };

  // Loads the repository once, starts serving, and starts polling. Health is SERVING only once
  // every model has a version available (re-evaluated after every poll).
  static absl::StatusOr<std::unique_ptr<OctetServer>> Start(const Options& options);
  // Drains with a short grace if Drain() was not called.
  ~OctetServer();

  // SIGTERM behaviour: health NOT_SERVING, new requests UNAVAILABLE, queued and in-flight ones
  // finish (up to `grace`), then the gRPC server and the models stop. Returns true if every
  // accepted request was answered within the grace period.
  bool Drain(absl::Duration grace);

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  // The plaintext health-only port, or -1.
  int health_port() const { return health_port_; }
  ModelRepository& repository() { return *repository_; }
  Metrics& metrics() { return *metrics_; }
  int cpu_budget() const { return cpu_budget_; }
  // The budget's run-time slots shared by every model (cpu_slots.h).
  CpuSlots& cpu_slots() { return *cpu_slots_; }

 private:
  OctetServer() = default;
  void UpdateHealth();

  Options options_;
  int cpu_budget_ = 1;
  int grpc_port_ = 0;
  int metrics_port_ = -1;
  int health_port_ = -1;
  bool drained_ = false;
  std::unique_ptr<CpuSlots> cpu_slots_;  // outlives the repository's versions
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<RequestGate> gate_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<PredictionServiceImpl> prediction_service_;
  std::unique_ptr<ModelServiceImpl> model_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::CallbackGenericService> health_other_methods_;
  std::unique_ptr<grpc::Server> health_server_;  // --health_port; null without it
};

}  // namespace octet::server

#endif  // OCTET_SERVER_SERVER_H_
