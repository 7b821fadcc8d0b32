// How many CPUs this process may really use, and how to split them into workers x threads.
// nproc is not enough: a Kubernetes CPU limit is a CFS quota (cgroup v2 cpu.max, v1
// cpu.cfs_quota_us / cpu.cfs_period_us) that throttles a process running more threads than the
// quota allows, while every core of the node still shows up in nproc.
#ifndef OCTET_SERVER_CPU_BUDGET_H_
#define OCTET_SERVER_CPU_BUDGET_H_

#include <string>

namespace octet::server {

// Where the budget is read from; tests point these at fake files.
struct CpuBudgetSources {
  // The process's cgroup membership ("hierarchy:controllers:path" lines).
  std::string proc_self_cgroup = "/proc/self/cgroup";
  // Where cgroup filesystems are mounted (v2: unified; v1: one directory per controller).
  std::string cgroup_root = "/sys/fs/cgroup";
  // CPUs in the scheduler affinity mask (cpuset); -1 = ask sched_getaffinity().
  int affinity_cpus = -1;
};

struct CpuBudget {
  // CPUs to plan threads for: min(affinity, floor(quota)), at least 1. Floor, because running
  // ceil(1.5) = 2 busy threads on a 1.5-CPU quota gets the process throttled every period.
  int cpus = 1;
  int affinity_cpus = 1;
  // quota / period from the tightest cgroup limit on the path to the root; 0 = no quota.
  double quota_cpus = 0;
  // Human-readable account of where the numbers came from, for the startup log.
  std::string description;
};

CpuBudget ComputeCpuBudget(const CpuBudgetSources& sources = {});

struct ThreadPlan {
  int workers = 1;
  int threads_per_worker = 1;
  // Non-empty when the request was reduced to fit the budget (for a warning).
  std::string adjustment;
};

// Splits `cpus` into workers x threads so that workers * threads <= cpus. `requested_workers` and
// `requested_threads` of 0 mean "automatic": 1 worker, and all CPUs of the budget divided among
// the workers. Requests beyond the budget are reduced: workers to at most `cpus`, then threads
// per worker to at most cpus / workers.
ThreadPlan PlanThreads(int requested_workers, int requested_threads, int cpus);

}  // namespace octet::server

#endif  // OCTET_SERVER_CPU_BUDGET_H_
