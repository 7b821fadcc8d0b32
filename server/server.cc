#include "server/server.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "prometheus/exposer.h"
#include "server/cpu_budget.h"
#include "server/log.h"
#include "server/model_service.h"
#include "server/octet_servable.h"
#include "server/prediction_service.h"

namespace octet::server {
namespace {

// Names under which health is reported (besides "" for the whole server).
constexpr const char* kHealthServiceNames[] = {"tensorflow.serving.PredictionService",
                                               "tensorflow.serving.ModelService"};

// Drops every server builder plugin (the reflection plugin is registered process-wide), so the
// health-only port serves grpc.health.v1.Health and nothing else.
class NoPluginsOption : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

// Answers every method of the health-only port other than health itself. It is also what makes
// that server valid: gRPC refuses to start a server whose only service is the default health
// service (it runs on a non-polling queue), and a callback service gives it a polled one.
class HealthPortOtherMethods : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "the health port serves only grpc.health.v1.Health"));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor;
  }
};

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const OctetServer::Options& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls_ca_file needs --tls_cert_file and --tls_key_file");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert_file and --tls_key_file");
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file);
  if (!key.ok()) return key.status();
  // With a CA, client certificates are verified when presented and required by the services
  // themselves (RequestGate), so health probes without a certificate still get through.
  grpc::SslServerCredentialsOptions ssl(options.tls_ca_file.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OctetServer>> OctetServer::Start(const Options& options) {
  std::unique_ptr<OctetServer> s(new OctetServer());
  s->options_ = options;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();

  if (options.cpu_budget > 0) {
    s->cpu_budget_ = options.cpu_budget;
  } else {
    const CpuBudget budget = ComputeCpuBudget();
    s->cpu_budget_ = budget.cpus;
    LogInfo(absl::StrCat("CPU budget: ", budget.description));
  }

  s->cpu_slots_ = std::make_unique<CpuSlots>(s->cpu_budget_);
  Metrics::Options metrics_options;
  metrics_options.cost = options.cost;
  s->metrics_ = std::make_unique<Metrics>(metrics_options);
  if (options.metrics_port >= 0) {
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(
          absl::StrCat(options.host, ":", options.metrics_port), 1);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot serve /metrics on ", options.host, ":",
                                                 options.metrics_port, ": ", e.what()));
    }
    s->exposer_->RegisterCollectable(s->metrics_->registry());
    s->exposer_->RegisterCollectable(s->metrics_->collector());
    const std::vector<int> ports = s->exposer_->GetListeningPorts();
    s->metrics_port_ = ports.empty() ? options.metrics_port : ports[0];
  }

  s->gate_ = std::make_unique<RequestGate>(!options.tls_ca_file.empty());
  ModelRepository::Options repo_options;
  repo_options.root = options.model_repository;
  repo_options.loader = options.loader ? options.loader : OctetModelLoader();
  repo_options.metrics = s->metrics_.get();
  repo_options.cpu_budget = s->cpu_budget_;
  repo_options.cpu_slots = s->cpu_slots_.get();
  OctetServer* self = s.get();
  repo_options.after_poll = [self] { self->UpdateHealth(); };
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Create(repo_options);
  if (!repository.ok()) return repository.status();
  s->repository_ = std::move(repository).value();

  s->prediction_service_ = std::make_unique<PredictionServiceImpl>(
      s->repository_.get(), s->metrics_.get(), s->gate_.get());
  s->model_service_ = std::make_unique<ModelServiceImpl>(s->repository_.get(), s->gate_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.grpc_port), *credentials,
                           &s->grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  }
  builder.RegisterService(s->prediction_service_.get());
  builder.RegisterService(s->model_service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.host, ":", options.grpc_port));
  }
  if (options.health_port >= 0) {
    // Plaintext on purpose: kubelet gRPC probes cannot do TLS. It reveals only SERVING or not.
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(absl::StrCat(options.host, ":", options.health_port),
                                    grpc::InsecureServerCredentials(), &s->health_port_);
    health_builder.SetOption(std::make_unique<NoPluginsOption>());
    s->health_other_methods_ = std::make_unique<HealthPortOtherMethods>();
    health_builder.RegisterCallbackGenericService(s->health_other_methods_.get());
    s->health_server_ = health_builder.BuildAndStart();
    if (s->health_server_ == nullptr || s->health_port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options.host, ":", options.health_port, " (health)"));
    }
  }
  s->UpdateHealth();  // NOT_SERVING until the first poll has loaded every model
  s->repository_->Poll();
  s->repository_->StartPolling(options.poll_interval);
  LogInfo(absl::StrCat(
      "serving gRPC on ", options.host, ":", s->grpc_port_,
      options.tls_cert_file.empty() ? "" : " (TLS)",
      s->metrics_port_ >= 0 ? absl::StrCat(", metrics on :", s->metrics_port_, "/metrics") : "",
      s->health_server_ != nullptr ? absl::StrCat(", health on :", s->health_port_) : ""));
  return s;
}

void OctetServer::UpdateHealth() {
  if (server_ == nullptr) return;
  const bool serving =
      !gate_->draining() && repository_ != nullptr && repository_->AllModelsReady();
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    grpc::HealthCheckServiceInterface* health =
        server != nullptr ? server->GetHealthCheckService() : nullptr;
    if (health == nullptr) continue;
    health->SetServingStatus("", serving);
    for (const char* name : kHealthServiceNames) health->SetServingStatus(name, serving);
  }
}

bool OctetServer::Drain(absl::Duration grace) {
  if (drained_) return true;
  drained_ = true;
  const absl::Time deadline = absl::Now() + grace;
  gate_->StartDraining();
  LogInfo(absl::StrCat("draining: health NOT_SERVING, refusing new requests, answering the ",
                       gate_->in_flight(), " in flight"));
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    grpc::HealthCheckServiceInterface* health =
        server != nullptr ? server->GetHealthCheckService() : nullptr;
    if (health != nullptr) health->Shutdown();  // every service NOT_SERVING, for good
  }
  const bool idle = gate_->WaitIdle(deadline);
  if (!idle) {
    LogWarning(
        absl::StrCat(gate_->in_flight(), " requests still in flight after the grace period"));
  }
  // Keep refusing until the clients stop trying (see Options::drain_quiet_period).
  const absl::Time idle_at = absl::Now();
  while (true) {
    const absl::Time now = absl::Now();
    const absl::Time quiet_from = std::max(idle_at, gate_->last_drain_refusal());
    if (now - quiet_from >= options_.drain_quiet_period || now >= deadline) break;
    absl::SleepFor(std::min(quiet_from + options_.drain_quiet_period, deadline) - now);
  }
  // Requests admitted are answered; stop the listener. What is left are answers still being
  // written and long-lived streams (health Watch), which would otherwise hold the exit for the
  // whole grace period: give them a moment, then cancel them.
  server_->Shutdown(absl::ToChronoTime(std::max(std::min(deadline, absl::Now() + absl::Seconds(2)),
                                                absl::Now() + absl::Milliseconds(100))));
  if (health_server_ != nullptr) health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  repository_->Stop(absl::ZeroDuration());
  LogInfo("drained");
  return idle;
}

OctetServer::~OctetServer() {
  if (server_ != nullptr) Drain(absl::Seconds(5));
}

}  // namespace octet::server
