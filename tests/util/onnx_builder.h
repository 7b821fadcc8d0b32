// OnnxBuilder: builds small ONNX models in C++ for tests (onnx::ModelProto from libonnx-dev),
// serialized with Bytes() for Model::LoadFromBytes.
//
//   OnnxBuilder b;
//   b.Input("x", {-1, 3, 8, 8});  // -1: symbolic dimension ("N")
//   b.Initializer("w", Tensor::FromFloats({4, 3, 3, 3}, weights));
//   b.Node("Conv", {"x", "w"}, {"y"}).Ints("pads", {1, 1, 1, 1});
//   b.Output("y");
//   auto model = Model::LoadFromBytes(b.Bytes());
#ifndef OCTET_TESTS_UTIL_ONNX_BUILDER_H_
#define OCTET_TESTS_UTIL_ONNX_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "onnx/onnx_pb.h"

namespace octet {

// Sets attributes on one node of an OnnxBuilder's graph.
class OnnxNodeRef {
 public:
  explicit OnnxNodeRef(onnx::NodeProto* node) : node_(node) {}
  OnnxNodeRef& Int(const std::string& name, int64_t v);
  OnnxNodeRef& Float(const std::string& name, float v);
  OnnxNodeRef& String(const std::string& name, const std::string& v);
  OnnxNodeRef& Ints(const std::string& name, const std::vector<int64_t>& v);
  OnnxNodeRef& Floats(const std::string& name, const std::vector<float>& v);
  onnx::NodeProto* proto() { return node_; }

 private:
  onnx::AttributeProto* Add(const std::string& name, onnx::AttributeProto::AttributeType type);
  onnx::NodeProto* node_;
};

class OnnxBuilder {
 public:
  // A model importing the default domain at `opset`.
  explicit OnnxBuilder(int64_t opset = 13);

  // A graph input; negative dimensions are symbolic, named "N" (the first) or "d<i>".
  OnnxBuilder& Input(const std::string& name, const std::vector<int64_t>& dims,
                     DType dtype = DType::kF32);
  // A graph output (shape left to the engine's inference).
  OnnxBuilder& Output(const std::string& name, DType dtype = DType::kF32);
  // An initializer holding a copy of `value` (TensorToProto: stored as raw_data).
  OnnxBuilder& Initializer(const std::string& name, const Tensor& value);
  // Shorthand for a float initializer.
  OnnxBuilder& Initializer(const std::string& name, const Shape& shape,
                           const std::vector<float>& values);
  // Appends a node (named "<op><index>" unless `name` is given).
  OnnxNodeRef Node(const std::string& op_type, const std::vector<std::string>& inputs,
                   const std::vector<std::string>& outputs, const std::string& name = "");

  std::string Bytes() const { return model_.SerializeAsString(); }
  onnx::ModelProto& proto() { return model_; }

  // The ONNX element type of an Octet dtype (core's OnnxFromDType).
  static int ElemType(DType dtype);

 private:
  onnx::ModelProto model_;
};

}  // namespace octet

#endif  // OCTET_TESTS_UTIL_ONNX_BUILDER_H_
