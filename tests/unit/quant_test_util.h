// Helpers for the INT8 tests: a small ONNX model builder with typed tensors, and random data.
#ifndef OCTET_TESTS_UNIT_QUANT_TEST_UTIL_H_
#define OCTET_TESTS_UNIT_QUANT_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/onnx_tensor.h"
#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {
namespace testing_util {

class QModelBuilder {
 public:
  explicit QModelBuilder(int opset = 13) {
    model_.set_ir_version(8);
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
  }
  void Input(const std::string& name, DType dtype, const Shape& dims) {
    Value(model_.mutable_graph()->add_input(), name, dtype, dims);
  }
  void Output(const std::string& name, DType dtype = DType::kF32) {
    Value(model_.mutable_graph()->add_output(), name, dtype, {});
  }
  void Init(const std::string& name, const Tensor& t) {
    *model_.mutable_graph()->add_initializer() = TensorToProto(t, name);
  }
  // An input fed at run time or a constant, as the test wants.
  void InputOrInit(const std::string& name, const Tensor& t, bool constant) {
    if (constant) {
      Init(name, t);
    } else {
      Input(name, t.dtype(), t.shape());
    }
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                        std::vector<std::string> out, const std::string& name = "") {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(model_.graph().node_size()) : name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  static void Ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static void Int(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  std::string Bytes() const { return model_.SerializeAsString(); }
  onnx::ModelProto& proto() { return model_; }

 private:
  static void Value(onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const Shape& dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(OnnxFromDType(dtype));
    auto* shape = tt->mutable_shape();
    for (auto d : dims) shape->add_dim()->set_dim_value(d);
  }
  onnx::ModelProto model_;
};

inline Tensor RandomInts(DType dtype, const Shape& shape, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  Tensor t = Tensor::Zeros(dtype, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const int v = dist(rng);
    switch (dtype) {
      case DType::kU8:
        t.data_as<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
      case DType::kS8:
        t.data_as<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      default:
        t.data_as<int32_t>()[i] = v;
        break;
    }
  }
  return t;
}

inline Tensor RandomFloats(const Shape& shape, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::Zeros(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data_as<float>()[i] = dist(rng);
  return t;
}

inline Tensor Scalar(DType dtype, double v) {
  Tensor t = Tensor::Zeros(dtype, {});
  switch (dtype) {
    case DType::kF32:
      *t.data_as<float>() = static_cast<float>(v);
      break;
    case DType::kU8:
      *t.data_as<uint8_t>() = static_cast<uint8_t>(v);
      break;
    case DType::kS8:
      *t.data_as<int8_t>() = static_cast<int8_t>(v);
      break;
    default:
      *t.data_as<int32_t>() = static_cast<int32_t>(v);
      break;
  }
  return t;
}

}  // namespace testing_util
}  // namespace octet

#endif  // OCTET_TESTS_UNIT_QUANT_TEST_UTIL_H_
