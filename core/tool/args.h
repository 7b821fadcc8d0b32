// A small command-line parser for the `octet` subcommands: `--name value` or `--name=value`,
// repeatable flags, positional arguments and `--help`. Hand-written so every subcommand controls
// its own usage text and errors stay one line.
#ifndef OCTET_CORE_TOOL_ARGS_H_
#define OCTET_CORE_TOOL_ARGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet::tool {

class ArgParser {
 public:
  // `command` is the subcommand name ("run"); `synopsis` the line after "Usage: octet ".
  ArgParser(std::string command, std::string synopsis, std::string description);

  // Declares `--name VALUE`. A repeated flag collects every occurrence; others may appear once.
  void AddFlag(const std::string& name, const std::string& value_name, const std::string& help,
               bool required = false, bool repeated = false);
  // Declares `--name` without a value (an on/off switch); Has(name) tells whether it was given.
  void AddSwitch(const std::string& name, const std::string& help);
  // Declares the positional arguments, between `min` and `max` of them.
  void SetPositional(const std::string& name, const std::string& help, int min, int max);

  // Parses the arguments that follow the subcommand name. After `--help` it stops and
  // help_requested() is true. Errors are INVALID_ARGUMENT with a one-line message.
  absl::Status Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_; }
  std::string Usage() const;

  bool Has(const std::string& name) const;
  // The value of a single-valued flag, or `fallback` when absent.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  const std::vector<std::string>& GetAll(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  struct Flag {
    std::string value_name, help;
    bool required = false, repeated = false, is_switch = false;
  };
  std::string command_, synopsis_, description_;
  std::vector<std::string> order_;  // flag names in declaration order, for Usage()
  std::map<std::string, Flag> flags_;
  std::string positional_name_, positional_help_;
  int positional_min_ = 0, positional_max_ = 0;
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// Strict number parsing for flag values; errors name the flag.
absl::StatusOr<int64_t> ParseIntFlag(absl::string_view flag, absl::string_view text, int64_t min,
                                     int64_t max);
absl::StatusOr<double> ParseDoubleFlag(absl::string_view flag, absl::string_view text,
                                       double min_exclusive);

}  // namespace octet::tool

#endif  // OCTET_CORE_TOOL_ARGS_H_
