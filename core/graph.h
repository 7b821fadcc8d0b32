// Graph: Octet's in-memory form of an ONNX model after import. Nodes are kept in topological
// order; values are named by strings as in ONNX. Graph passes rewrite it in place.
#ifndef OCTET_CORE_GRAPH_H_
#define OCTET_CORE_GRAPH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace octet {

struct Attribute {
  enum class Type { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kGraph };
  Type type = Type::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

// An activation or residual-sum fused into the producing Conv/Gemm/MatMul by a graph pass.
// Applied in order after the layer's own computation.
struct PostOp {
  enum class Kind { kRelu, kLeakyRelu, kClip, kSigmoid, kTanh, kHardSigmoid, kHardSwish, kSum };
  Kind kind = Kind::kRelu;
  float alpha = 0;  // LeakyRelu slope, Clip min, HardSigmoid alpha
  float beta = 0;   // Clip max, HardSigmoid beta
  // kSum: out += residual. The residual is an extra input appended to the node's inputs.
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;               // "" for the default ONNX domain
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;
  std::vector<PostOp> post_ops;

  bool HasAttr(const std::string& key) const { return attrs.count(key) > 0; }
  int64_t GetInt(const std::string& key, int64_t def) const;
  float GetFloat(const std::string& key, float def) const;
  std::string GetString(const std::string& key, const std::string& def) const;
  std::vector<int64_t> GetInts(const std::string& key, std::vector<int64_t> def = {}) const;
  std::vector<float> GetFloats(const std::string& key, std::vector<float> def = {}) const;
  const Tensor* GetTensor(const std::string& key) const;
  bool HasInput(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  // "Conv 'conv1'" — used at the start of every error about this node.
  std::string Label() const;
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::kF32;
  bool has_shape = false;
  std::vector<int64_t> dims;           // -1 for symbolic/unknown dimensions
  std::vector<std::string> dim_names;  // symbolic names ("" if static or anonymous)
};

class Graph {
 public:
  std::vector<Node> nodes;  // topological order
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  int64_t opset = 13;         // default-domain opset
  int64_t ms_opset = 0;       // com.microsoft opset, if imported

  const Tensor* FindInitializer(const std::string& name) const;
  // Number of nodes consuming `value` plus 1 if it is a graph output.
  int UseCount(const std::string& value) const;
  // Re-sorts nodes topologically; fails on cycles or values with no producer.
  absl::Status TopologicalSort();
  // Removes initializers that no node uses.
  void PruneUnusedInitializers();
};

}  // namespace octet

#endif  // OCTET_CORE_GRAPH_H_
