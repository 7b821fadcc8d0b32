#include "core/quant/qdq_rewriter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/onnx_importer.h"
#include "core/passes.h"

namespace octet {
namespace {

bool IsOp(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// Opset from which each op's definition stays the same up to opset 13 (later versions only added
// types). Ops missing here changed meaning before 13 (Softmax's axis, Squeeze/Unsqueeze/Split/
// ReduceSum's axes input, Clip's min/max inputs...) or are not checked: a model using them below
// opset 13 is refused rather than silently reinterpreted.
const std::map<std::string, int64_t>& SafeSince() {
  static const auto* kSafe = new std::map<std::string, int64_t>{
      {"Conv", 1},
      {"Gemm", 7},
      {"MatMul", 1},
      {"Relu", 6},
      {"LeakyRelu", 6},
      {"Sigmoid", 6},
      {"Tanh", 6},
      {"Add", 7},
      {"Sub", 7},
      {"Mul", 7},
      {"Div", 7},
      {"MaxPool", 8},
      {"AveragePool", 7},
      {"GlobalAveragePool", 1},
      {"GlobalMaxPool", 1},
      {"Flatten", 1},
      {"Reshape", 5},
      {"Concat", 4},
      {"Transpose", 1},
      {"Clip", 11},
      {"BatchNormalization", 9},
      {"Exp", 6},
      {"Sqrt", 6},
      {"Erf", 9},
      {"Pow", 7},
      {"Shape", 1},
      {"Gather", 1},
      {"Cast", 6},
      {"HardSigmoid", 6},
      {"HardSwish", 14},
      {"Pad", 11},
      {"Slice", 10},
      {"Resize", 13},
      {"Softmax", 13},
      {"LogSoftmax", 13},
      {"Squeeze", 13},
      {"Unsqueeze", 13},
      {"ReduceMean", 1},
      {"ConstantOfShape", 9},
      {"Equal", 11},
      {"Where", 9},
      {"Expand", 8},
      {"Neg", 6},
      {"Abs", 6},
      {"Max", 8},
      {"Min", 8},
      {"Sum", 8},
      {"Mean", 8},
  };
  return *kSafe;
}

absl::Status RaiseOpsetTo13(Graph& g) {
  if (g.opset >= 13) return absl::OkStatus();
  for (const Node& n : g.nodes) {
    if (!n.domain.empty()) continue;
    auto it = SafeSince().find(n.op_type);
    if (it == SafeSince().end() || it->second > g.opset) {
      return absl::UnimplementedError(
          absl::StrCat("the model uses ONNX opset ", g.opset, " and ", n.Label(),
                       " is defined differently in opset 13, which per-channel QuantizeLinear/"
                       "DequantizeLinear need; re-export the model with opset >= 13"));
    }
  }
  g.opset = 13;
  return absl::OkStatus();
}

const Tensor* F32Init(const Graph& g, const std::string& name) {
  const Tensor* t = name.empty() ? nullptr : g.FindInitializer(name);
  return t != nullptr && t->dtype() == DType::kF32 ? t : nullptr;
}

// alpha * A * B + beta * C with constant B (and C) -> alpha and beta folded into them.
void FoldGemmScalars(Graph& g) {
  for (Node& n : g.nodes) {
    if (!IsOp(n, "Gemm") || n.inputs.size() < 2) continue;
    const float alpha = n.GetFloat("alpha", 1.0f), beta = n.GetFloat("beta", 1.0f);
    const Tensor* b = F32Init(g, n.inputs[1]);
    if (alpha != 1.0f && b != nullptr && g.UseCount(n.inputs[1]) == 1) {
      Tensor scaled = b->Clone();
      for (int64_t i = 0; i < scaled.num_elements(); ++i) scaled.data_as<float>()[i] *= alpha;
      g.initializers[n.inputs[1]] = std::move(scaled);
      n.attrs.erase("alpha");
    }
    const Tensor* c = n.HasInput(2) ? F32Init(g, n.inputs[2]) : nullptr;
    if (beta != 1.0f && c != nullptr && g.UseCount(n.inputs[2]) == 1) {
      Tensor scaled = c->Clone();
      for (int64_t i = 0; i < scaled.num_elements(); ++i) scaled.data_as<float>()[i] *= beta;
      g.initializers[n.inputs[2]] = std::move(scaled);
      n.attrs.erase("beta");
    }
  }
}

// Output-channel axis of a layer's weights, or -1 if the layer cannot be quantized.
int64_t WeightAxis(const Graph& g, const Node& n) {
  if (n.inputs.size() < 2 || n.inputs[0].empty() || g.FindInitializer(n.inputs[0])) return -1;
  const Tensor* w = F32Init(g, n.inputs[1]);
  if (w == nullptr) return -1;
  if (IsOp(n, "Conv")) return w->rank() >= 3 && w->rank() <= 5 ? 0 : -1;
  if (w->rank() != 2) return -1;
  if (IsOp(n, "MatMul")) return 1;
  if (!IsOp(n, "Gemm") || n.GetInt("transA", 0) != 0 || n.GetFloat("alpha", 1.0f) != 1.0f) {
    return -1;
  }
  if (n.HasInput(2) && n.GetFloat("beta", 1.0f) != 1.0f) return -1;
  return n.GetInt("transB", 0) != 0 ? 0 : 1;
}

// Relu, or Clip with constant bounds: FuseQdq absorbs these between a layer and its Q.
bool IsFusableActivation(const Graph& g, const Node& n) {
  if (IsOp(n, "Relu")) return true;
  if (!IsOp(n, "Clip")) return false;
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    if (n.HasInput(i) && F32Init(g, n.inputs[i]) == nullptr) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Graph> PrepareForQuantization(const std::string& fp32_onnx_bytes) {
  absl::StatusOr<Graph> g = ImportOnnxModel(fp32_onnx_bytes);
  if (!g.ok()) return g.status();
  for (const Node& n : g->nodes) {
    if (n.domain == "octet") {
      return absl::InvalidArgumentError(absl::StrCat(n.Label(), ": not an ONNX op"));
    }
    if (IsOp(n, "QuantizeLinear") || IsOp(n, "DequantizeLinear") || IsOp(n, "QLinearConv") ||
        IsOp(n, "QLinearMatMul")) {
      return absl::InvalidArgumentError(
          absl::StrCat("the model is already quantized (", n.Label(), "); give the FP32 model"));
    }
  }
  for (const ValueInfo& v : g->inputs) {
    if (v.dtype != DType::kF32) continue;
    if (!v.has_shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph input '", v.name, "' has no declared shape (rank)"));
    }
  }
  if (auto s = RemoveIdentities(*g); !s.ok()) return s;
  if (auto s = FoldBatchNorm(*g); !s.ok()) return s;
  FoldGemmScalars(*g);
  g->PruneUnusedInitializers();
  if (auto s = RaiseOpsetTo13(*g); !s.ok()) return s;
  return g;
}

absl::StatusOr<QdqPlan> PlanQuantization(const Graph& g, const std::set<std::string>& exclude) {
  std::map<std::string, const Node*> by_name;
  std::map<std::string, std::vector<const Node*>> consumers;
  std::map<std::string, const Node*> producer;
  for (const Node& n : g.nodes) {
    by_name[n.name] = &n;
    for (const std::string& in : n.inputs) {
      if (!in.empty()) consumers[in].push_back(&n);
    }
    for (const std::string& o : n.outputs) producer[o] = &n;
  }
  std::vector<std::string> unknown;
  for (const std::string& e : exclude) {
    if (!by_name.count(e)) unknown.push_back(e);
  }
  if (!unknown.empty()) {
    std::vector<std::string> names;
    for (const Node& n : g.nodes) {
      if (WeightAxis(g, n) >= 0) names.push_back(n.name);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot exclude '", absl::StrJoin(unknown, "', '"),
                     "': no such node (quantizable layers: ", absl::StrJoin(names, ", "), ")"));
  }
  std::set<std::string> graph_outputs;
  for (const ValueInfo& v : g.outputs) graph_outputs.insert(v.name);
  // The sole consumer of `value` if it is a fusable activation reading it (not excluded).
  auto activation_after = [&](const std::string& value) -> const Node* {
    auto it = consumers.find(value);
    if (graph_outputs.count(value) || it == consumers.end() || it->second.size() != 1) {
      return nullptr;
    }
    const Node* a = it->second[0];
    if (!IsFusableActivation(g, *a) || a->inputs[0] != value || exclude.count(a->name)) {
      return nullptr;
    }
    return a;
  };

  QdqPlan plan;
  std::map<std::string, QdqTarget> targets;  // tensor -> target
  auto add = [&](const std::string& tensor, const std::string& range_of) {
    QdqTarget t;
    t.tensor = tensor;
    t.range_of = range_of;
    auto p = producer.find(tensor);
    t.node = p == producer.end() ? tensor : p->second->name;
    t.op_type = p == producer.end() ? "input" : p->second->op_type;
    targets[tensor] = t;
  };
  // Seeds: every quantized layer's input and (post-activation) output.
  for (const Node& n : g.nodes) {
    if (WeightAxis(g, n) < 0) continue;
    if (exclude.count(n.name)) {
      plan.fp32_layers.push_back(n.name);
      plan.layer_output[n.name] = n.outputs[0];
      continue;
    }
    plan.layers.insert(n.name);
    if (!targets.count(n.inputs[0])) add(n.inputs[0], n.inputs[0]);
    const Node* act = activation_after(n.outputs[0]);
    const std::string out = act ? act->outputs[0] : n.outputs[0];
    add(out, out);
    targets[out].node = n.name;
    targets[out].op_type = n.op_type;
    plan.layer_output[n.name] = out;
  }
  // Data ops between quantized tensors, in topological order.
  static const std::set<std::string> kSameParams = {"MaxPool", "Reshape",   "Flatten",
                                                    "Squeeze", "Unsqueeze", "Transpose"};
  static const std::set<std::string> kOwnParams = {"AveragePool", "GlobalAveragePool"};
  for (const Node& n : g.nodes) {
    if (!n.domain.empty() || exclude.count(n.name) || n.inputs.empty() || n.outputs.empty()) {
      continue;
    }
    const bool same = kSameParams.count(n.op_type) > 0, own = kOwnParams.count(n.op_type) > 0;
    if (same || own) {
      auto in = targets.find(n.inputs[0]);
      if (in == targets.end()) continue;
      if (n.outputs.size() > 1 && !n.outputs[1].empty() &&
          (consumers.count(n.outputs[1]) || graph_outputs.count(n.outputs[1]))) {
        continue;  // MaxPool indices
      }
      const std::string range_of = in->second.range_of;
      add(n.outputs[0], same ? range_of : n.outputs[0]);
    } else if (IsOp(n, "Concat") || (IsOp(n, "Add") && n.inputs.size() == 2)) {
      bool all = true;
      for (const std::string& in : n.inputs) all = all && targets.count(in) > 0;
      if (!all) continue;
      const Node* act = IsOp(n, "Add") ? activation_after(n.outputs[0]) : nullptr;
      const std::string out = act ? act->outputs[0] : n.outputs[0];
      add(out, out);
      targets[out].node = n.name;
      targets[out].op_type = n.op_type;
    }
  }
  // Topological order: graph inputs first, then by producer position.
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const std::string& o : g.nodes[i].outputs) position[o] = i + 1;
  }
  for (auto& [name, t] : targets) plan.targets.push_back(t);
  std::stable_sort(plan.targets.begin(), plan.targets.end(),
                   [&](const QdqTarget& a, const QdqTarget& b) {
                     return position[a.tensor] < position[b.tensor];
                   });
  return plan;
}

namespace {

// Picks names that no value or initializer of the graph uses yet.
class NameMaker {
 public:
  explicit NameMaker(const Graph& g) {
    for (const auto& [name, t] : g.initializers) used_.insert(name);
    for (const ValueInfo& v : g.inputs) used_.insert(v.name);
    for (const Node& n : g.nodes) {
      used_.insert(n.name);
      for (const std::string& s : n.inputs) used_.insert(s);
      for (const std::string& s : n.outputs) used_.insert(s);
    }
  }
  std::string Make(const std::string& base) {
    std::string name = base;
    for (int i = 1; used_.count(name); ++i) name = absl::StrCat(base, "_", i);
    used_.insert(name);
    return name;
  }

 private:
  std::set<std::string> used_;
};

Node MakeQdqNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                 const std::string& output, int64_t axis) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = {output};
  if (axis >= 0) {
    n.attrs["axis"].type = Attribute::Type::kInt;
    n.attrs["axis"].i = axis;
  }
  return n;
}

Tensor ScaleTensor(const std::vector<float>& scales, bool per_channel) {
  if (!per_channel) return Tensor::FromFloats({}, {scales[0]});
  return Tensor::FromFloats({static_cast<int64_t>(scales.size())}, scales);
}

struct QuantizedWeight {
  std::string dq_output;
  std::vector<float> scales;  // per channel (size C) or per tensor (size 1)
};

// w_q = saturate(round_half_even(w / s_w[c]), -127, 127), s_w[c] = max|w[c]| / 127.
QuantizedWeight QuantizeWeight(Graph& g, NameMaker& names, std::vector<Node>* added,
                               const std::string& w_name, int64_t axis, bool per_channel) {
  const Tensor& w = *g.FindInitializer(w_name);
  const int64_t channels = w.dim(static_cast<int>(axis));
  int64_t inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < w.rank(); ++d) inner *= w.dim(d);
  const float* wv = w.data_as<float>();
  const int64_t count = per_channel ? channels : 1;
  auto channel_of = [&](int64_t i) { return per_channel ? (i / inner) % channels : 0; };
  std::vector<float> absmax(count, 0.0f);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    float& m = absmax[channel_of(i)];
    m = std::max(m, std::fabs(wv[i]));
  }
  QuantizedWeight out;
  for (float m : absmax) out.scales.push_back(m > 0 && std::isfinite(m) ? m / 127.0f : 1.0f);
  Tensor q = Tensor::Zeros(DType::kS8, w.shape());
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    q.data_as<int8_t>()[i] =
        static_cast<int8_t>(RoundSaturate(wv[i] / out.scales[channel_of(i)], -127, 127));
  }
  const std::string q_name = names.Make(w_name + "_quantized");
  const std::string s_name = names.Make(w_name + "_scale");
  const std::string z_name = names.Make(w_name + "_zero_point");
  g.initializers[q_name] = std::move(q);
  g.initializers[s_name] = ScaleTensor(out.scales, per_channel);
  g.initializers[z_name] =
      per_channel ? Tensor::Zeros(DType::kS8, {count}) : Tensor::Zeros(DType::kS8, {});
  out.dq_output = names.Make(w_name + "_dequantized");
  added->push_back(MakeQdqNode("DequantizeLinear", names.Make(w_name + "_DequantizeLinear"),
                               {q_name, s_name, z_name}, out.dq_output, per_channel ? axis : -1));
  return out;
}

// b_q = saturate(round(b / (s_x * s_w[oc]))) in s32, zero point 0.
std::string QuantizeBias(Graph& g, NameMaker& names, std::vector<Node>* added,
                         const std::string& b_name, float x_scale, const QuantizedWeight& w,
                         bool per_channel) {
  const Tensor& b = *g.FindInitializer(b_name);
  std::vector<float> scales;
  for (float s : w.scales) scales.push_back(x_scale * s);  // FuseQdq checks this exact product
  Tensor q = Tensor::Zeros(DType::kS32, b.shape());
  constexpr double kMax = std::numeric_limits<int32_t>::max();
  for (int64_t i = 0; i < b.num_elements(); ++i) {
    const double v =
        std::nearbyint(static_cast<double>(b.data_as<float>()[i]) / scales[per_channel ? i : 0]);
    q.data_as<int32_t>()[i] = static_cast<int32_t>(std::clamp(v, -kMax, kMax));
  }
  const std::string q_name = names.Make(b_name + "_quantized");
  const std::string s_name = names.Make(b_name + "_scale");
  const std::string z_name = names.Make(b_name + "_zero_point");
  g.initializers[q_name] = std::move(q);
  g.initializers[s_name] = ScaleTensor(scales, per_channel);
  g.initializers[z_name] =
      per_channel ? Tensor::Zeros(DType::kS32, {b.num_elements()}) : Tensor::Zeros(DType::kS32, {});
  const std::string out = names.Make(b_name + "_dequantized");
  added->push_back(MakeQdqNode("DequantizeLinear", names.Make(b_name + "_DequantizeLinear"),
                               {q_name, s_name, z_name}, out, per_channel ? 0 : -1));
  return out;
}

}  // namespace

absl::StatusOr<Graph> RewriteToQdq(const Graph& source, const QdqPlan& plan,
                                   const std::map<std::string, QuantParams>& activations,
                                   bool per_channel,
                                   std::map<std::string, std::string>* dequantized) {
  Graph g = source;
  NameMaker names(g);
  std::vector<Node> added;
  std::map<std::string, float> x_scale;  // dequantized value as readers see it -> its scale
  std::set<std::string> graph_inputs;
  for (const ValueInfo& v : g.inputs) graph_inputs.insert(v.name);

  for (const QdqTarget& t : plan.targets) {
    auto p = activations.find(t.range_of);
    if (p == activations.end()) {
      return absl::InternalError(absl::StrCat("no calibrated range for '", t.range_of, "'"));
    }
    const QuantParams& qp = p->second;
    if (auto s = ValidateQuantParams(absl::StrCat("activation '", t.tensor, "'"), qp); !s.ok()) {
      return s;
    }
    const std::string s_name = names.Make(t.tensor + "_scale");
    const std::string z_name = names.Make(t.tensor + "_zero_point");
    g.initializers[s_name] = Tensor::FromFloats({}, {qp.scales[0]});
    Tensor zp = Tensor::Zeros(DType::kU8, {});
    zp.data_as<uint8_t>()[0] = static_cast<uint8_t>(qp.zero_points[0]);
    g.initializers[z_name] = std::move(zp);
    const std::string q_out = names.Make(t.tensor + "_quantized");
    std::string q_in = t.tensor, dq_out = t.tensor;
    if (graph_inputs.count(t.tensor)) {
      // The input keeps its name; its readers switch to the dequantized copy.
      dq_out = names.Make(t.tensor + "_dequantized");
      for (Node& n : g.nodes) {
        std::replace(n.inputs.begin(), n.inputs.end(), t.tensor, dq_out);
      }
    } else {
      // The producer writes a new name; the DQ output takes over the tensor's (graph output)
      // name, so every reader sees the quantized value.
      q_in = names.Make(t.tensor + "_prequant");
      for (Node& n : g.nodes) {
        std::replace(n.outputs.begin(), n.outputs.end(), t.tensor, q_in);
      }
    }
    x_scale[dq_out] = qp.scales[0];
    if (dequantized != nullptr) (*dequantized)[t.tensor] = dq_out;
    added.push_back(MakeQdqNode("QuantizeLinear", names.Make(t.tensor + "_QuantizeLinear"),
                                {q_in, s_name, z_name}, q_out, -1));
    added.push_back(MakeQdqNode("DequantizeLinear", names.Make(t.tensor + "_DequantizeLinear"),
                                {q_out, s_name, z_name}, dq_out, -1));
  }
  std::map<std::pair<std::string, int64_t>, QuantizedWeight> weights;
  for (Node& n : g.nodes) {
    if (!plan.layers.count(n.name)) continue;
    const int64_t axis = WeightAxis(g, n);
    const std::string& x = n.inputs[0];
    if (axis < 0 || !x_scale.count(x)) {
      return absl::InternalError(absl::StrCat(n.Label(), ": planned but not quantizable"));
    }
    auto key = std::make_pair(n.inputs[1], axis);
    auto it = weights.find(key);
    if (it == weights.end()) {
      it = weights.emplace(key, QuantizeWeight(g, names, &added, n.inputs[1], axis, per_channel))
               .first;
    }
    const QuantizedWeight w = it->second;
    n.inputs[1] = w.dq_output;
    const Tensor* b = n.HasInput(2) ? F32Init(g, n.inputs[2]) : nullptr;
    const int64_t channels = g.FindInitializer(key.first)->dim(static_cast<int>(axis));
    if (b != nullptr && b->rank() == 1 && b->num_elements() == channels) {
      n.inputs[2] = QuantizeBias(g, names, &added, n.inputs[2], x_scale[x], w, per_channel);
    }
  }
  g.nodes.insert(g.nodes.end(), added.begin(), added.end());
  g.PruneUnusedInitializers();
  if (auto s = g.TopologicalSort(); !s.ok()) return s;
  return g;
}

}  // namespace octet
