#include "core/passes.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/passes_gelu.h"
#include "core/passes_qdq.h"

namespace octet {
namespace {

// Maps each value name to the indices of the nodes that consume it.
std::map<std::string, std::vector<size_t>> Consumers(const Graph& g) {
  std::map<std::string, std::vector<size_t>> c;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const std::string& in : g.nodes[i].inputs) {
      if (!in.empty()) c[in].push_back(i);
    }
  }
  return c;
}

bool IsGraphOutput(const Graph& g, const std::string& name) {
  for (const ValueInfo& v : g.outputs) {
    if (v.name == name) return true;
  }
  return false;
}

// The single node consuming `value`, or -1 (zero or several consumers, or a graph output).
int SoleConsumer(const Graph& g, const std::map<std::string, std::vector<size_t>>& consumers,
                 const std::string& value) {
  auto it = consumers.find(value);
  if (it == consumers.end() || it->second.size() != 1 || IsGraphOutput(g, value)) return -1;
  return static_cast<int>(it->second[0]);
}

void RenameUses(Graph& g, const std::string& from, const std::string& to) {
  for (Node& n : g.nodes) {
    for (std::string& in : n.inputs) {
      if (in == from) in = to;
    }
  }
}

std::string UniqueInitializerName(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.initializers.count(name); ++i) name = absl::StrCat(base, "_", i);
  return name;
}

void EraseNodes(Graph& g, const std::set<size_t>& dead) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!dead.count(i)) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
}

// Per-channel BatchNormalization as y = x * factor[c] + shift[c].
struct BnAffine {
  std::vector<float> factor, shift;
};

bool BnToAffine(const Graph& g, const Node& bn, BnAffine* out) {
  if (bn.inputs.size() < 5) return false;
  for (size_t i = 1; i < bn.outputs.size(); ++i) {
    if (!bn.outputs[i].empty() && g.UseCount(bn.outputs[i]) > 0) return false;  // training outputs
  }
  const Tensor* scale = g.FindInitializer(bn.inputs[1]);
  const Tensor* bias = g.FindInitializer(bn.inputs[2]);
  const Tensor* mean = g.FindInitializer(bn.inputs[3]);
  const Tensor* var = g.FindInitializer(bn.inputs[4]);
  if (!scale || !bias || !mean || !var) return false;
  for (const Tensor* t : {scale, bias, mean, var}) {
    if (t->dtype() != DType::kF32 || t->rank() != 1) return false;
  }
  const int64_t c = scale->num_elements();
  if (bias->num_elements() != c || mean->num_elements() != c || var->num_elements() != c) {
    return false;
  }
  const float eps = bn.GetFloat("epsilon", 1e-5f);
  out->factor.resize(c);
  out->shift.resize(c);
  for (int64_t i = 0; i < c; ++i) {
    float f = scale->data_as<float>()[i] / std::sqrt(var->data_as<float>()[i] + eps);
    out->factor[i] = f;
    out->shift[i] = bias->data_as<float>()[i] - mean->data_as<float>()[i] * f;
  }
  return true;
}

// Folds y = BN(conv(x, W) + B) into conv(x, W * f) + (B * f + shift).
bool FoldIntoConv(Graph& g, Node& conv, const BnAffine& bn) {
  const Tensor* w = g.FindInitializer(conv.inputs[1]);
  if (!w || w->dtype() != DType::kF32 || w->rank() < 3) return false;
  const bool transposed = conv.op_type == "ConvTranspose";
  const int64_t groups = conv.GetInt("group", 1);
  // Conv weights: [M, C/g, k...]; ConvTranspose: [C, M/g, k...] with output channel g*M/g.
  const int64_t out_channels = transposed ? w->dim(1) * groups : w->dim(0);
  if (static_cast<int64_t>(bn.factor.size()) != out_channels) return false;
  const Tensor* b = conv.HasInput(2) ? g.FindInitializer(conv.inputs[2]) : nullptr;
  if (conv.HasInput(2) && (!b || b->num_elements() != out_channels)) return false;
  Tensor nw = w->Clone();
  float* pw = nw.data_as<float>();
  const int64_t spatial = w->num_elements() / (w->dim(0) * w->dim(1));
  for (int64_t i0 = 0; i0 < w->dim(0); ++i0) {
    for (int64_t i1 = 0; i1 < w->dim(1); ++i1) {
      int64_t oc = transposed ? (i0 / (w->dim(0) / groups)) * w->dim(1) + i1 : i0;
      float f = bn.factor[oc];
      float* p = pw + (i0 * w->dim(1) + i1) * spatial;
      for (int64_t s = 0; s < spatial; ++s) p[s] *= f;
    }
  }
  Tensor nb = Tensor::Zeros(DType::kF32, {out_channels});
  for (int64_t oc = 0; oc < out_channels; ++oc) {
    float base = b ? b->data_as<float>()[oc] : 0.0f;
    nb.data_as<float>()[oc] = base * bn.factor[oc] + bn.shift[oc];
  }
  std::string wn = UniqueInitializerName(g, conv.name + "_bn_weight");
  std::string bnm = UniqueInitializerName(g, conv.name + "_bn_bias");
  g.initializers[wn] = std::move(nw);
  g.initializers[bnm] = std::move(nb);
  conv.inputs.resize(3);
  conv.inputs[1] = wn;
  conv.inputs[2] = bnm;
  return true;
}

// Gemm: Y = alpha*A*B + beta*C with B [K,N] (or [N,K] if transB). BN over N folds into B's
// columns and into C.
bool FoldIntoGemm(Graph& g, Node& gemm, const BnAffine& bn) {
  const Tensor* w = g.FindInitializer(gemm.inputs[1]);
  if (!w || w->dtype() != DType::kF32 || w->rank() != 2) return false;
  const bool trans_b = gemm.GetInt("transB", 0) != 0;
  const int64_t n = trans_b ? w->dim(0) : w->dim(1);
  const int64_t k = trans_b ? w->dim(1) : w->dim(0);
  if (static_cast<int64_t>(bn.factor.size()) != n) return false;
  const Tensor* c = gemm.HasInput(2) ? g.FindInitializer(gemm.inputs[2]) : nullptr;
  if (gemm.HasInput(2) && (!c || !(c->num_elements() == n || c->num_elements() == 1))) {
    return false;
  }
  const float beta = gemm.GetFloat("beta", 1.0f);
  Tensor nw = w->Clone();
  float* pw = nw.data_as<float>();
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t kk = 0; kk < k; ++kk) pw[trans_b ? j * k + kk : kk * n + j] *= bn.factor[j];
  }
  Tensor nc = Tensor::Zeros(DType::kF32, {n});
  for (int64_t j = 0; j < n; ++j) {
    float cv = c ? c->data_as<float>()[c->num_elements() == 1 ? 0 : j] * beta : 0.0f;
    nc.data_as<float>()[j] = cv * bn.factor[j] + bn.shift[j];
  }
  std::string wn = UniqueInitializerName(g, gemm.name + "_bn_weight");
  std::string cn = UniqueInitializerName(g, gemm.name + "_bn_bias");
  g.initializers[wn] = std::move(nw);
  g.initializers[cn] = std::move(nc);
  gemm.inputs.resize(3);
  gemm.inputs[1] = wn;
  gemm.inputs[2] = cn;
  gemm.attrs["beta"].type = Attribute::Type::kFloat;
  gemm.attrs["beta"].f = 1.0f;
  return true;
}

bool ToPostOp(const Graph& g, const Node& n, PostOp* p) {
  if (!n.domain.empty()) return false;
  if (n.op_type == "Relu") {
    p->kind = PostOp::Kind::kRelu;
  } else if (n.op_type == "LeakyRelu") {
    p->kind = PostOp::Kind::kLeakyRelu;
    p->alpha = n.GetFloat("alpha", 0.01f);
  } else if (n.op_type == "Sigmoid") {
    p->kind = PostOp::Kind::kSigmoid;
  } else if (n.op_type == "Tanh") {
    p->kind = PostOp::Kind::kTanh;
  } else if (n.op_type == "HardSigmoid") {
    p->kind = PostOp::Kind::kHardSigmoid;
    p->alpha = n.GetFloat("alpha", 0.2f);
    p->beta = n.GetFloat("beta", 0.5f);
  } else if (n.op_type == "HardSwish") {
    p->kind = PostOp::Kind::kHardSwish;
  } else if (n.op_type == "Clip") {
    p->kind = PostOp::Kind::kClip;
    float lo = -INFINITY, hi = INFINITY;
    if (g.opset < 11) {
      lo = n.GetFloat("min", lo);
      hi = n.GetFloat("max", hi);
    } else {
      for (int i : {1, 2}) {
        if (!n.HasInput(i)) continue;
        const Tensor* t = g.FindInitializer(n.inputs[i]);
        if (!t || t->dtype() != DType::kF32 || t->num_elements() != 1) return false;
        (i == 1 ? lo : hi) = t->data_as<float>()[0];
      }
    }
    p->alpha = lo;
    p->beta = hi;
  } else {
    return false;
  }
  return true;
}

bool IsFusableLayer(const Node& n) {
  return n.domain.empty() &&
         (n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul" ||
          n.op_type == "ConvTranspose");
}

// MatMul(A, B) followed by Add of a constant 1-D f32 c of B's N elements: Y = A B + c, with B a
// constant matrix [K, N]. Then c broadcasts along Y's last dimension only and never changes Y's
// shape, so it is exactly a matmul bias.
bool IsMatMulBiasAdd(const Graph& g, const Node& layer, const Node& add) {
  if (layer.op_type != "MatMul" || !layer.domain.empty() || layer.inputs.size() != 2 ||
      !layer.post_ops.empty() || add.op_type != "Add" || !add.domain.empty() ||
      add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) {
    return false;
  }
  const Tensor* b = g.FindInitializer(layer.inputs[1]);
  const std::string& other = add.inputs[0] == layer.outputs[0] ? add.inputs[1] : add.inputs[0];
  const Tensor* c = g.FindInitializer(other);
  return b != nullptr && c != nullptr && b->dtype() == DType::kF32 && b->rank() == 2 &&
         c->dtype() == DType::kF32 && c->rank() == 1 && c->dim(0) == b->dim(1);
}

}  // namespace

absl::Status RemoveIdentities(Graph& g) {
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (!n.domain.empty() || (n.op_type != "Identity" && n.op_type != "Dropout")) continue;
    if (n.op_type == "Dropout") {
      // Training-mode dropout and a consumed mask are not inference identities.
      if (n.HasInput(2) || (n.outputs.size() > 1 && g.UseCount(n.outputs[1]) > 0)) continue;
    }
    if (n.inputs.empty() || n.inputs[0].empty() || IsGraphOutput(g, n.outputs[0])) continue;
    RenameUses(g, n.outputs[0], n.inputs[0]);
    dead.insert(i);
  }
  EraseNodes(g, dead);
  return absl::OkStatus();
}

absl::Status FoldBatchNorm(Graph& g) {
  auto consumers = Consumers(g);
  std::set<size_t> dead;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& layer = g.nodes[i];
    if (!layer.domain.empty() || !(layer.op_type == "Conv" || layer.op_type == "ConvTranspose" ||
                                   layer.op_type == "Gemm")) {
      continue;
    }
    if (layer.inputs.size() < 2 || !layer.post_ops.empty()) continue;
    int j = SoleConsumer(g, consumers, layer.outputs[0]);
    if (j < 0) continue;
    Node& bn = g.nodes[j];
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || bn.inputs[0] != layer.outputs[0]) {
      continue;
    }
    if (bn.GetInt("training_mode", 0) != 0) continue;
    BnAffine affine;
    if (!BnToAffine(g, bn, &affine)) continue;
    bool ok = layer.op_type == "Gemm" ? FoldIntoGemm(g, layer, affine)
                                      : FoldIntoConv(g, layer, affine);
    if (!ok) continue;
    layer.outputs[0] = bn.outputs[0];
    dead.insert(j);
  }
  EraseNodes(g, dead);
  g.PruneUnusedInitializers();
  return absl::OkStatus();
}

absl::Status FusePostOps(Graph& g) {
  bool changed = true;
  while (changed) {
    changed = false;
    auto consumers = Consumers(g);
    std::map<std::string, size_t> producer;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const std::string& o : g.nodes[i].outputs) producer[o] = i;
    }
    for (size_t i = 0; i < g.nodes.size() && !changed; ++i) {
      Node& layer = g.nodes[i];
      if (!IsFusableLayer(layer)) continue;
      int j = SoleConsumer(g, consumers, layer.outputs[0]);
      if (j < 0) continue;
      Node& next = g.nodes[j];
      PostOp op;
      if (ToPostOp(g, next, &op) && next.inputs[0] == layer.outputs[0]) {
        layer.post_ops.push_back(op);
      } else if (IsMatMulBiasAdd(g, layer, next)) {
        // Y = A B + c becomes the matmul's bias (input 2), before any activation.
        layer.inputs.push_back(next.inputs[0] == layer.outputs[0] ? next.inputs[1]
                                                                  : next.inputs[0]);
      } else if (next.op_type == "Add" && next.domain.empty() && next.inputs.size() == 2 &&
                 layer.op_type == "Conv" &&
                 std::none_of(layer.post_ops.begin(), layer.post_ops.end(),
                              [](const PostOp& p) { return p.kind == PostOp::Kind::kSum; })) {
        const std::string& other =
            next.inputs[0] == layer.outputs[0] ? next.inputs[1] : next.inputs[0];
        if (other == layer.outputs[0] || g.FindInitializer(other) != nullptr) continue;
        // The residual must already be computed when this layer runs.
        auto p = producer.find(other);
        if (p != producer.end() && p->second > i) continue;
        op.kind = PostOp::Kind::kSum;
        layer.post_ops.push_back(op);
        layer.inputs.resize(3);
        layer.inputs.push_back(other);  // residual is input 3
      } else {
        continue;
      }
      layer.outputs[0] = next.outputs[0];
      g.nodes.erase(g.nodes.begin() + j);
      changed = true;
    }
  }
  return absl::OkStatus();
}

absl::Status OptimizeGraph(Graph& g) {
  if (auto s = RemoveIdentities(g); !s.ok()) return s;
  if (auto s = FuseGelu(g); !s.ok()) return s;
  if (auto s = FoldBatchNorm(g); !s.ok()) return s;
  if (auto s = FuseQdq(g); !s.ok()) return s;
  if (auto s = FusePostOps(g); !s.ok()) return s;
  return g.TopologicalSort();
}

}  // namespace octet
