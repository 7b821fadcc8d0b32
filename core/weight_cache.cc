#include "core/weight_cache.h"

namespace octet {

absl::StatusOr<WeightCache::Entry> WeightCache::GetOrCreate(const std::string& key,
                                                            const Maker& make) {
  // Held across make(): two contexts building the same plan must not prepare a weight twice.
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  auto entry = make();
  if (!entry.ok()) return entry.status();
  entries_[key] = *entry;
  return *entry;
}

std::string WeightCache::Key(const std::string& name, const dnnl::memory::desc& md) {
  std::string key = name;
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(&md.data), sizeof(md.data));
  return key;
}

int64_t WeightCache::bytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [key, e] : entries_) total += static_cast<int64_t>(e.storage.byte_size());
  return total;
}

int64_t WeightCache::DropUnused() {
  absl::MutexLock lock(&mu_);
  int64_t freed = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    // Copies are handed out under mu_, so a count of 1 cannot grow while we hold it.
    if (it->second.storage.use_count() == 1) {
      freed += static_cast<int64_t>(it->second.storage.byte_size());
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return freed;
}

}  // namespace octet
