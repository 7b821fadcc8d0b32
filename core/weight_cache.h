// WeightCache: weights prepared for a primitive (reordered into its preferred layout, quantized,
// folded) shared by every plan and execution context of one model, so they are prepared once.
#ifndef OCTET_CORE_WEIGHT_CACHE_H_
#define OCTET_CORE_WEIGHT_CACHE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

class WeightCache {
 public:
  // A prepared weight: the memory object and the tensor that owns its bytes.
  struct Entry {
    dnnl::memory memory;
    Tensor storage;
  };
  using Maker = std::function<absl::StatusOr<Entry>()>;

  // Returns the entry for `key` (which must identify source weights and target layout),
  // creating it with `make` on first use. Thread-safe.
  absl::StatusOr<Entry> GetOrCreate(const std::string& key, const Maker& make);
  // A key for (value name, target descriptor).
  static std::string Key(const std::string& name, const dnnl::memory::desc& md);
  // Bytes held by prepared weights.
  int64_t bytes() const;
  // Frees the entries no plan holds any more (plans keep their entries' storage, see
  // BuildContext::KeepAlive), e.g. the layouts of a plan that was built and then discarded.
  // Returns the bytes freed.
  int64_t DropUnused();

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace octet

#endif  // OCTET_CORE_WEIGHT_CACHE_H_
