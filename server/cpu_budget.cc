#include "server/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace octet::server {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Directories from `leaf` up to (and including) `root`: /root/a/b, /root/a, /root.
std::vector<std::string> PathToRoot(const std::string& root, absl::string_view cgroup_path) {
  std::vector<std::string> dirs;
  std::string path(absl::StripSuffix(cgroup_path, "/"));
  while (true) {
    dirs.push_back(root + path);
    if (path.empty() || path == "/") break;
    const size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "" : path.substr(0, slash);
  }
  if (dirs.back() != root) dirs.push_back(root);
  return dirs;
}

// cgroup v2 cpu.max: "max 100000" (no limit) or "<quota> <period>" in microseconds.
std::optional<double> ReadCpuMax(const std::string& dir) {
  std::optional<std::string> text = ReadFile(dir + "/cpu.max");
  if (!text) return std::nullopt;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  double quota = 0, period = 0;
  if (parts.size() != 2 || parts[0] == "max" || !absl::SimpleAtod(parts[0], &quota) ||
      !absl::SimpleAtod(parts[1], &period) || quota <= 0 || period <= 0) {
    return std::nullopt;
  }
  return quota / period;
}

// cgroup v1: cpu.cfs_quota_us (-1 = no limit) and cpu.cfs_period_us.
std::optional<double> ReadCfsQuota(const std::string& dir) {
  std::optional<std::string> quota_text = ReadFile(dir + "/cpu.cfs_quota_us");
  std::optional<std::string> period_text = ReadFile(dir + "/cpu.cfs_period_us");
  if (!quota_text || !period_text) return std::nullopt;
  double quota = 0, period = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(*quota_text), &quota) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(*period_text), &period) || quota <= 0 ||
      period <= 0) {
    return std::nullopt;
  }
  return quota / period;
}

struct Quota {
  double cpus = 0;  // 0 = none found
  std::string where;
};

// Tightest quota among `dirs`, read with `reader`.
template <typename Reader>
void TightestQuota(const std::vector<std::string>& dirs, Reader reader, Quota* best) {
  for (const std::string& dir : dirs) {
    std::optional<double> q = reader(dir);
    if (q && (best->cpus == 0 || *q < best->cpus)) {
      best->cpus = *q;
      best->where = dir;
    }
  }
}

Quota FindQuota(const CpuBudgetSources& sources) {
  Quota quota;
  std::optional<std::string> membership = ReadFile(sources.proc_self_cgroup);
  if (!membership) return quota;
  for (absl::string_view line : absl::StrSplit(*membership, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    const absl::string_view controllers = fields[1];
    const absl::string_view path = fields[2];
    if (fields[0] == "0" && controllers.empty()) {
      // v2. Inside a container's cgroup namespace the path may not exist under the mount
      // (the mount is already the container's own cgroup), so the root is always checked too.
      TightestQuota(PathToRoot(sources.cgroup_root, path), ReadCpuMax, &quota);
      continue;
    }
    std::vector<absl::string_view> names = absl::StrSplit(controllers, ',');
    if (std::find(names.begin(), names.end(), "cpu") == names.end()) continue;
    // v1: the cpu controller is mounted under its own name ("cpu,cpuacct", or "cpu" as a link).
    for (const std::string& mount : {std::string(controllers), std::string("cpu")}) {
      const std::string mount_root = absl::StrCat(sources.cgroup_root, "/", mount);
      TightestQuota(PathToRoot(mount_root, path), ReadCfsQuota, &quota);
    }
  }
  return quota;
}

int AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

CpuBudget ComputeCpuBudget(const CpuBudgetSources& sources) {
  CpuBudget budget;
  budget.affinity_cpus = sources.affinity_cpus > 0 ? sources.affinity_cpus : AffinityCpus();
  const Quota quota = FindQuota(sources);
  budget.quota_cpus = quota.cpus;
  budget.cpus = budget.affinity_cpus;
  budget.description = absl::StrCat(budget.affinity_cpus, " CPUs in the affinity mask");
  if (quota.cpus > 0) {
    const int quota_floor = std::max(1, static_cast<int>(std::floor(quota.cpus + 1e-9)));
    budget.cpus = std::min(budget.cpus, quota_floor);
    absl::StrAppend(&budget.description, ", cgroup quota ", quota.cpus, " CPUs (", quota.where,
                    ")");
  } else {
    absl::StrAppend(&budget.description, ", no cgroup CPU quota");
  }
  absl::StrAppend(&budget.description, " -> budget ", budget.cpus, " CPUs");
  return budget;
}

ThreadPlan PlanThreads(int requested_workers, int requested_threads, int cpus) {
  cpus = std::max(1, cpus);
  ThreadPlan plan;
  plan.workers = requested_workers > 0 ? requested_workers : 1;
  if (plan.workers > cpus) {
    absl::StrAppend(&plan.adjustment, "workers reduced from ", plan.workers, " to ", cpus, "; ");
    plan.workers = cpus;
  }
  const int max_threads = cpus / plan.workers;
  plan.threads_per_worker = requested_threads > 0 ? requested_threads : max_threads;
  if (plan.threads_per_worker > max_threads) {
    absl::StrAppend(&plan.adjustment, "threads per worker reduced from ", plan.threads_per_worker,
                    " to ", max_threads, "; ");
    plan.threads_per_worker = max_threads;
  }
  if (!plan.adjustment.empty()) {
    absl::StrAppend(&plan.adjustment, "the CPU budget is ", cpus, " CPUs");
  }
  return plan;
}

}  // namespace octet::server
