#include "core/graph.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace octet {

int64_t Node::GetInt(const std::string& key, int64_t def) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? def : it->second.i;
}

float Node::GetFloat(const std::string& key, float def) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? def : it->second.f;
}

std::string Node::GetString(const std::string& key, const std::string& def) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? def : it->second.s;
}

std::vector<int64_t> Node::GetInts(const std::string& key, std::vector<int64_t> def) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? def : it->second.ints;
}

std::vector<float> Node::GetFloats(const std::string& key, std::vector<float> def) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? def : it->second.floats;
}

const Tensor* Node::GetTensor(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? nullptr : &it->second.t;
}

std::string Node::Label() const {
  return absl::StrCat(op_type, " node '", name, "'");
}

const Tensor* Graph::FindInitializer(const std::string& name) const {
  auto it = initializers.find(name);
  return it == initializers.end() ? nullptr : &it->second;
}

int Graph::UseCount(const std::string& value) const {
  int n = 0;
  for (const Node& node : nodes) {
    for (const std::string& in : node.inputs) n += (in == value);
  }
  for (const ValueInfo& out : outputs) n += (out.name == value);
  return n;
}

absl::Status Graph::TopologicalSort() {
  std::set<std::string> available;
  for (const auto& [name, t] : initializers) available.insert(name);
  for (const ValueInfo& in : inputs) available.insert(in.name);
  std::vector<Node> sorted;
  std::vector<bool> done(nodes.size(), false);
  sorted.reserve(nodes.size());
  bool progress = true;
  while (sorted.size() < nodes.size() && progress) {
    progress = false;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (done[i]) continue;
      bool ready = true;
      for (const std::string& in : nodes[i].inputs) {
        if (!in.empty() && !available.count(in)) {
          ready = false;
          break;
        }
      }
      if (!ready) continue;
      for (const std::string& out : nodes[i].outputs) {
        if (!out.empty()) available.insert(out);
      }
      sorted.push_back(std::move(nodes[i]));
      done[i] = true;
      progress = true;
    }
  }
  if (sorted.size() < nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (done[i]) continue;
      for (const std::string& in : nodes[i].inputs) {
        if (!in.empty() && !available.count(in)) {
          return absl::InvalidArgumentError(
              absl::StrCat(nodes[i].Label(), ": input '", in,
                           "' is produced by no node, initializer or graph input (or by a cycle)"));
        }
      }
    }
  }
  nodes = std::move(sorted);
  for (const ValueInfo& out : outputs) {
    if (!available.count(out.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", out.name, "' is produced by no node"));
    }
  }
  return absl::OkStatus();
}

void Graph::PruneUnusedInitializers() {
  std::set<std::string> used;
  for (const Node& node : nodes) used.insert(node.inputs.begin(), node.inputs.end());
  for (const ValueInfo& out : outputs) used.insert(out.name);
  for (auto it = initializers.begin(); it != initializers.end();) {
    it = used.count(it->first) ? std::next(it) : initializers.erase(it);
  }
}

}  // namespace octet
