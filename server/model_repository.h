// ModelRepository: serves the models of a directory tree and follows its changes.
//
//   <root>/<model>/config.pbtxt        octet.config.ModelConfig in text format
//   <root>/<model>/<version>/model.onnx
//
// Poll() scans the tree: versions selected by the model's version policy are loaded (with the
// injected ServableLoader), warmed up, and then published atomically; versions no longer selected
// stop receiving requests, drain, and are unloaded once no request holds them. A serving version
// whose model file changes (inode, size or times) or whose config.pbtxt changes is reloaded the
// same way: the new instance is published once it loaded, the old one drains; if the new files
// fail to load, the old instance keeps serving. Replace files atomically (write elsewhere, then
// rename into place) so that a scan never reads a half-written model. A load that fails
// (or a config.pbtxt that does not parse) is logged and counted in
// octet_model_load_failures_total, and whatever was serving keeps serving; a failed version is
// retried only when its files change. Model and version directory names are validated so that
// nothing outside <root> is ever read.
#ifndef OCTET_SERVER_MODEL_REPOSITORY_H_
#define OCTET_SERVER_MODEL_REPOSITORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "octet/model_config.pb.h"
#include "server/clock.h"
#include "server/loaded_version.h"
#include "server/metrics.h"
#include "server/servable.h"
#include "tensorflow_serving/apis/get_model_status.pb.h"

namespace octet::server {

// OK if `name` can be a model directory name: 1-128 characters from [A-Za-z0-9_.-], not starting
// with '.', so no '/', '..', hidden or empty names. Requests naming anything else are NOT_FOUND.
absl::Status ValidateModelName(absl::string_view name);

// Parses a version directory name: decimal digits only, fits in int64.
std::optional<int64_t> ParseVersionDirName(absl::string_view name);

using VersionState = tensorflow::serving::ModelVersionStatus::State;

struct VersionStatus {
  int64_t version = 0;
  VersionState state = tensorflow::serving::ModelVersionStatus::UNKNOWN;
  absl::Status status;  // the load error when a load failed
};

class ModelRepository {
 public:
  struct Options {
    // The repository directory. Must exist.
    std::string root;
    // Loads one version directory. Required.
    ServableLoader loader;
    // File that must exist in a version directory for it to count as a version.
    std::string model_file_name = "model.onnx";
    // Where per-version metrics go. Not owned; required.
    Metrics* metrics = nullptr;
    // CPUs this process may use; each version's workers x threads is planned within it. >= 1.
    int cpu_budget = 1;
    // Time source of the batchers; nullptr = RealClock(). Not owned.
    Clock* clock = nullptr;
    // Shared by every version's batches so that all models together stay within cpu_budget
    // threads at run time (cpu_slots.h). nullptr = each version alone fits the budget, the sum
    // may not. Not owned.
    CpuSlots* cpu_slots = nullptr;
    // Called at the end of every Poll() (e.g. to update health). Optional.
    std::function<void()> after_poll = nullptr;
  };

  static absl::StatusOr<std::unique_ptr<ModelRepository>> Create(const Options& options);
  // Stops polling and unloads every version once its requests have finished.
  ~ModelRepository();

  // One scan of the tree (see the file comment). Blocks while versions load; requests keep being
  // served meanwhile. Safe to call from any thread; scans do not overlap.
  void Poll();
  // Calls Poll() every `interval` on a background thread until Stop().
  void StartPolling(absl::Duration interval);
  // Stops polling; unpublishes every version and waits up to `grace` for their requests to finish
  // before unloading them.
  void Stop(absl::Duration grace = absl::Seconds(30));

  // The version serving requests for `model`: `version` if given, else the highest available.
  // NOT_FOUND for unknown models or versions, UNAVAILABLE while the version is loading or when
  // no version of the model could be loaded.
  absl::StatusOr<std::shared_ptr<LoadedVersion>> Get(absl::string_view model,
                                                     std::optional<int64_t> version) const;
  // Every version the repository knows of for `model` (or just `version`), ascending.
  absl::StatusOr<std::vector<VersionStatus>> GetStatus(absl::string_view model,
                                                       std::optional<int64_t> version) const;
  // True when every model in the tree has at least one version available.
  bool AllModelsReady() const;
  std::vector<std::string> ModelNames() const;

 private:
  struct ModelState {
    std::string config_text;  // of the last successfully parsed config
    config::ModelConfig config;
    bool config_valid = false;
    std::string bad_config_text;  // last text that failed to parse (to log it once)
    std::map<int64_t, std::shared_ptr<LoadedVersion>> serving;
    std::map<int64_t, std::string> serving_stamp;  // Stamp() each version was loaded with
    std::map<int64_t, VersionStatus> status;
    std::map<int64_t, std::string> failed_stamp;  // version -> files' stamp when the load failed
  };

  explicit ModelRepository(const Options& options) : options_(options) {}
  // The published state of `model`; NOT_FOUND for an unknown or invalid name.
  absl::StatusOr<const ModelState*> FindLocked(absl::string_view model) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PollModel(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  // Loads `version` of `name`; publishes it on success, records the failure otherwise.
  bool LoadVersion(const std::string& name, int64_t version, const config::ModelConfig& config,
                   const std::string& stamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  void Retire(std::shared_ptr<LoadedVersion> version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  // Unloads retired versions nobody holds anymore (all of them, waiting, when `wait_until` is
  // in the future).
  void ReapRetired(absl::Time wait_until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  void SetStatus(const std::string& name, int64_t version, VersionState state,
                 absl::Status status = absl::OkStatus());

  const Options options_;
  std::string canonical_root_;

  absl::Mutex poll_mu_;  // serializes scans, loads and unloads
  std::vector<std::shared_ptr<LoadedVersion>> retiring_ ABSL_GUARDED_BY(poll_mu_);

  mutable absl::Mutex mu_;  // guards the published state read by requests
  std::map<std::string, ModelState> models_ ABSL_GUARDED_BY(mu_);

  absl::Mutex thread_mu_;
  absl::CondVar thread_cv_;
  bool stop_polling_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread poll_thread_;
};

}  // namespace octet::server

#endif  // OCTET_SERVER_MODEL_REPOSITORY_H_
