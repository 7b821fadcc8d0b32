// OpenMP environment for processes that run the engine.
#ifndef OCTET_CORE_OPENMP_ENV_H_
#define OCTET_CORE_OPENMP_ENV_H_

namespace octet {

// Debian's oneDNN runs on libgomp, which reads OMP_WAIT_POLICY once at library load. With the
// default (active) policy, idle teams spin and two callers on 2 cores slow each other down by an
// order of magnitude. If the variable is unset, this sets OMP_WAIT_POLICY=PASSIVE and re-executes
// the current binary with the same arguments so the policy takes effect; when it is already set
// (by the operator, the container or a previous re-exec) it returns without doing anything.
// Call it first thing in main().
void EnsurePassiveOpenMp(char** argv);

}  // namespace octet

#endif  // OCTET_CORE_OPENMP_ENV_H_
