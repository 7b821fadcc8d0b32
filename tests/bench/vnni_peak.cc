// Measures the machine's INT8 multiply-accumulate peak: a loop of independent AVX-512 VNNI
// `vpdpbusd` instructions (64 u8 x s8 MACs each) on one thread per core, pinned.
//
//   build/release/tests/bench/vnni_peak [seconds=2]
// Prints GMAC/s per core and in total. Models' achieved fraction = MACs/image x images/s / peak.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

// 12 independent accumulators hide the instruction latency; each iteration is 12 x 64 MACs.
double RunLoop(double seconds) {
  using Clock = std::chrono::steady_clock;
  const long kInner = 1 << 20;
  long iterations = 0;
  auto start = Clock::now();
  double elapsed = 0;
  do {
    asm volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n"
        "vpxord %%zmm1, %%zmm1, %%zmm1\n"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n"
        "vpxord %%zmm3, %%zmm3, %%zmm3\n"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n"
        "vpxord %%zmm5, %%zmm5, %%zmm5\n"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n"
        "vpxord %%zmm7, %%zmm7, %%zmm7\n"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n"
        "vpxord %%zmm9, %%zmm9, %%zmm9\n"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n"
        "vpxord %%zmm11, %%zmm11, %%zmm11\n"
        "mov %0, %%rcx\n"
        "1:\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm0\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm1\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm2\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm3\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm5\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm6\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm7\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm8\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm9\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm10\n"
        "vpdpbusd %%zmm14, %%zmm15, %%zmm11\n"
        "dec %%rcx\n"
        "jnz 1b\n"
        :
        : "r"(kInner)
        : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "cc");
    iterations += kInner;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(iterations) * 12 * 64 / elapsed;  // MAC/s
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni")) {
    std::printf("this CPU has no AVX-512 VNNI; nothing to measure\n");
    return 1;
  }
  cpu_set_t allowed;
  sched_getaffinity(0, sizeof(allowed), &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  std::vector<double> rates(cpus.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cpus.size(); ++i) {
    threads.emplace_back([&, i] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[i], &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      rates[i] = RunLoop(seconds);
    });
  }
  double total = 0;
  for (size_t i = 0; i < threads.size(); ++i) {
    threads[i].join();
    std::printf("cpu %d: %.1f GMAC/s (int8, vpdpbusd zmm)\n", cpus[i], rates[i] / 1e9);
    total += rates[i];
  }
  std::printf("total: %.1f GMAC/s on %zu cores\n", total / 1e9, cpus.size());
  return 0;
}
