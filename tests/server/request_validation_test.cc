#include "server/request_validation.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/status_util.h"
#include "server/tensor_proto_util.h"

namespace octet::server {
namespace {

using tensorflow::TensorProto;
using tensorflow::serving::PredictRequest;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<TensorSpec> Inputs() {
  return {TensorSpec{"image", DType::kF32, {-1, 2, 3}, {"batch", "", ""}},
          TensorSpec{"mask", DType::kU8, {-1, 2}, {"batch", ""}}};
}
std::vector<TensorSpec> Outputs() {
  return {TensorSpec{"logits", DType::kF32, {-1, 4}, {}},
          TensorSpec{"label", DType::kS64, {-1}, {}}};
}

TensorProto FloatProto(std::vector<int64_t> shape, const std::vector<float>& values,
                       bool as_content) {
  TensorProto p;
  p.set_dtype(tensorflow::DT_FLOAT);
  for (int64_t d : shape) p.mutable_tensor_shape()->add_dim()->set_size(d);
  if (as_content) {
    p.set_tensor_content(values.data(), values.size() * sizeof(float));
  } else {
    for (float v : values) p.add_float_val(v);
  }
  return p;
}

TensorProto MaskProto(int64_t rows) {
  TensorProto p;
  p.set_dtype(tensorflow::DT_UINT8);
  p.mutable_tensor_shape()->add_dim()->set_size(rows);
  p.mutable_tensor_shape()->add_dim()->set_size(2);
  for (int64_t i = 0; i < rows * 2; ++i) p.add_int_val(static_cast<int>(i % 256));
  return p;
}

PredictRequest GoodRequest(int64_t rows, bool as_content = true) {
  PredictRequest r;
  r.mutable_model_spec()->set_name("m");
  std::vector<float> values(static_cast<size_t>(rows * 6));
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * static_cast<float>(i);
  (*r.mutable_inputs())["image"] = FloatProto({rows, 2, 3}, values, as_content);
  (*r.mutable_inputs())["mask"] = MaskProto(rows);
  return r;
}

absl::Status Validate(const PredictRequest& r, ValidationLimits limits = {}) {
  return ValidatePredictRequest(r, Inputs(), Outputs(), limits).status();
}

TEST(RequestValidationTest, AcceptsContentAndTypedValues) {
  for (bool as_content : {true, false}) {
    absl::StatusOr<ValidatedRequest> v =
        ValidatePredictRequest(GoodRequest(3, as_content), Inputs(), Outputs(), {});
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->rows, 3);
    ASSERT_EQ(v->inputs.size(), 2u);
    EXPECT_EQ(v->inputs[0].shape(), (Shape{3, 2, 3}));
    EXPECT_EQ(v->inputs[0].data_as<float>()[5], 2.5f);
    EXPECT_EQ(v->inputs[1].dtype(), DType::kU8);
    EXPECT_EQ(v->inputs[1].data_as<uint8_t>()[5], 5);
    EXPECT_EQ(v->output_indices, (std::vector<int>{0, 1}));
    EXPECT_EQ(v->batch_key, "");
  }
}

TEST(RequestValidationTest, UnknownInputIsNamed) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["imagee"] = MaskProto(1);
  EXPECT_THAT(Validate(r).message(),
              AllOf(HasSubstr("unknown input 'imagee'"), HasSubstr("'image', 'mask'")));
  EXPECT_EQ(Validate(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RequestValidationTest, MissingInputIsNamed) {
  PredictRequest r = GoodRequest(1);
  r.mutable_inputs()->erase("mask");
  EXPECT_THAT(Validate(r).message(), HasSubstr("missing input 'mask' (DT_UINT8 [-1,2])"));
}

TEST(RequestValidationTest, WrongDtypeIsNamed) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["mask"].set_dtype(tensorflow::DT_INT32);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'mask': dtype DT_INT32 does not match the model's DT_UINT8"));
}

TEST(RequestValidationTest, WrongRankAndDimensionAreNamed) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["image"] = FloatProto({1, 6}, std::vector<float>(6), true);
  EXPECT_THAT(Validate(r).message(),
              AllOf(HasSubstr("input 'image'"), HasSubstr("rank 2"), HasSubstr("rank 3")));
  (*r.mutable_inputs())["image"] = FloatProto({1, 3, 2}, std::vector<float>(6), true);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'image': dimension 1 is 3 but the model expects 2"));
}

TEST(RequestValidationTest, ByteCountMustMatchShape) {
  PredictRequest r = GoodRequest(2);
  (*r.mutable_inputs())["image"].mutable_tensor_content()->resize(47);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'image': tensor_content has 47 bytes but shape [2,2,3] of "
                        "DT_FLOAT needs 48"));
}

TEST(RequestValidationTest, ValueCountMustMatchShape) {
  PredictRequest r = GoodRequest(2, /*as_content=*/false);
  (*r.mutable_inputs())["image"].add_float_val(1.0f);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'image': 13 float_val values but shape [2,2,3] needs 12"));
}

TEST(RequestValidationTest, ValuesInTheWrongFieldAreRejected) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["image"].add_int64_val(3);
  EXPECT_THAT(Validate(r).message(), HasSubstr("input 'image': has int64_val values"));
  PredictRequest both = GoodRequest(1);
  auto& image = (*both.mutable_inputs())["image"];
  for (int i = 0; i < 6; ++i) image.add_float_val(1);
  EXPECT_THAT(Validate(both).message(), HasSubstr("both tensor_content and float_val"));
}

TEST(RequestValidationTest, EightBitRangeIsChecked) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["mask"].set_int_val(1, 256);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'mask': element 1 = 256 is out of range for DT_UINT8"));
}

TEST(RequestValidationTest, UnsupportedDtypeAndNegativeShape) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())["image"].set_dtype(tensorflow::DT_STRING);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'image': dtype DT_STRING does not match the model's DT_FLOAT"));
  EXPECT_THAT(TensorFromProto((*r.mutable_inputs())["image"], "image").status().message(),
              HasSubstr("input 'image': dtype DT_STRING is not supported"));
  PredictRequest neg = GoodRequest(1);
  (*neg.mutable_inputs())["image"].mutable_tensor_shape()->mutable_dim(1)->set_size(-2);
  EXPECT_THAT(Validate(neg).message(), HasSubstr("negative size"));
  PredictRequest huge = GoodRequest(1);
  for (int i = 0; i < 3; ++i) {
    (*huge.mutable_inputs())["image"].mutable_tensor_shape()->mutable_dim(i)->set_size(1 << 30);
  }
  EXPECT_THAT(Validate(huge).message(), HasSubstr("too large"));
}

TEST(RequestValidationTest, BatchSizesMustAgreeAndFitTheLimit) {
  PredictRequest r = GoodRequest(2);
  (*r.mutable_inputs())["mask"] = MaskProto(3);
  EXPECT_THAT(Validate(r).message(),
              HasSubstr("input 'mask': batch size 3 differs from input 'image''s 2"));
  ValidationLimits limits;
  limits.max_request_rows = 4;
  EXPECT_TRUE(Validate(GoodRequest(4), limits).ok());
  EXPECT_THAT(Validate(GoodRequest(5), limits).message(),
              HasSubstr("input 'image': batch of 5 rows exceeds the limit of 4 rows per request"));
  EXPECT_THAT(Validate(GoodRequest(0), limits).message(),
              HasSubstr("batch (dimension 0) is empty"));
}

TEST(RequestValidationTest, NanPolicy) {
  PredictRequest r = GoodRequest(1);
  float* data =
      reinterpret_cast<float*>((*r.mutable_inputs())["image"].mutable_tensor_content()->data());
  data[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(Validate(r).ok());  // NAN_ALLOW passes it to the model
  ValidationLimits reject;
  reject.nan_policy = config::NAN_REJECT;
  EXPECT_THAT(Validate(r, reject).message(), HasSubstr("input 'image': element 4 is NaN"));
  data[4] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(Validate(r, reject).message(), HasSubstr("element 4 is infinite"));
}

TEST(RequestValidationTest, OutputFilterAndSignature) {
  PredictRequest r = GoodRequest(1);
  r.add_output_filter("label");
  absl::StatusOr<ValidatedRequest> v = ValidatePredictRequest(r, Inputs(), Outputs(), {});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->output_indices, (std::vector<int>{1}));
  r.add_output_filter("nope");
  EXPECT_THAT(Validate(r).message(), HasSubstr("unknown output 'nope'"));
  PredictRequest twice = GoodRequest(1);
  twice.add_output_filter("label");
  twice.add_output_filter("label");
  EXPECT_THAT(Validate(twice).message(), HasSubstr("twice"));
  PredictRequest sig = GoodRequest(1);
  sig.mutable_model_spec()->set_signature_name("classify");
  EXPECT_THAT(Validate(sig).message(), HasSubstr("signature 'classify' not found"));
  sig.mutable_model_spec()->set_signature_name("serving_default");
  EXPECT_TRUE(Validate(sig).ok());
}

TEST(RequestValidationTest, DynamicInnerDimensionsGoInTheBatchKey) {
  std::vector<TensorSpec> inputs = {TensorSpec{"seq", DType::kS64, {-1, -1}, {}}};
  PredictRequest r;
  TensorProto p;
  p.set_dtype(tensorflow::DT_INT64);
  p.mutable_tensor_shape()->add_dim()->set_size(1);
  p.mutable_tensor_shape()->add_dim()->set_size(7);
  for (int i = 0; i < 7; ++i) p.add_int64_val(i);
  (*r.mutable_inputs())["seq"] = p;
  absl::StatusOr<ValidatedRequest> v = ValidatePredictRequest(r, inputs, Outputs(), {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->batch_key, "seq:1=7;");
}

TEST(RequestValidationTest, HostileNamesAreClippedAndMessagesTruncated) {
  PredictRequest r = GoodRequest(1);
  (*r.mutable_inputs())[std::string(100000, 'z') + "\n"] = MaskProto(1);
  absl::Status st = Validate(r);
  EXPECT_LT(st.message().size(), 400u);
  EXPECT_THAT(std::string(st.message()), HasSubstr("zzz...'"));
  grpc::Status g = ToGrpcStatus(absl::InvalidArgumentError(std::string(5000, 'e')));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LE(g.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_THAT(g.error_message(), HasSubstr("(truncated)"));
  // A multi-byte character is never cut in half.
  std::string accents;
  for (int i = 0; i < 800; ++i) accents += "\xC3\xA9";
  std::string cut = TruncateMessage(accents, 101);
  EXPECT_EQ((cut.size() - std::string("... (truncated)").size()) % 2, 0u);
}

TEST(TensorProtoUtilTest, RoundTripsEveryServedDtype) {
  for (DType dtype :
       {DType::kF32, DType::kU8, DType::kS8, DType::kS32, DType::kS64, DType::kBool}) {
    Tensor t = Tensor::Zeros(dtype, {2, 3});
    for (size_t i = 0; i < t.byte_size(); ++i) {
      static_cast<uint8_t*>(t.data())[i] =
          dtype == DType::kBool ? static_cast<uint8_t>(i % 2) : static_cast<uint8_t>(i * 7);
    }
    TensorProto p;
    TensorToProto(t, &p);
    EXPECT_EQ(FromDataType(p.dtype()), dtype);
    absl::StatusOr<Tensor> back = TensorFromProto(p, "t");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->shape(), t.shape());
    EXPECT_EQ(std::string(static_cast<const char*>(back->data()), back->byte_size()),
              std::string(static_cast<const char*>(t.data()), t.byte_size()));
  }
}

TEST(TensorProtoUtilTest, TypedFieldsOfEachDtype) {
  TensorProto p;
  p.set_dtype(tensorflow::DT_INT8);
  p.mutable_tensor_shape()->add_dim()->set_size(3);
  for (int v : {-128, 0, 127}) p.add_int_val(v);
  absl::StatusOr<Tensor> t = TensorFromProto(p, "q");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data_as<int8_t>()[0], -128);
  EXPECT_EQ(t->data_as<int8_t>()[2], 127);
  p.set_int_val(0, -129);
  EXPECT_THAT(TensorFromProto(p, "q").status().message(), HasSubstr("out of range for DT_INT8"));

  TensorProto b;
  b.set_dtype(tensorflow::DT_BOOL);
  b.mutable_tensor_shape()->add_dim()->set_size(2);
  b.add_bool_val(true);
  b.add_bool_val(false);
  ASSERT_TRUE(TensorFromProto(b, "b").ok());
  EXPECT_TRUE(TensorFromProto(b, "b")->data_as<bool>()[0]);
  b.clear_bool_val();
  b.set_tensor_content(std::string("\x01\x02", 2));
  EXPECT_THAT(TensorFromProto(b, "b").status().message(), HasSubstr("not a valid DT_BOOL"));

  TensorProto i64;
  i64.set_dtype(tensorflow::DT_INT64);
  i64.add_int64_val(int64_t{1} << 40);  // scalar
  ASSERT_TRUE(TensorFromProto(i64, "s").ok());
  EXPECT_EQ(TensorFromProto(i64, "s")->data_as<int64_t>()[0], int64_t{1} << 40);

  TensorProto i32;
  i32.set_dtype(tensorflow::DT_INT32);
  i32.mutable_tensor_shape()->add_dim()->set_size(2);
  i32.add_int_val(-5);
  i32.add_int_val(1 << 30);
  ASSERT_TRUE(TensorFromProto(i32, "i").ok());
  EXPECT_EQ(TensorFromProto(i32, "i")->data_as<int32_t>()[1], 1 << 30);
}

}  // namespace
}  // namespace octet::server
