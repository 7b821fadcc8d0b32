#include "tests/util/onnx_builder.h"

#include "core/onnx_tensor.h"

namespace octet {

onnx::AttributeProto* OnnxNodeRef::Add(const std::string& name,
                                       onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto* a = node_->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}

OnnxNodeRef& OnnxNodeRef::Int(const std::string& name, int64_t v) {
  Add(name, onnx::AttributeProto::INT)->set_i(v);
  return *this;
}

OnnxNodeRef& OnnxNodeRef::Float(const std::string& name, float v) {
  Add(name, onnx::AttributeProto::FLOAT)->set_f(v);
  return *this;
}

OnnxNodeRef& OnnxNodeRef::String(const std::string& name, const std::string& v) {
  Add(name, onnx::AttributeProto::STRING)->set_s(v);
  return *this;
}

OnnxNodeRef& OnnxNodeRef::Ints(const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = Add(name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
  return *this;
}

OnnxNodeRef& OnnxNodeRef::Floats(const std::string& name, const std::vector<float>& v) {
  onnx::AttributeProto* a = Add(name, onnx::AttributeProto::FLOATS);
  for (float x : v) a->add_floats(x);
  return *this;
}

OnnxBuilder::OnnxBuilder(int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("octet-tests");
  onnx::OperatorSetIdProto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

int OnnxBuilder::ElemType(DType dtype) { return OnnxFromDType(dtype); }

OnnxBuilder& OnnxBuilder::Input(const std::string& name, const std::vector<int64_t>& dims,
                                DType dtype) {
  onnx::ValueInfoProto* v = model_.mutable_graph()->add_input();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(ElemType(dtype));
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (dims[i] < 0) {
      d->set_dim_param(i == 0 ? "N" : "d" + std::to_string(i));
    } else {
      d->set_dim_value(dims[i]);
    }
  }
  return *this;
}

OnnxBuilder& OnnxBuilder::Output(const std::string& name, DType dtype) {
  onnx::ValueInfoProto* v = model_.mutable_graph()->add_output();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(ElemType(dtype));
  return *this;
}

OnnxBuilder& OnnxBuilder::Initializer(const std::string& name, const Tensor& value) {
  *model_.mutable_graph()->add_initializer() = TensorToProto(value, name);
  return *this;
}

OnnxBuilder& OnnxBuilder::Initializer(const std::string& name, const Shape& shape,
                                      const std::vector<float>& values) {
  return Initializer(name, Tensor::FromFloats(shape, values));
}

OnnxNodeRef OnnxBuilder::Node(const std::string& op_type, const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs, const std::string& name) {
  onnx::NodeProto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op_type);
  n->set_name(name.empty() ? op_type + std::to_string(model_.graph().node_size()) : name);
  for (const auto& s : inputs) n->add_input(s);
  for (const auto& s : outputs) n->add_output(s);
  return OnnxNodeRef(n);
}

}  // namespace octet
