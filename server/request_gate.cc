#include "server/request_gate.h"

#include "absl/time/clock.h"

namespace octet::server {

absl::Status RequestGate::Enter(const grpc::CallbackServerContext* context) {
  if (require_client_certificate_) {
    std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
    if (auth == nullptr || !auth->IsPeerAuthenticated()) {
      return absl::UnauthenticatedError("a verified client certificate is required");
    }
  }
  absl::MutexLock lock(&mu_);
  if (draining_) {
    last_drain_refusal_ = absl::Now();
    return absl::UnavailableError("the server is shutting down");
  }
  ++in_flight_;
  return absl::OkStatus();
}

void RequestGate::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void RequestGate::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool RequestGate::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool RequestGate::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

absl::Time RequestGate::last_drain_refusal() const {
  absl::MutexLock lock(&mu_);
  return last_drain_refusal_;
}

int64_t RequestGate::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

}  // namespace octet::server
