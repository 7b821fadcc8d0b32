// The `octet` subcommands. Each takes the arguments after its name and returns the exit code
// (tool_util.h: 0 ok, 1 failure, 2 usage error).
#ifndef OCTET_CORE_TOOL_COMMANDS_H_
#define OCTET_CORE_TOOL_COMMANDS_H_

#include <string>
#include <vector>

namespace octet::tool {

int InspectMain(const std::vector<std::string>& args);
int RunMain(const std::vector<std::string>& args);
int BenchMain(const std::vector<std::string>& args);
int QuantizeMain(const std::vector<std::string>& args);

}  // namespace octet::tool

#endif  // OCTET_CORE_TOOL_COMMANDS_H_
