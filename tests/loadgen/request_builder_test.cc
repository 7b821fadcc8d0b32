#include "deploy/bench/request_builder.h"

#include <cstring>
#include <filesystem>

#include "core/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet::bench {
namespace {

using ::testing::HasSubstr;

tensorflow::SignatureDef Signature() {
  tensorflow::SignatureDef sig;
  auto add = [&](const std::string& name, tensorflow::DataType dtype, std::vector<int64_t> dims) {
    tensorflow::TensorInfo& info = (*sig.mutable_inputs())[name];
    info.set_name(name);
    info.set_dtype(dtype);
    for (int64_t d : dims) info.mutable_tensor_shape()->add_dim()->set_size(d);
  };
  add("image", tensorflow::DT_FLOAT, {-1, 1, 28, 28});
  add("ids", tensorflow::DT_INT64, {-1, 5});
  return sig;
}

TEST(RequestBuilderTest, RandomInputsHaveTheSignaturesShapesAndTheBatch) {
  auto request = BuildRandomRequest(Signature(), 8, 1);
  ASSERT_TRUE(request.ok()) << request.status();
  const tensorflow::TensorProto& image = request->inputs().at("image");
  EXPECT_EQ(image.dtype(), tensorflow::DT_FLOAT);
  ASSERT_EQ(image.tensor_shape().dim_size(), 4);
  EXPECT_EQ(image.tensor_shape().dim(0).size(), 8);
  EXPECT_EQ(image.tensor_shape().dim(3).size(), 28);
  ASSERT_EQ(image.tensor_content().size(), 8u * 28 * 28 * sizeof(float));
  std::vector<float> pixels(8 * 28 * 28);
  std::memcpy(pixels.data(), image.tensor_content().data(), image.tensor_content().size());
  for (float p : pixels) ASSERT_TRUE(p >= 0 && p < 1) << p;
  EXPECT_NE(pixels[0], pixels[1]);
  const tensorflow::TensorProto& ids = request->inputs().at("ids");
  EXPECT_EQ(ids.tensor_content().size(), 8u * 5 * sizeof(int64_t));
  EXPECT_EQ(RequestRows(*request), 8);
  // Same seed, same values; another seed, other values. (Tensors compared one by one: the
  // serialized bytes of a protobuf map depend on its iteration order.)
  auto same = BuildRandomRequest(Signature(), 8, 1);
  auto other = BuildRandomRequest(Signature(), 8, 2);
  for (const char* name : {"image", "ids"}) {
    EXPECT_EQ(same->inputs().at(name).tensor_content(), request->inputs().at(name).tensor_content())
        << name;
    EXPECT_NE(other->inputs().at(name).tensor_content(),
              request->inputs().at(name).tensor_content())
        << name;
  }
}

TEST(RequestBuilderTest, UnknownNonBatchDimensionNeedsAnInputFile) {
  tensorflow::SignatureDef sig = Signature();
  (*sig.mutable_inputs())["image"].mutable_tensor_shape()->mutable_dim(2)->set_size(-1);
  auto request = BuildRandomRequest(sig, 1, 1);
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(request.status().message(), HasSubstr("--input image=FILE.npy"));
}

TEST(RequestBuilderTest, NpyInputsAreCheckedAgainstTheSignature) {
  const std::filesystem::path dir = ::testing::TempDir();
  const std::string image = (dir / "octet_bench_image.npy").string();
  const std::string ids = (dir / "octet_bench_ids.npy").string();
  Tensor pixels = Tensor::FromFloats({2, 1, 28, 28}, std::vector<float>(2 * 28 * 28, 0.25f));
  ASSERT_TRUE(WriteNpy(image, pixels).ok());
  ASSERT_TRUE(WriteNpy(ids, Tensor::FromInt64s({2, 5}, std::vector<int64_t>(10, 3))).ok());

  auto request = BuildNpyRequest(Signature(), {{"image", image}, {"ids", ids}});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(RequestRows(*request), 2);
  EXPECT_EQ(request->inputs().at("image").tensor_content(),
            std::string(static_cast<const char*>(pixels.data()), pixels.byte_size()));

  auto missing = BuildNpyRequest(Signature(), {{"image", image}});
  EXPECT_THAT(missing.status().message(), HasSubstr("also needs input 'ids'"));
  auto unknown = BuildNpyRequest(Signature(), {{"imag", image}, {"ids", ids}});
  EXPECT_THAT(unknown.status().message(), HasSubstr("no input 'imag' (inputs: ids, image)"));
  auto dtype = BuildNpyRequest(Signature(), {{"image", ids}, {"ids", ids}});
  EXPECT_THAT(dtype.status().message(), HasSubstr("holds s64 but the model expects f32"));
  auto absent = BuildNpyRequest(Signature(), {{"image", image + ".nope"}, {"ids", ids}});
  EXPECT_FALSE(absent.ok());
  std::filesystem::remove(image);
  std::filesystem::remove(ids);
}

TEST(RequestBuilderTest, SignatureFromMetadata) {
  tensorflow::serving::GetModelMetadataResponse response;
  EXPECT_EQ(DefaultSignature(response).status().code(), absl::StatusCode::kNotFound);
  tensorflow::serving::SignatureDefMap map;
  (*map.mutable_signature_def())["serving_default"] = Signature();
  (*response.mutable_metadata())["signature_def"].PackFrom(map);
  auto sig = DefaultSignature(response);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->inputs().size(), 2u);
}

}  // namespace
}  // namespace octet::bench
