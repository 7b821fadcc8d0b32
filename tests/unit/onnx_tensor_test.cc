#include "core/onnx_tensor.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

using ::onnx::TensorProto;
using ::testing::HasSubstr;

const char kNodeData[] = "/usr/share/libonnx-testdata/data/node";

std::string NodeFile(const std::string& test, const std::string& file) {
  return absl::StrCat(kNodeData, "/", test, "/test_data_set_0/", file);
}

Tensor MustRead(const std::string& path, const TensorProtoOptions& options = {}) {
  absl::StatusOr<Tensor> t = ReadTensorProtoFile(path, options);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : Tensor();
}

void ExpectInvalid(const absl::StatusOr<Tensor>& t, const std::string& needle) {
  ASSERT_FALSE(t.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(needle));
}

// ---------------------------------------------------------------------------------------------
// ONNX backend test data, checked against values from the operators' documentation.

TEST(OnnxTensorTest, AddInputsAndOutputAgree) {
  Tensor x = MustRead(NodeFile("test_add", "input_0.pb"));
  Tensor y = MustRead(NodeFile("test_add", "input_1.pb"));
  Tensor sum = MustRead(NodeFile("test_add", "output_0.pb"));
  ASSERT_EQ(x.shape(), (Shape{3, 4, 5}));
  ASSERT_EQ(sum.shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(sum.dtype(), DType::kF32);
  for (int64_t i = 0; i < 60; ++i) {
    EXPECT_EQ(sum.data_as<float>()[i], x.data_as<float>()[i] + y.data_as<float>()[i]) << i;
  }
}

TEST(OnnxTensorTest, DequantizeLinearExampleUint8) {
  // From the DequantizeLinear docs: x = [0, 3, 128, 255], scale 2, zero point 128.
  Tensor x = MustRead(NodeFile("test_dequantizelinear", "input_0.pb"));
  EXPECT_EQ(x.dtype(), DType::kU8);
  EXPECT_EQ(x.ToInt64Vector(), (std::vector<int64_t>{0, 3, 128, 255}));
  Tensor zp = MustRead(NodeFile("test_dequantizelinear", "input_2.pb"));
  EXPECT_EQ(zp.dtype(), DType::kU8);
  EXPECT_EQ(zp.rank(), 0);
  EXPECT_EQ(zp.ToInt64Vector(), (std::vector<int64_t>{128}));
  Tensor y = MustRead(NodeFile("test_dequantizelinear", "output_0.pb"));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(y.data_as<float>()[i], 2.0f * (x.ToInt64Vector()[i] - 128)) << i;
  }
}

TEST(OnnxTensorTest, ConvIntegerExampleInt32Output) {
  // ConvInteger docs: x = 2..10 (uint8 3x3), w = ones 2x2, x_zero_point 1 -> [12, 16, 24, 28].
  Tensor x = MustRead(NodeFile("test_basic_convinteger", "input_0.pb"));
  EXPECT_EQ(x.dtype(), DType::kU8);
  EXPECT_EQ(x.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(x.ToInt64Vector(), (std::vector<int64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  Tensor y = MustRead(NodeFile("test_basic_convinteger", "output_0.pb"));
  EXPECT_EQ(y.dtype(), DType::kS32);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.ToInt64Vector(), (std::vector<int64_t>{12, 16, 24, 28}));
}

TEST(OnnxTensorTest, ArgMaxExampleInt64Output) {
  // ArgMax docs: data = [[2, 1], [3, 10]], axis 0, keepdims -> [[1, 1]].
  Tensor data = MustRead(NodeFile("test_argmax_default_axis_example", "input_0.pb"));
  EXPECT_EQ(data.shape(), (Shape{2, 2}));
  EXPECT_EQ(data.ToInt64Vector(), (std::vector<int64_t>{2, 1, 3, 10}));
  Tensor result = MustRead(NodeFile("test_argmax_default_axis_example", "output_0.pb"));
  EXPECT_EQ(result.dtype(), DType::kS64);
  EXPECT_EQ(result.shape(), (Shape{1, 2}));
  EXPECT_EQ(result.ToInt64Vector(), (std::vector<int64_t>{1, 1}));
}

TEST(OnnxTensorTest, Int8AndBoolData) {
  Tensor x = MustRead(NodeFile("test_clip_default_int8_inbounds", "input_0.pb"));
  EXPECT_EQ(x.dtype(), DType::kS8);
  EXPECT_EQ(x.ToInt64Vector(), (std::vector<int64_t>{-1, 0, 1}));

  Tensor a = MustRead(NodeFile("test_and2d", "input_0.pb"));
  Tensor b = MustRead(NodeFile("test_and2d", "input_1.pb"));
  Tensor out = MustRead(NodeFile("test_and2d", "output_0.pb"));
  ASSERT_EQ(out.dtype(), DType::kBool);
  ASSERT_EQ(out.shape(), (Shape{3, 4}));
  int ones = 0;
  for (int i = 0; i < 12; ++i) {
    uint8_t va = a.data_as<uint8_t>()[i], vb = b.data_as<uint8_t>()[i];
    ASSERT_LE(va, 1);
    ASSERT_LE(vb, 1);
    EXPECT_EQ(out.data_as<uint8_t>()[i], va & vb) << i;
    ones += va;
  }
  EXPECT_GT(ones, 0);
  EXPECT_LT(ones, 12);
}

onnx::ModelProto LoadModel(const std::string& test) {
  std::ifstream in(absl::StrCat(kNodeData, "/", test, "/model.onnx"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes)) << test;
  return model;
}

TEST(OnnxTensorTest, ConstantFloatDataMatchesRawOutput) {
  // The Constant node's value uses float_data; the reference output stores the same values raw.
  onnx::ModelProto model = LoadModel("test_constant");
  ASSERT_EQ(model.graph().node_size(), 1);
  const TensorProto& value = model.graph().node(0).attribute(0).t();
  ASSERT_GT(value.float_data_size(), 0);
  ASSERT_FALSE(value.has_raw_data());
  absl::StatusOr<Tensor> constant = TensorFromProto(value);
  ASSERT_TRUE(constant.ok()) << constant.status();
  Tensor expected = MustRead(NodeFile("test_constant", "output_0.pb"));
  ASSERT_EQ(constant->shape(), (Shape{5, 5}));
  ASSERT_EQ(expected.shape(), (Shape{5, 5}));
  EXPECT_EQ(std::memcmp(constant->data(), expected.data(), 25 * sizeof(float)), 0);
}

TEST(OnnxTensorTest, ConstantOfShapeInt32DataValue) {
  onnx::ModelProto model = LoadModel("test_constantofshape_int_zeros");
  const TensorProto& value = model.graph().node(0).attribute(0).t();
  ASSERT_GT(value.int32_data_size(), 0);
  absl::StatusOr<Tensor> t = TensorFromProto(value);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kS32);
  EXPECT_EQ(t->shape(), (Shape{1}));
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{0}));
}

TEST(OnnxTensorTest, Float16AndDoubleRefusedUnlessConverted) {
  ExpectInvalid(ReadTensorProtoFile(NodeFile("test_cast_FLOAT16_to_FLOAT", "input_0.pb")),
                "tensor 'input': element type FLOAT16 is not supported");
  ExpectInvalid(ReadTensorProtoFile(NodeFile("test_cast_DOUBLE_to_FLOAT", "input_0.pb")),
                "tensor 'input': element type DOUBLE is not supported");

  // FLOAT16 -> f32 is exact: Cast's reference output must match bit for bit.
  TensorProtoOptions options;
  options.float16_to_f32 = true;
  options.double_to_f32 = true;
  for (const char* test : {"test_cast_FLOAT16_to_FLOAT", "test_cast_DOUBLE_to_FLOAT"}) {
    SCOPED_TRACE(test);
    Tensor in = MustRead(NodeFile(test, "input_0.pb"), options);
    Tensor out = MustRead(NodeFile(test, "output_0.pb"));
    ASSERT_EQ(in.dtype(), DType::kF32);
    ASSERT_EQ(in.shape(), out.shape());
    EXPECT_EQ(std::memcmp(in.data(), out.data(), in.byte_size()), 0);
  }
}

TEST(OnnxTensorTest, UnsupportedTypesNamed) {
  ExpectInvalid(ReadTensorProtoFile(NodeFile("test_cast_STRING_to_FLOAT", "input_0.pb")),
                "element type STRING is not supported");
  ExpectInvalid(ReadTensorProtoFile(NodeFile("test_max_int16", "input_0.pb")),
                "tensor 'data_0': element type INT16 is not supported");
  // The error from the file reader also names the file.
  std::string path = NodeFile("test_max_int16", "input_0.pb");
  EXPECT_THAT(std::string(ReadTensorProtoFile(path).status().message()), HasSubstr(path));
}

// Every supported tensor in the backend test data converts and converts back to the same bytes.
TEST(OnnxTensorTest, RoundTripsAllBackendTestTensors) {
  int converted = 0;
  for (const auto& test : std::filesystem::directory_iterator(kNodeData)) {
    for (const auto& file : std::filesystem::recursive_directory_iterator(test.path())) {
      if (file.path().extension() != ".pb") continue;
      absl::StatusOr<TensorProto> proto = ReadTensorProto(file.path().string());
      ASSERT_TRUE(proto.ok()) << proto.status();
      if (!DTypeFromOnnx(proto->data_type()).ok() || !proto->has_raw_data()) continue;
      absl::StatusOr<Tensor> t = TensorFromProto(*proto);
      ASSERT_TRUE(t.ok()) << file.path() << ": " << t.status();
      TensorProto back = TensorToProto(*t, proto->name());
      ASSERT_EQ(back.data_type(), proto->data_type()) << file.path();
      ASSERT_EQ(back.dims_size(), proto->dims_size()) << file.path();
      for (int i = 0; i < back.dims_size(); ++i) ASSERT_EQ(back.dims(i), proto->dims(i));
      ASSERT_EQ(back.raw_data(), proto->raw_data()) << file.path();
      ASSERT_EQ(back.name(), proto->name());
      ++converted;
    }
  }
  EXPECT_GT(converted, 2000);
}

// ---------------------------------------------------------------------------------------------
// Typed fields and malformed protos, built by hand.

TensorProto Proto(int32_t type, std::vector<int64_t> dims) {
  TensorProto p;
  p.set_name("w");
  p.set_data_type(type);
  for (int64_t d : dims) p.add_dims(d);
  return p;
}

TEST(OnnxTensorTest, TypedFieldsPerOnnxSpec) {
  TensorProto i8 = Proto(TensorProto::INT8, {3});
  for (int v : {-128, 0, 127}) i8.add_int32_data(v);
  absl::StatusOr<Tensor> t = TensorFromProto(i8);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kS8);
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{-128, 0, 127}));

  TensorProto u8 = Proto(TensorProto::UINT8, {2});
  u8.add_int32_data(0);
  u8.add_int32_data(255);
  t = TensorFromProto(u8);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{0, 255}));

  TensorProto b = Proto(TensorProto::BOOL, {3});
  for (int v : {1, 0, 1}) b.add_int32_data(v);
  t = TensorFromProto(b);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kBool);
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{1, 0, 1}));

  TensorProto i32 = Proto(TensorProto::INT32, {2});
  i32.add_int32_data(INT32_MIN);
  i32.add_int32_data(INT32_MAX);
  t = TensorFromProto(i32);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{INT32_MIN, INT32_MAX}));

  TensorProto i64 = Proto(TensorProto::INT64, {1, 2});
  i64.add_int64_data(INT64_MIN);
  i64.add_int64_data(42);
  t = TensorFromProto(i64);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{1, 2}));
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{INT64_MIN, 42}));

  TensorProto f = Proto(TensorProto::FLOAT, {});
  f.add_float_data(-0.75f);
  t = TensorFromProto(f);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rank(), 0);
  EXPECT_EQ(t->data_as<float>()[0], -0.75f);

  // FLOAT16 bits in the low half of int32_data: 1.0, -2.0, smallest subnormal, +inf, 65504.
  TensorProto h = Proto(TensorProto::FLOAT16, {5});
  for (int bits : {0x3c00, 0xc000, 0x0001, 0x7c00, 0x7bff}) h.add_int32_data(bits);
  TensorProtoOptions widen;
  widen.float16_to_f32 = true;
  t = TensorFromProto(h, widen);
  ASSERT_TRUE(t.ok()) << t.status();
  const float* hf = t->data_as<float>();
  EXPECT_EQ(hf[0], 1.0f);
  EXPECT_EQ(hf[1], -2.0f);
  EXPECT_EQ(hf[2], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(hf[3]) && hf[3] > 0);
  EXPECT_EQ(hf[4], 65504.0f);

  TensorProto d = Proto(TensorProto::DOUBLE, {2});
  d.add_double_data(0.1);
  d.add_double_data(-1e10);
  TensorProtoOptions narrow;
  narrow.double_to_f32 = true;
  t = TensorFromProto(d, narrow);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->data_as<float>()[0], 0.1f);
  EXPECT_EQ(t->data_as<float>()[1], -1e10f);
}

TEST(OnnxTensorTest, EmptyTensorNeedsNoData) {
  absl::StatusOr<Tensor> t = TensorFromProto(Proto(TensorProto::FLOAT, {0, 4}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{0, 4}));
}

TEST(OnnxTensorTest, RejectsMalformedProtosNamingTheTensor) {
  TensorProto external = Proto(TensorProto::FLOAT, {2});
  external.set_data_location(TensorProto::EXTERNAL);
  auto* entry = external.add_external_data();
  entry->set_key("location");
  entry->set_value("weights.bin");
  ExpectInvalid(TensorFromProto(external), "tensor 'w': stores its data externally");

  TensorProto short_raw = Proto(TensorProto::FLOAT, {2, 2});
  short_raw.set_raw_data(std::string(12, '\0'));
  ExpectInvalid(TensorFromProto(short_raw),
                "tensor 'w': raw_data has 12 bytes, FLOAT[2,2] needs 16");

  TensorProto few = Proto(TensorProto::FLOAT, {3});
  few.add_float_data(1);
  ExpectInvalid(TensorFromProto(few), "float_data has 1 values, shape [3] needs 3");

  TensorProto both = Proto(TensorProto::FLOAT, {1});
  both.set_raw_data(std::string(4, '\0'));
  both.add_float_data(1);
  ExpectInvalid(TensorFromProto(both), "both raw_data and a typed data field");

  TensorProto wrong_field = Proto(TensorProto::FLOAT, {1});
  wrong_field.add_int64_data(1);
  ExpectInvalid(TensorFromProto(wrong_field), "FLOAT values must be in raw_data or float_data");

  ExpectInvalid(TensorFromProto(Proto(TensorProto::FLOAT, {2})), "has no data");

  TensorProto negative = Proto(TensorProto::FLOAT, {-1});
  ExpectInvalid(TensorFromProto(negative), "negative dimension");

  TensorProto huge = Proto(TensorProto::FLOAT, {1 << 30, 1 << 30, 1 << 30});
  ExpectInvalid(TensorFromProto(huge), "too large");

  TensorProto i8 = Proto(TensorProto::INT8, {1});
  i8.add_int32_data(200);
  ExpectInvalid(TensorFromProto(i8), "int32_data[0] = 200 is out of range for INT8");
  TensorProto u8 = Proto(TensorProto::UINT8, {1});
  u8.add_int32_data(-1);
  ExpectInvalid(TensorFromProto(u8), "out of range for UINT8");

  TensorProto segment = Proto(TensorProto::FLOAT, {1});
  segment.mutable_segment()->set_begin(0);
  segment.add_float_data(1);
  ExpectInvalid(TensorFromProto(segment), "segmented");

  ExpectInvalid(TensorFromProto(Proto(TensorProto::UNDEFINED, {1})), "UNDEFINED");
  ExpectInvalid(TensorFromProto(Proto(TensorProto::BFLOAT16, {1})), "BFLOAT16");
  ExpectInvalid(TensorFromProto(Proto(999, {1})), "UNKNOWN(999)");

  TensorProto unnamed = Proto(TensorProto::FLOAT, {2});
  unnamed.clear_name();
  ExpectInvalid(TensorFromProto(unnamed), "unnamed tensor");
}

TEST(OnnxTensorTest, RoundTripsEveryDtypeThroughSerialization) {
  for (DType dtype :
       {DType::kF32, DType::kU8, DType::kS8, DType::kS32, DType::kS64, DType::kBool}) {
    Tensor t = Tensor::Zeros(dtype, {2, 3});
    auto* p = static_cast<unsigned char*>(t.data());
    for (size_t i = 0; i < t.byte_size(); ++i) {
      p[i] = static_cast<unsigned char>(dtype == DType::kBool ? i % 2 : i * 29 + 3);
    }
    std::string bytes = TensorToProto(t, "x").SerializeAsString();
    TensorProto parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    absl::StatusOr<Tensor> back = TensorFromProto(parsed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->dtype(), dtype);
    EXPECT_EQ(back->shape(), t.shape());
    EXPECT_EQ(std::memcmp(back->data(), t.data(), t.byte_size()), 0) << DTypeName(dtype);
  }
}

TEST(OnnxTensorTest, FileErrorsNameTheFile) {
  absl::StatusOr<Tensor> missing = ReadTensorProtoFile("/nonexistent/input_0.pb");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/input_0.pb"));

  std::string path = ::testing::TempDir() + "/corrupt_input_0.pb";
  std::ofstream(path, std::ios::binary) << std::string("\xff\xff\xff\xff\x0f garbage", 13);
  ExpectInvalid(ReadTensorProtoFile(path), "not a valid serialized onnx.TensorProto");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace octet
