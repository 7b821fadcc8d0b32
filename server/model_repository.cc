#include "server/model_repository.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "server/log.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using tensorflow::serving::ModelVersionStatus;

constexpr size_t kMaxModelNameLength = 128;
constexpr char kConfigFileName[] = "config.pbtxt";

std::optional<std::string> ReadSmallFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  if (fs::file_size(path, ec) > (1 << 20) || ec) return std::nullopt;  // a config is tiny
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True if `path` resolves (following symlinks) to somewhere inside `root` (canonical).
bool InsideRoot(const fs::path& path, const std::string& root) {
  std::error_code ec;
  const fs::path resolved = fs::canonical(path, ec);
  if (ec) return false;
  const std::string s = resolved.string();
  return s.size() > root.size() && absl::StartsWith(s, root) && s[root.size()] == '/';
}

// What a version was loaded from: its model file (inode, size, modification and change times)
// and the config text. A serving version whose stamp changes is reloaded (a model.onnx replaced
// in place, a new config); a failed version is retried only once its stamp changes.
std::string Stamp(const fs::path& model_file, const std::string& config_text) {
  struct stat st {};
  if (::stat(model_file.c_str(), &st) != 0) return absl::StrCat("unreadable\n", config_text);
  return absl::StrCat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec,
                      ":", st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec, "\n", config_text);
}

absl::Status ValidateConfig(const config::ModelConfig& c) {
  const config::BatchingConfig& b = c.batching();
  if (b.max_batch_size() < 1) return absl::InvalidArgumentError("batching.max_batch_size < 1");
  if (b.max_queue_delay_micros() < 0) {
    return absl::InvalidArgumentError("batching.max_queue_delay_micros < 0");
  }
  if (b.max_queue_size() < b.max_batch_size()) {
    return absl::InvalidArgumentError("batching.max_queue_size < batching.max_batch_size");
  }
  if (b.max_request_rows() < 0) return absl::InvalidArgumentError("batching.max_request_rows < 0");
  if (c.num_workers() < 0) return absl::InvalidArgumentError("num_workers < 0");
  if (c.threads_per_worker() < 0) return absl::InvalidArgumentError("threads_per_worker < 0");
  if (c.version_policy().has_latest() && c.version_policy().latest().num_versions() < 1) {
    return absl::InvalidArgumentError("version_policy.latest.num_versions < 1");
  }
  return absl::OkStatus();
}

// The versions `policy` selects among `candidates` (ascending).
std::vector<int64_t> SelectVersions(const config::VersionPolicy& policy,
                                    const std::vector<int64_t>& candidates) {
  if (policy.has_all()) return candidates;
  if (policy.has_specific()) {
    std::vector<int64_t> out;
    for (int64_t v : candidates) {
      const auto& wanted = policy.specific().versions();
      if (std::find(wanted.begin(), wanted.end(), v) != wanted.end()) out.push_back(v);
    }
    return out;
  }
  const size_t n = policy.has_latest() ? static_cast<size_t>(policy.latest().num_versions()) : 1;
  return std::vector<int64_t>(
      candidates.end() - static_cast<std::ptrdiff_t>(std::min(n, candidates.size())),
      candidates.end());
}

}  // namespace

absl::Status ValidateModelName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty model name");
  if (name.size() > kMaxModelNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name longer than ", kMaxModelNameLength, " characters"));
  }
  if (name[0] == '.') return absl::InvalidArgumentError("model name starts with '.'");
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError("model name may only use [A-Za-z0-9_.-]");
    }
  }
  return absl::OkStatus();
}

std::optional<int64_t> ParseVersionDirName(absl::string_view name) {
  if (name.empty() || name.size() > 18) return std::nullopt;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(name, &v)) return std::nullopt;
  return v;
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Create(const Options& options) {
  if (!options.loader) return absl::InvalidArgumentError("no model loader");
  if (options.metrics == nullptr) return absl::InvalidArgumentError("no metrics");
  if (options.cpu_budget < 1) return absl::InvalidArgumentError("cpu_budget must be >= 1");
  std::error_code ec;
  const fs::path root = fs::canonical(options.root, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model repository ", options.root, " is not a readable directory"));
  }
  std::unique_ptr<ModelRepository> repo(new ModelRepository(options));
  repo->canonical_root_ = root.string();
  return repo;
}

ModelRepository::~ModelRepository() { Stop(absl::Seconds(30)); }

void ModelRepository::StartPolling(absl::Duration interval) {
  if (poll_thread_.joinable()) return;
  poll_thread_ = std::thread([this, interval] {
    absl::MutexLock lock(&thread_mu_);
    while (!stop_polling_) {
      thread_cv_.WaitWithTimeout(&thread_mu_, interval);
      if (stop_polling_) break;
      thread_mu_.Unlock();
      Poll();
      thread_mu_.Lock();
    }
  });
}

void ModelRepository::Stop(absl::Duration grace) {
  {
    absl::MutexLock lock(&thread_mu_);
    stop_polling_ = true;
    thread_cv_.SignalAll();
  }
  if (poll_thread_.joinable()) poll_thread_.join();
  absl::MutexLock poll_lock(&poll_mu_);
  std::vector<std::shared_ptr<LoadedVersion>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, state] : models_) {
      for (auto& [v, loaded] : state.serving) all.push_back(loaded);
      state.serving.clear();
    }
  }
  for (auto& v : all) Retire(std::move(v));
  ReapRetired(absl::Now() + grace);
}

void ModelRepository::SetStatus(const std::string& name, int64_t version, VersionState state,
                                absl::Status status) {
  absl::MutexLock lock(&mu_);
  auto model = models_.find(name);
  // A model removed from the tree is forgotten, not resurrected by its draining versions.
  if (model == models_.end()) return;
  model->second.status[version] = VersionStatus{version, state, std::move(status)};
}

void ModelRepository::Poll() {
  absl::MutexLock poll_lock(&poll_mu_);
  std::set<std::string> present;
  std::error_code ec;
  for (fs::directory_iterator it(canonical_root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ValidateModelName(name).ok()) continue;  // hidden files, lost+found, ...
    if (!it->is_directory(ec) || !InsideRoot(it->path(), canonical_root_)) continue;
    if (!fs::exists(it->path() / kConfigFileName, ec)) continue;
    present.insert(name);
  }
  if (ec) LogError(absl::StrCat("cannot list ", canonical_root_, ": ", ec.message()));
  std::vector<std::string> gone;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, state] : models_) {
      if (!present.count(name)) gone.push_back(name);
    }
  }
  for (const std::string& name : gone) {
    std::vector<std::shared_ptr<LoadedVersion>> versions;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [v, loaded] : models_[name].serving) versions.push_back(loaded);
      models_.erase(name);
    }
    LogInfo(absl::StrCat("model ", name, " removed from the repository; unloading"));
    for (auto& v : versions) Retire(std::move(v));
  }
  for (const std::string& name : present) PollModel(name);
  ReapRetired(absl::InfinitePast());
  if (options_.after_poll) options_.after_poll();
}

void ModelRepository::PollModel(const std::string& name) {
  const fs::path dir = fs::path(canonical_root_) / name;
  std::optional<std::string> text = ReadSmallFile(dir / kConfigFileName);
  config::ModelConfig config;
  std::string config_text;
  {
    absl::MutexLock lock(&mu_);
    ModelState& state = models_[name];
    config = state.config;
    config_text = state.config_text;
    if (text && (!state.config_valid || *text != state.config_text)) {
      config::ModelConfig parsed;
      absl::Status st;
      if (!google::protobuf::TextFormat::ParseFromString(*text, &parsed)) {
        st = absl::InvalidArgumentError("config.pbtxt does not parse as octet.config.ModelConfig");
      } else {
        st = ValidateConfig(parsed);
      }
      if (st.ok()) {
        state.config = parsed;
        state.config_text = *text;
        state.config_valid = true;
        config = parsed;
        config_text = *text;
      } else if (*text != state.bad_config_text) {
        state.bad_config_text = *text;
        options_.metrics->RecordLoadFailure(name);
        LogError(absl::StrCat("model ", name, ": ", st.message(),
                              state.config_valid ? "; keeping the previous config" : ""));
      }
    }
    if (!state.config_valid) return;
  }

  // Versions on disk, ascending, with their stamps.
  std::map<int64_t, std::string> on_disk;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<int64_t> v = ParseVersionDirName(it->path().filename().string());
    if (!v || !it->is_directory(ec) || !InsideRoot(it->path(), canonical_root_)) continue;
    const fs::path model_file = it->path() / options_.model_file_name;
    if (!fs::is_regular_file(model_file, ec)) continue;
    on_disk[*v] = Stamp(model_file, config_text);
  }

  // Select by policy among versions not known to fail; when a selected version fails to load,
  // select again without it, so the best loadable versions end up serving.
  while (true) {
    std::vector<int64_t> candidates;
    std::map<int64_t, bool> needs_load;
    {
      absl::MutexLock lock(&mu_);
      ModelState& state = models_[name];
      auto failed_now = [&state, &on_disk](int64_t v) {
        auto failed = state.failed_stamp.find(v);
        return failed != state.failed_stamp.end() && failed->second == on_disk[v];
      };
      for (const auto& [v, stamp] : on_disk) {
        // A version that failed with these very files is skipped, unless it is serving (then a
        // reload with a new config failed and the old instance keeps serving).
        if (failed_now(v) && !state.serving.count(v)) continue;
        candidates.push_back(v);
      }
      for (int64_t v : SelectVersions(config.version_policy(), candidates)) {
        auto serving = state.serving_stamp.find(v);
        const bool up_to_date =
            serving != state.serving_stamp.end() && serving->second == on_disk[v];
        needs_load[v] = !up_to_date && !failed_now(v);
      }
    }
    bool failed = false;
    for (const auto& [v, load] : needs_load) {
      if (load && !LoadVersion(name, v, config, on_disk[v])) failed = true;
    }
    if (failed) continue;
    // Unpublish what the policy no longer selects.
    std::vector<std::shared_ptr<LoadedVersion>> unpublished;
    {
      absl::MutexLock lock(&mu_);
      ModelState& state = models_[name];
      for (auto it = state.serving.begin(); it != state.serving.end();) {
        if (needs_load.count(it->first)) {
          ++it;
          continue;
        }
        unpublished.push_back(it->second);
        state.serving_stamp.erase(it->first);
        it = state.serving.erase(it);
      }
    }
    for (auto& v : unpublished) Retire(std::move(v));
    return;
  }
}

bool ModelRepository::LoadVersion(const std::string& name, int64_t version,
                                  const config::ModelConfig& config, const std::string& stamp) {
  const std::string version_dir = absl::StrCat(canonical_root_, "/", name, "/", version);
  SetStatus(name, version, ModelVersionStatus::LOADING);
  LogInfo(absl::StrCat("loading model ", name, " version ", version));
  const absl::Time start = absl::Now();
  std::shared_ptr<VersionMetrics> metrics = options_.metrics->ForVersion(name, version);
  absl::StatusOr<std::unique_ptr<LoadedVersion>> loaded = [&]() -> decltype(loaded) {
    absl::StatusOr<std::shared_ptr<const Servable>> servable = options_.loader(version_dir, config);
    if (!servable.ok()) return servable.status();
    LoadedVersion::Options options;
    options.model = name;
    options.version = version;
    options.config = config;
    options.cpu_budget = options_.cpu_budget;
    options.clock = options_.clock;
    options.cpu_slots = options_.cpu_slots;
    return LoadedVersion::Create(options, std::move(servable).value(), metrics);
  }();
  if (!loaded.ok()) {
    options_.metrics->RecordLoadFailure(name);
    LogError(absl::StrCat("model ", name, " version ", version,
                          " failed to load: ", loaded.status().ToString()));
    {
      absl::MutexLock lock(&mu_);
      ModelState& state = models_[name];
      state.failed_stamp[version] = stamp;
      // A version that is still serving (older config or model file) is AVAILABLE again.
      state.status[version] =
          state.serving.count(version)
              ? VersionStatus{version, ModelVersionStatus::AVAILABLE, {}}
              : VersionStatus{version, ModelVersionStatus::END, loaded.status()};
    }
    return false;
  }
  std::shared_ptr<LoadedVersion> published = std::move(loaded).value();
  if (!published->thread_adjustment().empty()) {
    LogWarning(
        absl::StrCat("model ", name, " version ", version, ": ", published->thread_adjustment()));
  }
  std::shared_ptr<LoadedVersion> replaced;
  {
    absl::MutexLock lock(&mu_);
    ModelState& state = models_[name];
    replaced = std::exchange(state.serving[version], published);
    state.serving_stamp[version] = stamp;
    state.failed_stamp.erase(version);
    state.status[version] = VersionStatus{version, ModelVersionStatus::AVAILABLE, {}};
  }
  metrics->SetLoaded(true, published->servable().weight_bytes(),
                     published->servable().fp32_weight_bytes());
  LogInfo(absl::StrCat("model ", name, " version ", version, " available (",
                       published->pool().num_workers(), " workers x ",
                       published->pool().threads_per_worker(), " threads, loaded in ",
                       absl::FormatDuration(absl::Now() - start), ")"));
  if (replaced != nullptr) {
    // Same version, new config or model file: the old instance drains without touching the new
    // one's status.
    retiring_.push_back(std::move(replaced));
  }
  return true;
}

void ModelRepository::Retire(std::shared_ptr<LoadedVersion> version) {
  SetStatus(version->model(), version->version(), ModelVersionStatus::UNLOADING);
  version->metrics().SetLoaded(false, 0, 0);
  LogInfo(absl::StrCat("model ", version->model(), " version ", version->version(),
                       " unpublished; draining"));
  retiring_.push_back(std::move(version));
}

void ModelRepository::ReapRetired(absl::Time wait_until) {
  while (true) {
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      // Requests hold their version until answered, and nothing new can find a retired one, so
      // use_count() == 1 means it is idle for good.
      if (it->use_count() > 1) {
        ++it;
        continue;
      }
      const std::string name = (*it)->model();
      const int64_t version = (*it)->version();
      bool republished = false;
      {
        absl::MutexLock lock(&mu_);
        auto model = models_.find(name);
        republished = model != models_.end() && model->second.serving.count(version);
        if (model != models_.end() && !republished) {
          model->second.status[version] = VersionStatus{version, ModelVersionStatus::END, {}};
        }
      }
      it->reset();  // drains the batcher (already empty) and frees the workers
      it = retiring_.erase(it);
      if (!republished) LogInfo(absl::StrCat("model ", name, " version ", version, " unloaded"));
    }
    if (retiring_.empty() || absl::Now() >= wait_until) return;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::StatusOr<const ModelRepository::ModelState*> ModelRepository::FindLocked(
    absl::string_view model) const {
  auto it = ValidateModelName(model).ok() ? models_.find(std::string(model)) : models_.end();
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' not found"));
  }
  return &it->second;
}

absl::StatusOr<std::shared_ptr<LoadedVersion>> ModelRepository::Get(
    absl::string_view model, std::optional<int64_t> version) const {
  absl::ReaderMutexLock lock(&mu_);
  absl::StatusOr<const ModelState*> found = FindLocked(model);
  if (!found.ok()) return found.status();
  const ModelState& state = **found;
  if (!version) {
    if (state.serving.empty()) {
      return absl::UnavailableError(
          absl::StrCat("model '", model, "' has no version available yet"));
    }
    return state.serving.rbegin()->second;
  }
  auto serving = state.serving.find(*version);
  if (serving != state.serving.end()) return serving->second;
  auto status = state.status.find(*version);
  if (status != state.status.end() && (status->second.state == ModelVersionStatus::LOADING ||
                                       status->second.state == ModelVersionStatus::START)) {
    return absl::UnavailableError(
        absl::StrCat("model '", model, "' version ", *version, " is still loading"));
  }
  return absl::NotFoundError(
      absl::StrCat("model '", model, "' version ", *version, " is not available"));
}

absl::StatusOr<std::vector<VersionStatus>> ModelRepository::GetStatus(
    absl::string_view model, std::optional<int64_t> version) const {
  absl::ReaderMutexLock lock(&mu_);
  absl::StatusOr<const ModelState*> found = FindLocked(model);
  if (!found.ok()) return found.status();
  std::vector<VersionStatus> out;
  for (const auto& [v, status] : (*found)->status) {
    if (!version || *version == v) out.push_back(status);
  }
  if (version && out.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no version ", *version));
  }
  return out;
}

bool ModelRepository::AllModelsReady() const {
  absl::ReaderMutexLock lock(&mu_);
  if (models_.empty()) return false;
  for (const auto& [name, state] : models_) {
    if (state.serving.empty()) return false;
  }
  return true;
}

std::vector<std::string> ModelRepository::ModelNames() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, state] : models_) names.push_back(name);
  return names;
}

}  // namespace octet::server
