#include "core/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace octet {
namespace {

TEST(TensorTest, ZerosIsAlignedAndZeroed) {
  Tensor t = Tensor::Zeros(DType::kF32, {2, 3});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % kTensorAlignment, 0u);
  EXPECT_EQ(t.num_elements(), 6);
  EXPECT_EQ(t.byte_size(), 24u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data_as<float>()[i], 0.0f);
}

TEST(TensorTest, FromBytesRejectsWrongSize) {
  float v[3] = {1, 2, 3};
  EXPECT_FALSE(Tensor::FromBytes(DType::kF32, {2, 2}, v, sizeof(v)).ok());
  auto t = Tensor::FromBytes(DType::kF32, {3}, v, sizeof(v));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data_as<float>()[2], 3.0f);
}

TEST(TensorTest, ReshapeSharesStorageAndChecksCount) {
  Tensor t = Tensor::FromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  auto r = t.Reshaped({3, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data(), t.data());
  EXPECT_FALSE(t.Reshaped({4, 2}).ok());
}

TEST(TensorTest, CloneIsDeep) {
  Tensor t = Tensor::FromInt64s({2}, {7, -9});
  Tensor c = t.Clone();
  c.data_as<int64_t>()[0] = 1;
  EXPECT_EQ(t.data_as<int64_t>()[0], 7);
  EXPECT_EQ(c.ToInt64Vector(), (std::vector<int64_t>{1, -9}));
}

TEST(TensorTest, DTypeNamesRoundTrip) {
  for (DType d : {DType::kF32, DType::kU8, DType::kS8, DType::kS32, DType::kS64, DType::kBool}) {
    auto back = DTypeFromName(DTypeName(d));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, d);
  }
  EXPECT_FALSE(DTypeFromName("f16").ok());
}

}  // namespace
}  // namespace octet
