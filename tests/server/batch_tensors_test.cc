#include "server/batch_tensors.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet::server {
namespace {

using ::testing::HasSubstr;

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data_as<float>(), t.data_as<float>() + t.num_elements());
}

TEST(BatchTensorsTest, ConcatenatesSlicesInOrder) {
  Tensor a = Tensor::FromFloats({3, 2}, {0, 1, 2, 3, 4, 5});
  Tensor b = Tensor::FromFloats({1, 2}, {10, 11});
  std::vector<RowSlice> slices = {{&a, 1, 2}, {&b, 0, 1}, {&a, 0, 1}};
  absl::StatusOr<Tensor> out = ConcatRows(slices);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape(), (Shape{4, 2}));
  EXPECT_EQ(Values(*out), (std::vector<float>{2, 3, 4, 5, 10, 11, 0, 1}));
}

TEST(BatchTensorsTest, WholeSingleSliceIsNotCopied) {
  Tensor a = Tensor::FromFloats({2, 2}, {1, 2, 3, 4});
  std::vector<RowSlice> slices = {{&a, 0, 2}};
  absl::StatusOr<Tensor> out = ConcatRows(slices);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data(), a.data());
}

TEST(BatchTensorsTest, RejectsMismatchedRowsAndRanges) {
  Tensor a = Tensor::FromFloats({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::FromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  std::vector<RowSlice> mixed = {{&a, 0, 1}, {&b, 0, 1}};
  EXPECT_THAT(ConcatRows(mixed).status().message(), HasSubstr("cannot concatenate"));
  std::vector<RowSlice> out_of_range = {{&a, 1, 2}};
  EXPECT_THAT(ConcatRows(out_of_range).status().message(), HasSubstr("out of range"));
  Tensor dst = Tensor::Zeros(DType::kF32, {2, 2});
  EXPECT_FALSE(CopyRows(b, 0, 1, dst, 0).ok());
  EXPECT_FALSE(CopyRows(a, 0, 2, dst, 1).ok());
}

TEST(BatchTensorsTest, CopyRowsPlacesRows) {
  Tensor src = Tensor::FromFloats({3, 1}, {7, 8, 9});
  Tensor dst = Tensor::Zeros(DType::kF32, {4, 1});
  ASSERT_TRUE(CopyRows(src, 1, 2, dst, 2).ok());
  EXPECT_EQ(Values(dst), (std::vector<float>{0, 0, 8, 9}));
}

}  // namespace
}  // namespace octet::server
