#include "core/onnx_writer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/onnx_tensor.h"

namespace octet {
namespace {

absl::Status ConvertAttribute(const Node& node, const std::string& name, const Attribute& a,
                              onnx::AttributeProto* out) {
  out->set_name(name);
  switch (a.type) {
    case Attribute::Type::kFloat:
      out->set_type(onnx::AttributeProto::FLOAT);
      out->set_f(a.f);
      break;
    case Attribute::Type::kInt:
      out->set_type(onnx::AttributeProto::INT);
      out->set_i(a.i);
      break;
    case Attribute::Type::kString:
      out->set_type(onnx::AttributeProto::STRING);
      out->set_s(a.s);
      break;
    case Attribute::Type::kTensor:
      out->set_type(onnx::AttributeProto::TENSOR);
      *out->mutable_t() = TensorToProto(a.t, "");
      break;
    case Attribute::Type::kFloats:
      out->set_type(onnx::AttributeProto::FLOATS);
      for (float f : a.floats) out->add_floats(f);
      break;
    case Attribute::Type::kInts:
      out->set_type(onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) out->add_ints(i);
      break;
    case Attribute::Type::kStrings:
      out->set_type(onnx::AttributeProto::STRINGS);
      for (const std::string& s : a.strings) out->add_strings(s);
      break;
    case Attribute::Type::kGraph:
      return absl::UnimplementedError(absl::StrCat(
          node.Label(), ": attribute '", name, "' is a subgraph, which cannot be written back"));
  }
  return absl::OkStatus();
}

void ConvertValueInfo(const ValueInfo& v, onnx::ValueInfoProto* out) {
  out->set_name(v.name);
  auto* tt = out->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(OnnxFromDType(v.dtype));
  if (!v.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < v.dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (v.dims[i] >= 0) {
      d->set_dim_value(v.dims[i]);
    } else if (i < v.dim_names.size() && !v.dim_names[i].empty()) {
      d->set_dim_param(v.dim_names[i]);
    }
  }
}

}  // namespace

absl::StatusOr<onnx::ModelProto> GraphToModelProto(const Graph& graph) {
  onnx::ModelProto model;
  // IR version 7 goes with opsets 12-14, 8 with 15-18 (onnx/helper.py VERSION_TABLE).
  model.set_ir_version(graph.opset >= 15 ? 8 : 7);
  model.set_producer_name("octet");
  auto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(graph.opset);
  if (graph.ms_opset > 0) {
    op = model.add_opset_import();
    op->set_domain("com.microsoft");
    op->set_version(graph.ms_opset);
  }
  onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name("octet");
  for (const Node& n : graph.nodes) {
    if (!n.post_ops.empty() || n.domain == "octet") {
      return absl::UnimplementedError(
          absl::StrCat(n.Label(), ": Octet-fused nodes cannot be written as ONNX"));
    }
    onnx::NodeProto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const std::string& in : n.inputs) np->add_input(in);
    for (const std::string& o : n.outputs) np->add_output(o);
    for (const auto& [name, attr] : n.attrs) {
      if (auto s = ConvertAttribute(n, name, attr, np->add_attribute()); !s.ok()) return s;
    }
  }
  for (const auto& [name, t] : graph.initializers) *gp->add_initializer() = TensorToProto(t, name);
  for (const ValueInfo& v : graph.inputs) ConvertValueInfo(v, gp->add_input());
  for (const ValueInfo& v : graph.outputs) ConvertValueInfo(v, gp->add_output());
  return model;
}

absl::StatusOr<std::string> SerializeGraph(const Graph& graph) {
  absl::StatusOr<onnx::ModelProto> model = GraphToModelProto(graph);
  if (!model.ok()) return model.status();
  std::string bytes;
  if (!model->SerializeToString(&bytes)) {
    return absl::InternalError("serializing the ONNX model failed (larger than 2 GB?)");
  }
  return bytes;
}

}  // namespace octet
