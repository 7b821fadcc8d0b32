#include "deploy/bench/metrics_snapshot.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace octet::bench {
namespace {

bool IsNameChar(char c, bool first) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
}

bool ParseValue(absl::string_view text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return absl::SimpleAtod(text, out);
}

// Parses `{a="x",b="y"}` at the start of `*rest`, consuming it. false on malformed input.
bool ParseLabels(absl::string_view* rest, Labels* labels) {
  absl::string_view s = *rest;
  s.remove_prefix(1);  // '{'
  while (true) {
    s = absl::StripLeadingAsciiWhitespace(s);
    if (!s.empty() && s.front() == '}') {
      s.remove_prefix(1);
      break;
    }
    size_t n = 0;
    while (n < s.size() && IsNameChar(s[n], n == 0)) ++n;
    if (n == 0) return false;
    std::string key(s.substr(0, n));
    s.remove_prefix(n);
    s = absl::StripLeadingAsciiWhitespace(s);
    if (s.size() < 2 || s[0] != '=' || s[1] != '"') return false;
    s.remove_prefix(2);
    std::string value;
    bool closed = false;
    while (!s.empty()) {
      char c = s.front();
      s.remove_prefix(1);
      if (c == '"') {
        closed = true;
        break;
      }
      if (c == '\\') {
        if (s.empty()) return false;
        char e = s.front();
        s.remove_prefix(1);
        value.push_back(e == 'n' ? '\n' : e);
      } else {
        value.push_back(c);
      }
    }
    if (!closed) return false;
    (*labels)[key] = std::move(value);
    s = absl::StripLeadingAsciiWhitespace(s);
    if (!s.empty() && s.front() == ',') s.remove_prefix(1);
  }
  *rest = s;
  return true;
}

bool Matches(const Sample& sample, absl::string_view name, const Labels& match) {
  if (sample.name != name) return false;
  for (const auto& [key, value] : match) {
    auto it = sample.labels.find(key);
    if (it == sample.labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<MetricsSnapshot> MetricsSnapshot::Parse(absl::string_view text) {
  MetricsSnapshot snapshot;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    size_t n = 0;
    while (n < line.size() && IsNameChar(line[n], n == 0)) ++n;
    bool ok = n > 0;
    sample.name = std::string(line.substr(0, n));
    absl::string_view rest = line.substr(n);
    if (ok && !rest.empty() && rest.front() == '{') ok = ParseLabels(&rest, &sample.labels);
    if (ok) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(absl::StripAsciiWhitespace(rest), ' ', absl::SkipEmpty());
      ok = (fields.size() == 1 || fields.size() == 2) && ParseValue(fields[0], &sample.value);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics text line ", line_number, " is not a sample: '", line, "'"));
    }
    snapshot.samples_.push_back(std::move(sample));
  }
  return snapshot;
}

double MetricsSnapshot::Sum(absl::string_view name, const Labels& match) const {
  double sum = 0;
  for (const Sample& s : samples_) {
    if (Matches(s, name, match)) sum += s.value;
  }
  return sum;
}

bool MetricsSnapshot::Has(absl::string_view name, const Labels& match) const {
  for (const Sample& s : samples_) {
    if (Matches(s, name, match)) return true;
  }
  return false;
}

double MetricsSnapshot::Delta(const MetricsSnapshot& before, const MetricsSnapshot& after,
                              absl::string_view name, const Labels& match) {
  return after.Sum(name, match) - before.Sum(name, match);
}

std::map<std::string, double> MetricsSnapshot::DeltaBy(const MetricsSnapshot& before,
                                                       const MetricsSnapshot& after,
                                                       absl::string_view name,
                                                       const std::string& label,
                                                       const Labels& match) {
  std::map<std::string, double> out;
  for (const Sample& s : after.samples_) {
    auto it = s.labels.find(label);
    if (it != s.labels.end() && Matches(s, name, match)) out[it->second] += s.value;
  }
  for (const Sample& s : before.samples_) {
    auto it = s.labels.find(label);
    if (it != s.labels.end() && Matches(s, name, match)) out[it->second] -= s.value;
  }
  return out;
}

}  // namespace octet::bench
