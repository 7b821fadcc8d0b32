#include "core/openmp_env.h"

#include <unistd.h>

#include <cstdlib>

namespace octet {

void EnsurePassiveOpenMp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the active policy rather than not start at all.
}

}  // namespace octet
