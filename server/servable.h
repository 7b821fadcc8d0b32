// Servable: what the server needs from a loaded model version. In production it wraps an
// octet::Model (octet_servable.h); tests inject fakes, so that batching, hot reload and failing
// loads are tested without the engine.
#ifndef OCTET_SERVER_SERVABLE_H_
#define OCTET_SERVER_SERVABLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/tensor.h"
#include "octet/model_config.pb.h"

namespace octet::server {

// Runs batches for one worker; used by one thread at a time.
class Runner {
 public:
  virtual ~Runner() = default;
  // `inputs` in the order of Servable::inputs(); returns outputs in the order of outputs().
  virtual absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs) = 0;
};

struct RunnerOptions {
  // Intra-op threads of this runner. >= 1.
  int num_threads = 1;
  // Distinct input shapes (i.e. batch sizes) whose execution plans are kept. >= 1.
  int max_cached_plans = 16;
};

class Servable {
 public:
  virtual ~Servable() = default;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  // Weight bytes as held in memory, and their FP32 equivalent.
  virtual int64_t weight_bytes() const = 0;
  virtual int64_t fp32_weight_bytes() const = 0;
  virtual absl::StatusOr<std::unique_ptr<Runner>> CreateRunner(
      const RunnerOptions& options) const = 0;
};

// Loads one model version from its directory (<repo>/<model>/<version>/) with the model's config.
using ServableLoader = std::function<absl::StatusOr<std::shared_ptr<const Servable>>(
    const std::string& version_dir, const config::ModelConfig& config)>;

}  // namespace octet::server

#endif  // OCTET_SERVER_SERVABLE_H_
