#include "server/cpu_budget.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cpu_slots.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fake /proc/self/cgroup and cgroup mount in a temporary directory.
class CpuBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("cpu_budget_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "cgroup");
    sources_.proc_self_cgroup = (root_ / "proc_self_cgroup").string();
    sources_.cgroup_root = (root_ / "cgroup").string();
    sources_.affinity_cpus = 8;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& relative, const std::string& text) {
    fs::path p = root_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  fs::path root_;
  CpuBudgetSources sources_;
};

TEST_F(CpuBudgetTest, NoCgroupFileMeansAffinityOnly) {
  CpuBudget b = ComputeCpuBudget(sources_);
  EXPECT_EQ(b.cpus, 8);
  EXPECT_EQ(b.quota_cpus, 0);
  EXPECT_THAT(b.description, HasSubstr("no cgroup CPU quota"));
}

TEST_F(CpuBudgetTest, V2QuotaOnTheProcessCgroup) {
  Write("proc_self_cgroup", "0::/kubepods/pod1/ctr\n");
  Write("cgroup/kubepods/pod1/ctr/cpu.max", "200000 100000\n");
  CpuBudget b = ComputeCpuBudget(sources_);
  EXPECT_DOUBLE_EQ(b.quota_cpus, 2.0);
  EXPECT_EQ(b.cpus, 2);
}

TEST_F(CpuBudgetTest, V2UnlimitedIsIgnoredAndParentLimitApplies) {
  Write("proc_self_cgroup", "0::/kubepods/pod1/ctr\n");
  Write("cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
  Write("cgroup/kubepods/pod1/cpu.max", "300000 100000\n");
  Write("cgroup/kubepods/cpu.max", "max 100000\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 3);
}

TEST_F(CpuBudgetTest, V2InsideCgroupNamespaceReadsTheMountRoot) {
  // In a container the membership path is "/" and the mount is the container's own cgroup.
  Write("proc_self_cgroup", "0::/\n");
  Write("cgroup/cpu.max", "150000 100000\n");
  CpuBudget b = ComputeCpuBudget(sources_);
  EXPECT_DOUBLE_EQ(b.quota_cpus, 1.5);
  EXPECT_EQ(b.cpus, 1);  // floor: 2 busy threads on 1.5 CPUs would be throttled
}

TEST_F(CpuBudgetTest, FractionalQuotaBelowOneStillGivesOneCpu) {
  Write("proc_self_cgroup", "0::/\n");
  Write("cgroup/cpu.max", "50000 100000\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 1);
}

TEST_F(CpuBudgetTest, AffinityTighterThanQuota) {
  sources_.affinity_cpus = 2;
  Write("proc_self_cgroup", "0::/\n");
  Write("cgroup/cpu.max", "400000 100000\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 2);
}

TEST_F(CpuBudgetTest, V1CfsQuota) {
  Write("proc_self_cgroup",
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
  Write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  Write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 3);
}

TEST_F(CpuBudgetTest, V1UnlimitedQuota) {
  Write("proc_self_cgroup", "4:cpu,cpuacct:/\n");
  Write("cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  Write("cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 8);
}

TEST_F(CpuBudgetTest, GarbageFilesAreIgnored) {
  Write("proc_self_cgroup", "0::/x\nnonsense\n");
  Write("cgroup/x/cpu.max", "lots of cpu\n");
  EXPECT_EQ(ComputeCpuBudget(sources_).cpus, 8);
}

TEST_F(CpuBudgetTest, RealMachineGivesAtLeastOne) {
  CpuBudget b = ComputeCpuBudget();
  EXPECT_GE(b.cpus, 1);
  EXPECT_LE(b.cpus, b.affinity_cpus);
}

TEST(PlanThreadsTest, AutomaticUsesOneWorkerWithAllCpus) {
  ThreadPlan p = PlanThreads(0, 0, 4);
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.threads_per_worker, 4);
  EXPECT_TRUE(p.adjustment.empty());
}

TEST(PlanThreadsTest, AutomaticThreadsDivideTheBudget) {
  ThreadPlan p = PlanThreads(2, 0, 5);
  EXPECT_EQ(p.workers, 2);
  EXPECT_EQ(p.threads_per_worker, 2);
}

TEST(PlanThreadsTest, NeverOversubscribes) {
  for (int cpus = 1; cpus <= 8; ++cpus) {
    for (int w = 0; w <= 10; ++w) {
      for (int t = 0; t <= 10; ++t) {
        ThreadPlan p = PlanThreads(w, t, cpus);
        EXPECT_GE(p.workers, 1);
        EXPECT_GE(p.threads_per_worker, 1);
        EXPECT_LE(p.workers * p.threads_per_worker, cpus) << w << "x" << t << " on " << cpus;
      }
    }
  }
}

TEST(PlanThreadsTest, ReportsReductions) {
  ThreadPlan p = PlanThreads(4, 2, 2);
  EXPECT_EQ(p.workers, 2);
  EXPECT_EQ(p.threads_per_worker, 1);
  EXPECT_THAT(p.adjustment, HasSubstr("workers reduced from 4 to 2"));
  EXPECT_THAT(p.adjustment, HasSubstr("threads per worker reduced from 2 to 1"));
}

// Spins (yielding) until `done()`; the tests' threads block on the slots, so this terminates.
template <typename F>
void WaitUntil(F done) {
  while (!done()) std::this_thread::yield();
}

TEST(CpuSlotsTest, NeverHandsOutMoreThanTheBudget) {
  CpuSlots slots(2);
  slots.Acquire(2);
  EXPECT_EQ(slots.in_use(), 2);
  std::atomic<bool> got{false};
  std::thread other([&] {
    slots.Acquire(1);
    got = true;
    slots.Release(1);
  });
  WaitUntil([&] { return slots.waiting() == 1; });
  EXPECT_FALSE(got.load());  // blocked: 2 + 1 > 2
  slots.Release(2);
  other.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(slots.in_use(), 0);
  // Requests beyond the budget are clamped to it rather than blocking forever.
  slots.Acquire(5);
  EXPECT_EQ(slots.in_use(), 2);
  slots.Release(5);
  EXPECT_EQ(slots.in_use(), 0);
}

TEST(CpuSlotsTest, ServesWaitersInArrivalOrder) {
  CpuSlots slots(2);
  slots.Acquire(1);
  // A wide waiter first, then a narrow one that would fit right now: it must not overtake.
  std::vector<int> order;
  absl::Mutex order_mu;
  std::thread wide([&] {
    slots.Acquire(2);
    absl::MutexLock lock(&order_mu);
    order.push_back(2);
  });
  WaitUntil([&] { return slots.waiting() == 1; });
  std::thread narrow([&] {
    slots.Acquire(1);
    absl::MutexLock lock(&order_mu);
    order.push_back(1);
  });
  WaitUntil([&] { return slots.waiting() == 2; });
  EXPECT_EQ(slots.in_use(), 1);  // the narrow one waits behind the wide one
  slots.Release(1);
  wide.join();
  {
    absl::MutexLock lock(&order_mu);
    ASSERT_EQ(order.size(), 1u);
    EXPECT_EQ(order[0], 2);
  }
  EXPECT_EQ(slots.waiting(), 1);
  slots.Release(2);
  narrow.join();
  absl::MutexLock lock(&order_mu);
  EXPECT_EQ(order.size(), 2u);
  slots.Release(1);
}

TEST(CpuSlotsTest, LeaseReturnsItsSlots) {
  CpuSlots slots(4);
  {
    CpuSlots::Lease lease(&slots, 3);
    EXPECT_EQ(slots.in_use(), 3);
  }
  EXPECT_EQ(slots.in_use(), 0);
  CpuSlots::Lease none(nullptr, 3);  // not shared: no effect
  EXPECT_EQ(slots.in_use(), 0);
}

}  // namespace
}  // namespace octet::server
