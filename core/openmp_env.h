// OpenMP environment for processes that run the engine.
#ifndef OCTET_CORE_OPENMP_ENV_H_
#define OCTET_CORE_OPENMP_ENV_H_

namespace octet {

// Debian's oneDNN runs on libgomp, which reads OMP_WAIT_POLICY once at library load. With the
// default (active) policy, idle teams spin and two callers on 2 cores slow each other down by an
// order of magnitude. If the variable is unset, this sets OMP_WAIT_POLICY=PASSIVE and re-executes
// the current binary with the same arguments so the policy takes effect; when it is already set
// (by the operator, the container or a previous re-exec) it returns without doing anything.
// Call it first thing in main(). GOMP_SPINCOUNT is left to the operator: on cores the process
// owns, GOMP_SPINCOUNT=3000 (~60-90 us of spinning before sleeping) removes the ~17 us wake-up
// per oneDNN primitive and speeds up batch-1 mobilenet_v2 by ~30%, but any spinning halves the
// throughput of two processes sharing the cores (tests/bench/RESULTS.md), so it is not a default.
void EnsurePassiveOpenMp(char** argv);

}  // namespace octet

#endif  // OCTET_CORE_OPENMP_ENV_H_
