// Cost of one OpenMP parallel region on this machine: the per-primitive fixed cost oneDNN pays
// (every primitive execution is one `omp parallel`). Runs N regions of W microseconds of work per
// thread, separated by 2 us of serial work (the gap between two primitives), and prints the time
// per region; the excess over W is the team wake-up and barrier cost. Compare wait policies:
//
//   for p in PASSIVE ACTIVE; do OMP_WAIT_POLICY=$p build/release/tests/bench/omp_region_cost 2 20;
//   done OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000 build/release/tests/bench/omp_region_cost 2
//   20
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void BusyWait(double micros) {
  const auto start = Clock::now();
  while (std::chrono::duration<double, std::micro>(Clock::now() - start).count() < micros) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double work_us = argc > 2 ? std::atof(argv[2]) : 20;
  const int regions = argc > 3 ? std::atoi(argv[3]) : 20000;
  if (threads < 1 || work_us < 0 || regions < 1) {
    std::fprintf(stderr, "usage: omp_region_cost [THREADS=2] [WORK_US=20] [REGIONS=20000]\n");
    return 2;
  }
  omp_set_num_threads(threads);
  std::vector<double> times;
  times.reserve(regions);
  for (int i = 0; i < regions; ++i) {
    const auto t0 = Clock::now();
#pragma omp parallel
    BusyWait(work_us);
    BusyWait(2);
    times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::printf(
      "threads %d, work %.1f us + 2 us serial, OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s: "
      "min %.1f  p10 %.1f  p50 %.1f  p90 %.1f us per region\n",
      threads, work_us, policy ? policy : "(unset)", spin ? spin : "(unset)", times[0],
      times[regions / 10], times[regions / 2], times[regions * 9 / 10]);
  return 0;
}
