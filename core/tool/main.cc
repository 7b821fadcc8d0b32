// `octet`: the engine's command-line tool. Dispatches to a subcommand; nothing here may crash on
// bad input, so every failure ends as a one-line message and a non-zero exit code.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "core/openmp_env.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace octet::tool {
namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*main)(const std::vector<std::string>& args);
};

// New subcommands (e.g. `quantize`) are added here.
constexpr Command kCommands[] = {
    {"inspect", "show a model's inputs, outputs, ops, weights and optimized plan", InspectMain},
    {"run", "run a model on .npy inputs and write its outputs as .npy files", RunMain},
    {"bench", "measure engine-only throughput and latency percentiles", BenchMain},
    {"quantize", "calibrate an FP32 model and write an INT8 QDQ model", QuantizeMain},
};

void PrintUsage(std::ostream& out) {
  out << "Usage: octet COMMAND [FLAGS]\n\nOctet's model tool. Commands:\n";
  for (const Command& c : kCommands) {
    out << "  " << c.name << std::string(10 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  out << "\n'octet COMMAND --help' describes a command's flags.\n"
      << "Exit codes: 0 success, 1 failure (model, input or run error), 2 bad command line.\n";
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(std::cout);
    return kExitOk;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.main(args);
    } catch (const std::exception& e) {
      std::cerr << "octet " << name << ": error: " << e.what() << std::endl;
      return kExitFailure;
    }
  }
  std::cerr << "octet: error: unknown command '" << name << "' (see 'octet --help')" << std::endl;
  return kExitUsage;
}

}  // namespace
}  // namespace octet::tool

int main(int argc, char** argv) {
  octet::EnsurePassiveOpenMp(argv);
  return octet::tool::Main(argc, argv);
}
