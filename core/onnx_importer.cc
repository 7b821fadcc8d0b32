#include "core/onnx_importer.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/onnx_tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {
namespace {

absl::StatusOr<Attribute> ConvertAttribute(const onnx::AttributeProto& a) {
  Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT:
      out.type = Attribute::Type::kFloat;
      out.f = a.f();
      break;
    case onnx::AttributeProto::INT:
      out.type = Attribute::Type::kInt;
      out.i = a.i();
      break;
    case onnx::AttributeProto::STRING:
      out.type = Attribute::Type::kString;
      out.s = a.s();
      break;
    case onnx::AttributeProto::TENSOR: {
      out.type = Attribute::Type::kTensor;
      auto t = TensorFromProto(a.t());
      if (!t.ok()) return t.status();
      out.t = *std::move(t);
      break;
    }
    case onnx::AttributeProto::FLOATS:
      out.type = Attribute::Type::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      out.type = Attribute::Type::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      out.type = Attribute::Type::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
      // Control flow (If/Loop/Scan) is not supported; the op check refuses the node.
      out.type = Attribute::Type::kGraph;
      break;
    default:
      return absl::UnimplementedError(
          absl::StrCat("attribute '", a.name(), "' has an unsupported type ", a.type()));
  }
  return out;
}

// A Constant node's value as a tensor.
absl::StatusOr<Tensor> ConstantValue(const Node& node) {
  if (const Tensor* t = node.GetTensor("value")) return *t;
  auto it = node.attrs.find("value_float");
  if (it != node.attrs.end()) return Tensor::FromFloats({}, {it->second.f});
  if ((it = node.attrs.find("value_floats")) != node.attrs.end()) {
    return Tensor::FromFloats({static_cast<int64_t>(it->second.floats.size())}, it->second.floats);
  }
  if ((it = node.attrs.find("value_int")) != node.attrs.end()) {
    return Tensor::FromInt64s({}, {it->second.i});
  }
  if ((it = node.attrs.find("value_ints")) != node.attrs.end()) {
    return Tensor::FromInt64s({static_cast<int64_t>(it->second.ints.size())}, it->second.ints);
  }
  return absl::UnimplementedError(
      absl::StrCat(node.Label(), ": only value, value_float(s) and value_int(s) are supported "
                                 "(sparse and string constants are not)"));
}

ValueInfo ConvertValueInfo(const onnx::ValueInfoProto& v, absl::Status* status) {
  ValueInfo info;
  info.name = v.name();
  if (!v.type().has_tensor_type()) {
    *status = absl::UnimplementedError(
        absl::StrCat("graph value '", v.name(), "' is not a tensor (sequences/maps unsupported)"));
    return info;
  }
  const auto& tt = v.type().tensor_type();
  auto dtype = DTypeFromOnnx(tt.elem_type());
  if (!dtype.ok()) {
    *status = absl::UnimplementedError(
        absl::StrCat("graph value '", v.name(), "': ", dtype.status().message()));
    return info;
  }
  info.dtype = *dtype;
  info.has_shape = tt.has_shape();
  for (const auto& d : tt.shape().dim()) {
    info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    info.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
  }
  return info;
}

}  // namespace

absl::StatusOr<Graph> ImportOnnxModel(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("not a valid ONNX model (protobuf parse failed)");
  }
  if (!model.has_graph()) return absl::InvalidArgumentError("ONNX model has no graph");
  Graph g;
  g.opset = 0;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
    if (op.domain() == "com.microsoft") g.ms_opset = op.version();
  }
  if (g.opset == 0) g.opset = 1;
  if (g.opset > kMaxOnnxOpset) {
    return absl::UnimplementedError(absl::StrCat("model uses ONNX opset ", g.opset,
                                                 "; Octet supports opsets up to ", kMaxOnnxOpset));
  }
  const onnx::GraphProto& gp = model.graph();
  for (const auto& init : gp.initializer()) {
    auto t = TensorFromProto(init);
    if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat("initializer: ", t.status().message()));
    g.initializers[init.name()] = *std::move(t);
  }
  if (gp.sparse_initializer_size() > 0) {
    return absl::UnimplementedError("sparse initializers are not supported");
  }
  absl::Status status;
  for (const auto& in : gp.input()) {
    if (g.initializers.count(in.name())) continue;  // old exporters list weights as inputs
    g.inputs.push_back(ConvertValueInfo(in, &status));
    if (!status.ok()) return status;
  }
  for (const auto& out : gp.output()) {
    g.outputs.push_back(ConvertValueInfo(out, &status));
    if (!status.ok()) return status;
  }
  std::set<std::string> names;
  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    Node node;
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    node.name = np.name().empty() ? absl::StrCat(np.op_type(), "_", i) : np.name();
    if (!names.insert(node.name).second) node.name = absl::StrCat(node.name, "_", i);
    node.inputs.assign(np.input().begin(), np.input().end());
    node.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) {
      if (!a.ref_attr_name().empty()) {
        return absl::UnimplementedError(
            absl::StrCat(node.Label(), ": attribute references are not supported"));
      }
      auto attr = ConvertAttribute(a);
      if (!attr.ok()) {
        return absl::Status(attr.status().code(),
                            absl::StrCat(node.Label(), ": ", attr.status().message()));
      }
      node.attrs[a.name()] = *std::move(attr);
    }
    if (node.op_type == "Constant" && node.domain.empty()) {
      auto value = ConstantValue(node);
      if (!value.ok()) return value.status();
      if (node.outputs.size() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(node.Label(), ": needs exactly one output"));
      }
      g.initializers[node.outputs[0]] = *std::move(value);
      continue;
    }
    g.nodes.push_back(std::move(node));
  }
  if (auto s = g.TopologicalSort(); !s.ok()) return s;
  return g;
}

}  // namespace octet
