// RequestGate: admission for the RPC handlers. Counts requests in flight so that SIGTERM can
// refuse new work and wait for accepted work to finish, and enforces client certificates under
// mTLS (on the services, not on the listener, so that health probes need no certificate).
#ifndef OCTET_SERVER_REQUEST_GATE_H_
#define OCTET_SERVER_REQUEST_GATE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"

namespace octet::server {

class RequestGate {
 public:
  explicit RequestGate(bool require_client_certificate = false)
      : require_client_certificate_(require_client_certificate) {}

  // Admits a request: UNAVAILABLE while draining, UNAUTHENTICATED without a verified client
  // certificate when one is required. On OK the caller must call Exit() once when answered.
  absl::Status Enter(const grpc::CallbackServerContext* context);
  void Exit();

  // Refuses every later Enter().
  void StartDraining();
  bool draining() const;
  // When Enter() last refused a request for draining (InfinitePast if never).
  absl::Time last_drain_refusal() const;
  // Waits until no admitted request is left or `deadline`; true if none is left.
  bool WaitIdle(absl::Time deadline);
  int64_t in_flight() const;

 private:
  const bool require_client_certificate_;
  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_drain_refusal_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace octet::server

#endif  // OCTET_SERVER_REQUEST_GATE_H_
