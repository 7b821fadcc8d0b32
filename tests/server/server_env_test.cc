// The OpenMP wait policy of a real octet-server process. libgomp reads OMP_WAIT_POLICY when it
// loads, before main() runs, so the server re-executes itself with PASSIVE when the variable is
// unset; an operator's own setting is left alone.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "server_process.h"

namespace octet::server {
namespace {

using testing::ServerProcess;

// The environment of process `pid` as NAME=VALUE strings, from /proc/PID/environ.
std::vector<std::string> EnvironmentOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return absl::StrSplit(ss.str(), '\0', absl::SkipEmpty());
}

// Starts the server with OMP_WAIT_POLICY set to `policy` (unset if empty); returns the value the
// running server has (empty if none), after checking that it serves.
std::string PolicyOfStartedServer(const std::string& policy) {
  if (policy.empty()) {
    unsetenv("OMP_WAIT_POLICY");
  } else {
    setenv("OMP_WAIT_POLICY", policy.c_str(), 1);
  }
  const std::filesystem::path dir = testing::FreshTestDir("env");
  testing::CopyDemoModel("fashion_mlp", dir / "models");
  ServerProcess server;
  ServerProcess::Options options;
  options.model_repository = dir / "models";
  if (!server.Start(options)) return "start failed";
  // The re-executed process kept its arguments: it listens where the log says and serves.
  EXPECT_TRUE(server.WaitServing(server.InsecureChannel())) << server.Log();
  std::string seen;
  for (const std::string& entry : EnvironmentOf(server.pid())) {
    if (entry.rfind("OMP_WAIT_POLICY=", 0) == 0) seen = entry.substr(16);
  }
  return seen;
}

TEST(ServerEnvTest, UnsetWaitPolicyBecomesPassiveBeforeOpenMpLoads) {
  EXPECT_EQ(PolicyOfStartedServer(""), "PASSIVE");
}

TEST(ServerEnvTest, OperatorsWaitPolicyIsKept) {
  EXPECT_EQ(PolicyOfStartedServer("ACTIVE"), "ACTIVE");
}

}  // namespace
}  // namespace octet::server
