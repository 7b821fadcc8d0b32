#include "core/passes_qdq.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/quant/qparams.h"

namespace octet {
namespace {

constexpr char kOctet[] = "octet";

bool IsOp(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// Lookup tables over the current graph; rebuilt after every rewrite.
class GraphIndex {
 public:
  explicit GraphIndex(const Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const std::string& o : g.nodes[i].outputs) {
        if (!o.empty()) producer_[o] = i;
      }
      for (const std::string& in : g.nodes[i].inputs) {
        if (!in.empty()) consumers_[in].push_back(i);
      }
    }
    for (const ValueInfo& v : g.outputs) outputs_.insert(v.name);
  }
  // Index of the node producing `value`, or -1.
  int Producer(const std::string& value) const {
    auto it = producer_.find(value);
    return it == producer_.end() ? -1 : static_cast<int>(it->second);
  }
  // The only consumer of `value` (-1 if none, several, or it is a graph output).
  int Sole(const std::string& value) const {
    auto it = consumers_.find(value);
    if (it == consumers_.end() || it->second.size() != 1 || outputs_.count(value)) return -1;
    return static_cast<int>(it->second[0]);
  }
  bool Used(const std::string& value) const {
    return consumers_.count(value) > 0 || outputs_.count(value) > 0;
  }
  const std::vector<size_t>& Consumers(const std::string& value) const {
    static const std::vector<size_t> kNone;
    auto it = consumers_.find(value);
    return it == consumers_.end() ? kNone : it->second;
  }
  bool IsOutput(const std::string& value) const { return outputs_.count(value) > 0; }
  // True if node `ancestor` is among the producers `value` depends on.
  bool DependsOn(const std::string& value, size_t ancestor) const {
    std::set<size_t> seen;
    std::vector<std::string> stack = {value};
    while (!stack.empty()) {
      int p = Producer(stack.back());
      stack.pop_back();
      if (p < 0 || !seen.insert(p).second) continue;
      if (static_cast<size_t>(p) == ancestor) return true;
      for (const std::string& in : g_.nodes[p].inputs) {
        if (!in.empty()) stack.push_back(in);
      }
    }
    return false;
  }

 private:
  const Graph& g_;
  std::map<std::string, size_t> producer_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::set<std::string> outputs_;
};

// A quantized operand as referenced by a Q/DQ node: data, scale and zero point value names.
struct QRef {
  std::string q, scale, zp;  // zp "" = 0 of u8
  int node = -1;             // the Q or DQ node
};

const Tensor* Init(const Graph& g, const std::string& name) {
  return name.empty() ? nullptr : g.FindInitializer(name);
}

// Constant per-tensor (or, with per_channel, 1-D) parameters of a Q/DQ node.
bool ConstParams(const Graph& g, const Node& n, bool per_channel) {
  const Tensor* s = Init(g, n.inputs.size() > 1 ? n.inputs[1] : "");
  if (s == nullptr || s->dtype() != DType::kF32) return false;
  if (!per_channel && s->num_elements() != 1) return false;
  if (n.HasInput(2)) {
    const Tensor* z = Init(g, n.inputs[2]);
    if (z == nullptr || z->num_elements() != s->num_elements()) return false;
    if (z->dtype() != DType::kU8 && z->dtype() != DType::kS8) return false;
  }
  return true;
}

QRef RefOf(const Node& n, int index) {
  return QRef{n.inputs[0], n.inputs[1], n.HasInput(2) ? n.inputs[2] : "", index};
}

// The DQ producing `value` with constant per-tensor parameters (an activation).
bool ActivationDq(const Graph& g, const GraphIndex& idx, const std::string& value, QRef* out) {
  int p = idx.Producer(value);
  if (p < 0 || !IsOp(g.nodes[p], "DequantizeLinear") || !ConstParams(g, g.nodes[p], false)) {
    return false;
  }
  *out = RefOf(g.nodes[p], p);
  return true;
}

// The Q consuming `value` alone, with constant per-tensor parameters.
bool SoleQ(const Graph& g, const GraphIndex& idx, const std::string& value, QRef* out) {
  int c = idx.Sole(value);
  if (c < 0 || !IsOp(g.nodes[c], "QuantizeLinear") || g.nodes[c].inputs[0] != value ||
      !ConstParams(g, g.nodes[c], false)) {
    return false;
  }
  *out = QRef{g.nodes[c].outputs[0], g.nodes[c].inputs[1],
              g.nodes[c].HasInput(2) ? g.nodes[c].inputs[2] : "", c};
  return true;
}

float ScaleOf(const Graph& g, const QRef& r) { return Init(g, r.scale)->data_as<float>()[0]; }
int64_t ZpOf(const Graph& g, const QRef& r) {
  const Tensor* z = Init(g, r.zp);
  return z ? z->GetAsInt64(0) : 0;
}
DType TypeOf(const Graph& g, const QRef& r) {
  const Tensor* z = Init(g, r.zp);
  return z ? z->dtype() : DType::kU8;
}
bool SameParams(const Graph& g, const QRef& a, const QRef& b) {
  return ScaleOf(g, a) == ScaleOf(g, b) && ZpOf(g, a) == ZpOf(g, b) && TypeOf(g, a) == TypeOf(g, b);
}

// Relu/LeakyRelu/Clip (constant bounds) as a post-op.
bool AsPostOp(const Graph& g, const Node& n, PostOp* p) {
  if (IsOp(n, "Relu")) {
    p->kind = PostOp::Kind::kRelu;
    return true;
  }
  if (IsOp(n, "LeakyRelu")) {
    p->kind = PostOp::Kind::kLeakyRelu;
    p->alpha = n.GetFloat("alpha", 0.01f);
    return true;
  }
  if (!IsOp(n, "Clip")) return false;
  p->kind = PostOp::Kind::kClip;
  p->alpha = -INFINITY;
  p->beta = INFINITY;
  if (g.opset < 11) {
    p->alpha = n.GetFloat("min", p->alpha);
    p->beta = n.GetFloat("max", p->beta);
    return true;
  }
  for (int i : {1, 2}) {
    if (!n.HasInput(i)) continue;
    const Tensor* t = Init(g, n.inputs[i]);
    if (t == nullptr || t->dtype() != DType::kF32 || t->num_elements() != 1) return false;
    (i == 1 ? p->alpha : p->beta) = t->data_as<float>()[0];
  }
  return true;
}

std::string NewInitName(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.initializers.count(name); ++i) name = absl::StrCat(base, "_", i);
  return name;
}

void EraseDead(Graph& g) {
  g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(),
                               [](const Node& n) { return n.op_type.empty(); }),
                g.nodes.end());
}

// Q(constant f32) -> a quantized initializer (QAT exports keep FP32 weights behind a Q).
void FoldConstantQuantize(Graph& g) {
  for (Node& n : g.nodes) {
    if (!IsOp(n, "QuantizeLinear") || !ConstParams(g, n, true)) continue;
    const Tensor* x = Init(g, n.inputs[0]);
    if (x == nullptr || x->dtype() != DType::kF32) continue;
    auto p = ReadQuantParams(n.Label(), *Init(g, n.inputs[1]),
                             n.HasInput(2) ? Init(g, n.inputs[2]) : nullptr, DType::kU8,
                             g.opset >= 13 ? n.GetInt("axis", 1) : 1, x->shape());
    if (!p.ok()) continue;  // the QuantizeLinear op reports it at build time
    Tensor q = Tensor::Zeros(p->dtype, x->shape());
    int64_t inner = 1;
    for (int d = static_cast<int>(p->axis) + 1; p->axis >= 0 && d < x->rank(); ++d) inner *= x->dim(d);
    const int32_t lo = static_cast<int32_t>(QMin(p->dtype)), hi = static_cast<int32_t>(QMax(p->dtype));
    for (int64_t i = 0; i < x->num_elements(); ++i) {
      const int64_t c = p->per_tensor() ? 0 : (i / inner) % x->dim(static_cast<int>(p->axis));
      // q = saturate(round_half_even(x / scale) + zero_point)
      const int32_t zp = p->zero_point(c);
      const int32_t v = RoundSaturate(x->data_as<float>()[i] / p->scale(c), lo - zp, hi - zp) + zp;
      if (p->dtype == DType::kU8) {
        q.data_as<uint8_t>()[i] = static_cast<uint8_t>(v);
      } else {
        q.data_as<int8_t>()[i] = static_cast<int8_t>(v);
      }
    }
    g.initializers[n.outputs[0]] = std::move(q);
    n.op_type.clear();
  }
  EraseDead(g);
}

// s8 activations -> u8 (+128 on data and zero point): exact, and u8 is oneDNN's fast source.
void ActivationsToU8(Graph& g) {
  GraphIndex idx(g);
  for (Node& n : g.nodes) {
    if (!IsOp(n, "QuantizeLinear") || !ConstParams(g, n, false) || !n.HasInput(2)) continue;
    const Tensor* z = Init(g, n.inputs[2]);
    if (z->dtype() != DType::kS8 || idx.IsOutput(n.outputs[0])) continue;
    const auto& users = idx.Consumers(n.outputs[0]);
    bool all_dq = !users.empty();
    for (size_t u : users) {
      const Node& c = g.nodes[u];
      all_dq = all_dq && IsOp(c, "DequantizeLinear") && c.inputs[0] == n.outputs[0] &&
               c.HasInput(2) && ConstParams(g, c, false) && SameParams(g, RefOf(c, u), RefOf(n, 0));
    }
    if (!all_dq) continue;
    Tensor u8 = Tensor::Zeros(DType::kU8, z->shape());
    u8.data_as<uint8_t>()[0] = static_cast<uint8_t>(z->GetAsInt64(0) + 128);
    const std::string name = NewInitName(g, n.inputs[2] + "_u8");
    g.initializers[name] = std::move(u8);
    n.inputs[2] = name;
    for (size_t u : users) g.nodes[u].inputs[2] = name;
  }
}

// The weights DQ of a layer: constant u8/s8 data, per-tensor or per-channel along `axis`.
bool WeightDq(const Graph& g, const GraphIndex& idx, const std::string& value, int64_t axis,
              QRef* out) {
  int p = idx.Producer(value);
  if (p < 0 || !IsOp(g.nodes[p], "DequantizeLinear") || !ConstParams(g, g.nodes[p], true)) {
    return false;
  }
  const Node& dq = g.nodes[p];
  const Tensor* w = Init(g, dq.inputs[0]);
  if (w == nullptr || (w->dtype() != DType::kU8 && w->dtype() != DType::kS8)) return false;
  if (Init(g, dq.inputs[1])->num_elements() > 1) {
    const int64_t a = g.opset >= 13 ? dq.GetInt("axis", 1) : 1;
    if ((a < 0 ? a + w->rank() : a) != axis) return false;
  }
  *out = RefOf(dq, p);
  return true;
}

// The layer's bias as an octet input: DQ(int32) whose scale is exactly x_scale * w_scale[oc]
// stays int32; anything else (other scales, FP32) becomes an FP32 initializer of real values.
bool LayerBias(Graph& g, const GraphIndex& idx, const std::string& value, float xs,
               const Tensor& ws, std::string* out) {
  if (value.empty()) return true;
  if (const Tensor* f = Init(g, value)) {
    if (f->dtype() != DType::kF32) return false;
    *out = value;
    return true;
  }
  const int p = idx.Producer(value);
  if (p < 0 || !IsOp(g.nodes[p], "DequantizeLinear") || g.nodes[p].inputs.size() < 2) return false;
  const Node& dq = g.nodes[p];
  const Tensor* b = Init(g, dq.inputs[0]);
  const Tensor* bs = Init(g, dq.inputs[1]);
  if (b == nullptr || b->dtype() != DType::kS32 || bs == nullptr || bs->dtype() != DType::kF32) {
    return false;
  }
  if (dq.HasInput(2)) {
    const Tensor* bz = Init(g, dq.inputs[2]);
    if (bz == nullptr) return false;
    for (int64_t i = 0; i < bz->num_elements(); ++i) {
      if (bz->GetAsInt64(i) != 0) return false;
    }
  }
  const int64_t n = b->num_elements();
  if (bs->num_elements() != 1 && bs->num_elements() != n) return false;
  bool exact = true;
  Tensor real = Tensor::Zeros(DType::kF32, {n});
  for (int64_t i = 0; i < n; ++i) {
    const float s = bs->data_as<float>()[bs->num_elements() == 1 ? 0 : i];
    const float w = ws.data_as<float>()[ws.num_elements() == 1 ? 0 : i];
    exact = exact && s == xs * w;
    real.data_as<float>()[i] = s * static_cast<float>(b->data_as<int32_t>()[i]);
  }
  if (exact && b->rank() == 1) {
    *out = dq.inputs[0];
  } else {
    *out = NewInitName(g, dq.inputs[0] + "_real");
    g.initializers[*out] = std::move(real);
  }
  return true;
}

// Tries to turn node `li` (Conv/MatMul/Gemm) with its surrounding Q/DQ into one octet layer.
bool FuseLayer(Graph& g, size_t li) {
  GraphIndex idx(g);
  const Node& layer = g.nodes[li];
  const bool conv = IsOp(layer, "Conv"), gemm = IsOp(layer, "Gemm"), mm = IsOp(layer, "MatMul");
  if (!(conv || gemm || mm) || layer.inputs.size() < 2 || !layer.post_ops.empty()) return false;
  int64_t w_axis = 0;
  bool trans_b = false;
  if (gemm) {
    if (layer.GetFloat("alpha", 1.0f) != 1.0f || layer.GetInt("transA", 0) != 0) return false;
    if (layer.HasInput(2) && layer.GetFloat("beta", 1.0f) != 1.0f) return false;
    trans_b = layer.GetInt("transB", 0) != 0;
    w_axis = trans_b ? 0 : 1;
  } else if (mm) {
    w_axis = 1;
  }
  QRef x, w;
  if (!ActivationDq(g, idx, layer.inputs[0], &x)) return false;
  if (!WeightDq(g, idx, layer.inputs[1], w_axis, &w)) return false;
  const Tensor* wt = Init(g, w.q);
  if ((mm || gemm) && wt->rank() != 2) return false;
  std::string bias;
  if ((conv || gemm) && layer.HasInput(2)) {
    if (!LayerBias(g, idx, layer.inputs[2], ScaleOf(g, x), *Init(g, w.scale), &bias)) return false;
  }
  std::vector<PostOp> post_ops;
  std::set<size_t> dead = {li};
  std::string out = layer.outputs[0];
  QRef y, residual;
  bool has_y = false, has_residual = false;
  auto absorb_activations = [&]() {
    PostOp p;
    int c;
    while ((c = idx.Sole(out)) >= 0 && AsPostOp(g, g.nodes[c], &p) && g.nodes[c].inputs[0] == out) {
      post_ops.push_back(p);
      dead.insert(c);
      out = g.nodes[c].outputs[0];
    }
  };
  absorb_activations();
  if (SoleQ(g, idx, out, &y)) {
    has_y = true;
    dead.insert(y.node);
    out = y.q;
    // -> DQ -> Add(DQ(r)) [-> act] -> Q: residual sum; -> DQ -> act -> Q: activation.
    for (;;) {
      const int d = idx.Sole(out);
      if (d < 0 || !IsOp(g.nodes[d], "DequantizeLinear") || g.nodes[d].inputs[0] != out ||
          !ConstParams(g, g.nodes[d], false) || !SameParams(g, RefOf(g.nodes[d], d), y)) {
        break;
      }
      const std::string deq = g.nodes[d].outputs[0];
      const int a = idx.Sole(deq);
      if (a < 0) break;
      const Node& next = g.nodes[a];
      std::vector<PostOp> new_ops;
      std::set<size_t> new_dead = {static_cast<size_t>(d), static_cast<size_t>(a)};
      QRef r;
      bool uses_residual = false;
      PostOp p;
      if (AsPostOp(g, next, &p) && next.inputs[0] == deq) {
        new_ops.push_back(p);
      } else if (IsOp(next, "Add") && next.inputs.size() == 2 && conv && !has_residual &&
                 next.inputs[0] != next.inputs[1]) {
        const std::string& other = next.inputs[0] == deq ? next.inputs[1] : next.inputs[0];
        if (!ActivationDq(g, idx, other, &r) || idx.DependsOn(r.q, li)) break;
        uses_residual = true;
        p.kind = PostOp::Kind::kSum;
        new_ops.push_back(p);
      } else {
        break;
      }
      std::string v = next.outputs[0];
      for (int c; (c = idx.Sole(v)) >= 0 && AsPostOp(g, g.nodes[c], &p) && g.nodes[c].inputs[0] == v;) {
        new_ops.push_back(p);
        new_dead.insert(c);
        v = g.nodes[c].outputs[0];
      }
      QRef y2;
      if (!SoleQ(g, idx, v, &y2)) break;
      new_dead.insert(y2.node);
      post_ops.insert(post_ops.end(), new_ops.begin(), new_ops.end());
      dead.insert(new_dead.begin(), new_dead.end());
      if (uses_residual) {
        residual = r;
        has_residual = true;
      }
      y = y2;
      out = y.q;
    }
  }
  Node q;
  q.name = layer.name;
  q.domain = kOctet;
  q.op_type = conv ? "QConv" : "QMatMul";
  for (const char* a : {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}) {
    if (conv && layer.HasAttr(a)) q.attrs[a] = layer.attrs.at(a);
  }
  if (trans_b) {
    q.attrs["trans_b"].type = Attribute::Type::kInt;
    q.attrs["trans_b"].i = 1;
  }
  q.inputs = {x.q, x.scale, x.zp, w.q, w.scale, w.zp, has_y ? y.scale : "", has_y ? y.zp : "",
              bias};
  if (has_residual) {
    q.inputs.insert(q.inputs.end(), {residual.q, residual.scale, residual.zp});
  }
  q.outputs = {out};
  q.post_ops = post_ops;
  for (size_t d : dead) g.nodes[d].op_type.clear();
  g.nodes[li] = std::move(q);
  EraseDead(g);
  return true;
}

// DQ -> op -> Q patterns on data-movement ops.
bool FuseDataOp(Graph& g, size_t i) {
  GraphIndex idx(g);
  Node& n = g.nodes[i];
  if (!n.domain.empty() || n.outputs.empty()) return false;
  static const std::set<std::string> kPool = {"MaxPool", "AveragePool", "GlobalAveragePool"};
  static const std::set<std::string> kMove = {"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                              "Transpose"};
  QRef y;
  if (kPool.count(n.op_type) || kMove.count(n.op_type)) {
    QRef x;
    if (!ActivationDq(g, idx, n.inputs[0], &x)) return false;
    if (n.outputs.size() > 1 && n.outputs[1] != "" && idx.Used(n.outputs[1])) return false;
    if (!SoleQ(g, idx, n.outputs[0], &y)) return false;
    if (kMove.count(n.op_type)) {
      if (!SameParams(g, x, y)) return false;
      n.inputs[0] = x.q;
      n.outputs[0] = y.q;
      g.nodes[y.node].op_type.clear();
    } else {
      Node q;
      q.name = n.name;
      q.domain = kOctet;
      q.op_type = "QPool";
      q.attrs = n.attrs;
      q.attrs["mode"].type = Attribute::Type::kString;
      q.attrs["mode"].s = n.op_type;
      q.inputs = {x.q, x.scale, x.zp, y.scale, y.zp};
      q.outputs = {y.q};
      g.nodes[y.node].op_type.clear();
      n = std::move(q);
    }
    EraseDead(g);
    return true;
  }
  if (IsOp(n, "Concat") || IsOp(n, "Add")) {
    std::vector<QRef> xs;
    for (const std::string& in : n.inputs) {
      QRef x;
      if (!ActivationDq(g, idx, in, &x)) return false;
      xs.push_back(x);
    }
    if (IsOp(n, "Add") && xs.size() != 2) return false;
    std::string out = n.outputs[0];
    std::vector<PostOp> post_ops;
    std::set<size_t> dead;
    PostOp p;
    for (int c; IsOp(n, "Add") && (c = idx.Sole(out)) >= 0 && AsPostOp(g, g.nodes[c], &p);) {
      post_ops.push_back(p);
      dead.insert(c);
      out = g.nodes[c].outputs[0];
    }
    if (!SoleQ(g, idx, out, &y)) return false;
    dead.insert(y.node);
    Node q;
    q.name = n.name;
    q.domain = kOctet;
    q.op_type = IsOp(n, "Add") ? "QAdd" : "QConcat";
    q.attrs = n.attrs;
    q.inputs = {y.scale, y.zp};
    for (const QRef& x : xs) q.inputs.insert(q.inputs.end(), {x.q, x.scale, x.zp});
    q.outputs = {y.q};
    q.post_ops = post_ops;
    for (size_t d : dead) g.nodes[d].op_type.clear();
    n = std::move(q);
    EraseDead(g);
    return true;
  }
  return false;
}

// Removes Q/DQ nodes nobody reads.
void RemoveUnusedQdq(Graph& g) {
  for (bool changed = true; changed;) {
    changed = false;
    GraphIndex idx(g);
    for (Node& n : g.nodes) {
      if ((IsOp(n, "QuantizeLinear") || IsOp(n, "DequantizeLinear")) && !idx.Used(n.outputs[0])) {
        n.op_type.clear();
        changed = true;
      }
    }
    EraseDead(g);
  }
}

}  // namespace

absl::Status FuseQdq(Graph& g) {
  bool any_qdq = std::any_of(g.nodes.begin(), g.nodes.end(), [](const Node& n) {
    return IsOp(n, "QuantizeLinear") || IsOp(n, "DequantizeLinear");
  });
  if (!any_qdq) return absl::OkStatus();
  FoldConstantQuantize(g);
  ActivationsToU8(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (FuseLayer(g, i)) i = 0;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (FuseDataOp(g, i)) i = 0;
  }
  RemoveUnusedQdq(g);
  g.PruneUnusedInitializers();
  return g.TopologicalSort();
}

std::vector<std::string> NodePrecisions(const Graph& g) {
  // Values known to hold integers: quantized initializers and outputs of int8 ops, propagated
  // through data-movement ops.
  std::set<std::string> int_values;
  for (const auto& [name, t] : g.initializers) {
    if (t.dtype() == DType::kU8 || t.dtype() == DType::kS8) int_values.insert(name);
  }
  for (const ValueInfo& v : g.inputs) {
    if (v.dtype == DType::kU8 || v.dtype == DType::kS8) int_values.insert(v.name);
  }
  static const std::set<std::string> kIntOps = {"QLinearConv", "QLinearMatMul", "ConvInteger",
                                                "MatMulInteger"};
  std::vector<std::string> out;
  for (const Node& n : g.nodes) {
    std::string p;
    if (n.domain == kOctet || (n.domain.empty() && kIntOps.count(n.op_type))) {
      const bool f32_out = (n.op_type == "QConv" || n.op_type == "QMatMul") && !n.HasInput(6);
      p = f32_out ? "int8->fp32" : "int8";
    } else if (IsOp(n, "QuantizeLinear") || IsOp(n, "DynamicQuantizeLinear")) {
      p = "fp32->int8";
    } else if (IsOp(n, "DequantizeLinear")) {
      p = "int8->fp32";
    } else {
      p = !n.inputs.empty() && int_values.count(n.inputs[0]) ? "int8" : "fp32";
    }
    if (p == "int8" || p == "fp32->int8") {
      for (const std::string& o : n.outputs) int_values.insert(o);
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace octet
