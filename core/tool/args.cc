#include "core/tool/args.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace octet::tool {

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)) {}

void ArgParser::AddFlag(const std::string& name, const std::string& value_name,
                        const std::string& help, bool required, bool repeated) {
  order_.push_back(name);
  flags_[name] = Flag{value_name, help, required, repeated};
}

void ArgParser::AddSwitch(const std::string& name, const std::string& help) {
  order_.push_back(name);
  Flag f;
  f.help = help;
  f.is_switch = true;
  flags_[name] = f;
}

void ArgParser::SetPositional(const std::string& name, const std::string& help, int min, int max) {
  positional_name_ = name;
  positional_help_ = help;
  positional_min_ = min;
  positional_max_ = max;
}

absl::Status ArgParser::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      return absl::OkStatus();
    }
    if (!absl::StartsWith(arg, "--") || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (it->second.is_switch) {
      if (has_value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      value.assign(1, '1');
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", it->second.value_name, ")"));
      }
      value = args[++i];
    }
    std::vector<std::string>& values = values_[name];
    if (!values.empty() && !it->second.repeated) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given more than once"));
    }
    values.push_back(value);
  }
  for (const std::string& name : order_) {
    if (flags_[name].required && !Has(name)) {
      return absl::InvalidArgumentError(absl::StrCat("missing required flag --", name));
    }
  }
  const int n = static_cast<int>(positional_.size());
  if (n < positional_min_ || n > positional_max_) {
    if (positional_max_ == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", positional_[0], "'"));
    }
    return absl::InvalidArgumentError(
        n < positional_min_ ? absl::StrCat("missing ", positional_name_)
                            : absl::StrCat("unexpected argument '", positional_.back(), "'"));
  }
  return absl::OkStatus();
}

std::string ArgParser::Usage() const {
  std::string s = absl::StrCat("Usage: octet ", synopsis_, "\n\n", description_, "\n");
  if (!positional_name_.empty()) {
    absl::StrAppend(&s, "\nArguments:\n  ", positional_name_, "\n      ", positional_help_, "\n");
  }
  absl::StrAppend(&s, "\nFlags:\n");
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    absl::StrAppend(&s, "  --", name, f.is_switch ? "" : " ", f.value_name, f.required ? "  (required)" : "",
                    f.repeated ? "  (repeatable)" : "", "\n      ", f.help, "\n");
  }
  absl::StrAppend(&s, "  --help\n      Print this help and exit.\n");
  return s;
}

bool ArgParser::Has(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && !it->second.empty();
}

std::string ArgParser::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.front();
}

const std::vector<std::string>& ArgParser::GetAll(const std::string& name) const {
  static const std::vector<std::string>* const kEmpty = new std::vector<std::string>;
  auto it = values_.find(name);
  return it == values_.end() ? *kEmpty : it->second;
}

absl::StatusOr<int64_t> ParseIntFlag(absl::string_view flag, absl::string_view text, int64_t min,
                                     int64_t max) {
  int64_t v;
  if (!absl::SimpleAtoi(text, &v) || v < min || v > max) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be an integer in [", min,
                                                   ", ", max, "], got '", text, "'"));
  }
  return v;
}

absl::StatusOr<double> ParseDoubleFlag(absl::string_view flag, absl::string_view text,
                                       double min_exclusive) {
  double v;
  if (!absl::SimpleAtod(text, &v) || !std::isfinite(v) || v <= min_exclusive) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be a number > ", min_exclusive, ", got '", text, "'"));
  }
  return v;
}

}  // namespace octet::tool
