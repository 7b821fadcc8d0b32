#include "core/passes_gelu.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace octet {
namespace {

class Matcher {
 public:
  explicit Matcher(const Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const std::string& in : g.nodes[i].inputs) consumers_[in].push_back(i);
      for (const std::string& out : g.nodes[i].outputs) producer_[out] = i;
    }
    for (const ValueInfo& o : g.outputs) outputs_.insert(o.name);
  }

  // The node that alone consumes `value` (which is not a graph output), or -1.
  int SoleConsumer(const std::string& value) const {
    auto it = consumers_.find(value);
    if (it == consumers_.end() || it->second.size() != 1 || outputs_.count(value)) return -1;
    return static_cast<int>(it->second[0]);
  }
  int Producer(const std::string& value) const {
    auto it = producer_.find(value);
    return it == producer_.end() ? -1 : static_cast<int>(it->second);
  }
  // True if `value` is a one-element f32 initializer within 1e-5 (relative) of `want`.
  bool IsScalar(const std::string& value, double want) const {
    const Tensor* t = g_.FindInitializer(value);
    if (t == nullptr || t->dtype() != DType::kF32 || t->num_elements() != 1) return false;
    return std::fabs(t->GetAsDouble(0) - want) <= 1e-5 * std::fabs(want);
  }
  // For a default-domain binary node `op` with one scalar operand equal to `want`: the other
  // operand, or "" if it does not match. `commutes` allows the scalar on either side.
  std::string OtherOperand(int node, const std::string& op, double want, bool commutes) const {
    if (node < 0) return "";
    const Node& n = g_.nodes[node];
    if (n.op_type != op || !n.domain.empty() || n.inputs.size() != 2 || n.outputs.size() != 1 ||
        !n.post_ops.empty()) {
      return "";
    }
    if (IsScalar(n.inputs[1], want)) return n.inputs[0];
    if (commutes && IsScalar(n.inputs[0], want)) return n.inputs[1];
    return "";
  }
  const Node& node(int i) const { return g_.nodes[i]; }
  bool IsMul(int i) const {
    return i >= 0 && node(i).op_type == "Mul" && node(i).domain.empty() &&
           node(i).inputs.size() == 2 && node(i).post_ops.empty();
  }
  // The input of binary node i that is not `one`, or "" if `one` is not an input.
  std::string Other(int i, const std::string& one) const {
    const Node& n = node(i);
    if (n.inputs[0] == one) return n.inputs[1];
    if (n.inputs[1] == one) return n.inputs[0];
    return "";
  }

 private:
  const Graph& g_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::map<std::string, size_t> producer_;
  std::set<std::string> outputs_;
};

}  // namespace

absl::Status FuseGelu(Graph& g) {
  const double kSqrt2 = std::sqrt(2.0);
  bool changed = true;
  while (changed) {
    changed = false;
    Matcher m(g);
    for (size_t e = 0; e < g.nodes.size() && !changed; ++e) {
      const Node& erf = g.nodes[e];
      if (erf.op_type != "Erf" || !erf.domain.empty() || erf.inputs.size() != 1) continue;
      // x / sqrt(2) or x * (1 / sqrt(2)).
      const int scale = m.Producer(erf.inputs[0]);
      if (scale < 0 || m.SoleConsumer(erf.inputs[0]) != static_cast<int>(e)) continue;
      std::string x = m.OtherOperand(scale, "Div", kSqrt2, false);
      if (x.empty()) x = m.OtherOperand(scale, "Mul", 1.0 / kSqrt2, true);
      if (x.empty()) continue;
      // 1 + erf.
      const int add = m.SoleConsumer(erf.outputs[0]);
      if (add < 0 || m.OtherOperand(add, "Add", 1.0, true) != erf.outputs[0]) continue;
      const std::string sum = m.node(add).outputs[0];
      const int mul1 = m.SoleConsumer(sum);
      if (!m.IsMul(mul1)) continue;
      const std::string other = m.Other(mul1, sum);
      std::set<size_t> dead = {static_cast<size_t>(scale), e, static_cast<size_t>(add),
                               static_cast<size_t>(mul1)};
      std::string y;
      if (other == x) {
        // (x * (1 + erf)) * 0.5
        const int mul2 = m.SoleConsumer(m.node(mul1).outputs[0]);
        if (m.OtherOperand(mul2, "Mul", 0.5, true) != m.node(mul1).outputs[0]) continue;
        dead.insert(mul2);
        y = m.node(mul2).outputs[0];
      } else if (m.IsScalar(other, 0.5)) {
        // x * ((1 + erf) * 0.5)
        const int mul2 = m.SoleConsumer(m.node(mul1).outputs[0]);
        if (!m.IsMul(mul2) || m.Other(mul2, m.node(mul1).outputs[0]) != x) continue;
        dead.insert(mul2);
        y = m.node(mul2).outputs[0];
      } else {
        // (x * 0.5) * (1 + erf)
        const int half = m.Producer(other);
        if (half < 0 || m.SoleConsumer(other) != mul1 ||
            m.OtherOperand(half, "Mul", 0.5, true) != x) {
          continue;
        }
        dead.insert(half);
        y = m.node(mul1).outputs[0];
      }
      Node gelu;
      gelu.name = absl::StrCat(erf.name.empty() ? y : erf.name, "/gelu");
      gelu.op_type = "Gelu";
      gelu.inputs = {x};
      gelu.outputs = {y};
      std::vector<Node> kept;
      for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (i == e) kept.push_back(gelu);  // Erf's place: after x's producer, before y's users
        if (!dead.count(i)) kept.push_back(std::move(g.nodes[i]));
      }
      g.nodes = std::move(kept);
      changed = true;
    }
  }
  return absl::OkStatus();
}

}  // namespace octet
