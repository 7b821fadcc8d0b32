#include "tests/util/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/npy.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

// Written by the fashion_npy CTest fixture (tests/fixtures/fashion_mnist.py --write-npy DIR) with
// Python's gzip + numpy: an independent decoder to cross-check against.
#ifndef OCTET_FASHION_NPY_DIR
#error "OCTET_FASHION_NPY_DIR must be defined by the build"
#endif

// Reads a fixture array; a missing file means the fashion_npy fixture did not run.
absl::StatusOr<Tensor> ReadFixture(const std::string& path) {
  auto t = ReadNpy(path);
  if (!t.ok() && !std::ifstream(path)) {
    return absl::NotFoundError(
        path +
        " missing: run through ctest (fixture fashion_npy) or run "
        "tests/fixtures/fashion_mnist.py --write-npy " OCTET_FASHION_NPY_DIR);
  }
  return t;
}

class FashionMnistTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto train_images = ReadIdxImages(FashionMnistPath(true, true));
    auto train_labels = ReadIdxLabels(FashionMnistPath(true, false));
    auto test_images = ReadIdxImages(FashionMnistPath(false, true));
    auto test_labels = ReadIdxLabels(FashionMnistPath(false, false));
    ASSERT_TRUE(train_images.ok()) << train_images.status();
    ASSERT_TRUE(train_labels.ok()) << train_labels.status();
    ASSERT_TRUE(test_images.ok()) << test_images.status();
    ASSERT_TRUE(test_labels.ok()) << test_labels.status();
    train_images_ = new IdxImages(*std::move(train_images));
    train_labels_ = new std::vector<int32_t>(*std::move(train_labels));
    test_images_ = new IdxImages(*std::move(test_images));
    test_labels_ = new std::vector<int32_t>(*std::move(test_labels));
  }
  static void TearDownTestSuite() {
    delete train_images_;
    delete train_labels_;
    delete test_images_;
    delete test_labels_;
  }
  static IdxImages* train_images_;
  static std::vector<int32_t>* train_labels_;
  static IdxImages* test_images_;
  static std::vector<int32_t>* test_labels_;
};
IdxImages* FashionMnistTest::train_images_ = nullptr;
std::vector<int32_t>* FashionMnistTest::train_labels_ = nullptr;
IdxImages* FashionMnistTest::test_images_ = nullptr;
std::vector<int32_t>* FashionMnistTest::test_labels_ = nullptr;

void ExpectBalancedLabels(const std::vector<int32_t>& labels, int per_class) {
  std::vector<int> counts(10, 0);
  for (int32_t l : labels) {
    ASSERT_GE(l, 0);
    ASSERT_LE(l, 9);
    ++counts[l];
  }
  // Fashion-MNIST is exactly balanced: 6000 per class in train, 1000 in test.
  for (int c = 0; c < 10; ++c) EXPECT_EQ(counts[c], per_class) << "class " << c;
}

void ExpectPixelsAreBytesOver255(const IdxImages& images) {
  ASSERT_EQ(images.pixels.size(), static_cast<size_t>(images.count * 28 * 28));
  float max = 0.0f;
  for (float p : images.pixels) {
    ASSERT_GE(p, 0.0f);
    ASSERT_LE(p, 1.0f);
    const float b = std::round(p * 255.0f);
    ASSERT_EQ(p, b / 255.0f);
    max = std::max(max, p);
  }
  EXPECT_EQ(max, 1.0f);
}

TEST_F(FashionMnistTest, CountsDimsAndLabelRange) {
  EXPECT_EQ(train_images_->count, 60000);
  EXPECT_EQ(test_images_->count, 10000);
  EXPECT_EQ(train_images_->rows, 28);
  EXPECT_EQ(train_images_->cols, 28);
  EXPECT_EQ(test_images_->rows, 28);
  EXPECT_EQ(test_images_->cols, 28);
  EXPECT_EQ(train_labels_->size(), 60000u);
  EXPECT_EQ(test_labels_->size(), 10000u);
  ExpectBalancedLabels(*train_labels_, 6000);
  ExpectBalancedLabels(*test_labels_, 1000);
  ExpectPixelsAreBytesOver255(*train_images_);
  ExpectPixelsAreBytesOver255(*test_images_);
}

TEST_F(FashionMnistTest, FirstLabelsMatchTheDataset) {
  // The dataset's first labels (ankle boot, T-shirt, T-shirt, dress, ...), as decoded by Python.
  const std::vector<int32_t> train_first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  const std::vector<int32_t> test_first = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  EXPECT_EQ(std::vector<int32_t>(train_labels_->begin(), train_labels_->begin() + 10), train_first);
  EXPECT_EQ(std::vector<int32_t>(test_labels_->begin(), test_labels_->begin() + 10), test_first);
}

// Decodes bytes by hand (whole gunzip'd file, 16-byte header) and compares a few images.
TEST_F(FashionMnistTest, PixelsMatchHandDecodedBytes) {
  gzFile f = gzopen(FashionMnistPath(false, true).c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::vector<unsigned char> raw(16 + 10000 * 784);
  ASSERT_EQ(gzread(f, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
  gzclose(f);
  // Header: magic 0x00000803, then 10000, 28, 28 big-endian.
  EXPECT_EQ(raw[2], 0x08);
  EXPECT_EQ(raw[3], 3);
  EXPECT_EQ((raw[4] << 24) | (raw[5] << 16) | (raw[6] << 8) | raw[7], 10000);
  for (int64_t image : {0, 1, 4321, 9999}) {
    for (int64_t px = 0; px < 784; ++px) {
      const unsigned char byte = raw[16 + image * 784 + px];
      ASSERT_EQ(test_images_->pixels[image * 784 + px], static_cast<float>(byte) / 255.0f)
          << "image " << image << " pixel " << px;
    }
  }
  // Row 10 of the first test image, as printed by numpy: 0 0 0 4 0 53 129 120 147 175.
  EXPECT_EQ(test_images_->pixels[10 * 28 + 15] * 255.0f, 53.0f);
}

// Bit-exact: both sides compute float(byte) / 255.0f with a correctly rounded division.
void ExpectSameFloats(const Tensor& npy, const Tensor& expected, const std::string& what) {
  ASSERT_EQ(npy.dtype(), DType::kF32) << what;
  ASSERT_EQ(npy.shape(), expected.shape()) << what;
  size_t mismatches = 0;
  for (int64_t i = 0; i < npy.num_elements(); ++i) {
    mismatches += npy.data_as<float>()[i] != expected.data_as<float>()[i];
  }
  EXPECT_EQ(mismatches, 0u) << what;
}

TEST_F(FashionMnistTest, MatchesNumpyFixtureArrays) {
  const std::string dir = OCTET_FASHION_NPY_DIR;
  for (const std::string model : {"fashion_cnn", "fashion_mlp"}) {
    const bool cnn = model == "fashion_cnn";
    auto images = ReadFixture(dir + "/" + model + "/test_images.npy");
    auto labels = ReadFixture(dir + "/" + model + "/test_labels.npy");
    auto calib = ReadFixture(dir + "/" + model + "/calib_500.npy");
    ASSERT_TRUE(images.ok()) << images.status();
    ASSERT_TRUE(labels.ok()) << labels.status();
    ASSERT_TRUE(calib.ok()) << calib.status();

    ExpectSameFloats(*images, cnn ? test_images_->ToNchw(0, 10000) : test_images_->ToFlat(0, 10000),
                     model + " test images");
    ExpectSameFloats(*calib, cnn ? train_images_->ToNchw(0, 500) : train_images_->ToFlat(0, 500),
                     model + " calibration images");

    ASSERT_EQ(labels->dtype(), DType::kS64);
    ASSERT_EQ(labels->shape(), Shape{10000});
    for (int i = 0; i < 10000; ++i) {
      ASSERT_EQ(labels->data_as<int64_t>()[i], (*test_labels_)[i]) << "label " << i;
    }
  }
}

TEST_F(FashionMnistTest, ToNchwAndToFlatSliceImages) {
  Tensor nchw = test_images_->ToNchw(7, 3);
  Tensor flat = test_images_->ToFlat(7, 3);
  EXPECT_EQ(nchw.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(flat.shape(), (Shape{3, 784}));
  for (int i = 0; i < 3 * 784; ++i) {
    ASSERT_EQ(nchw.data_as<float>()[i], test_images_->pixels[7 * 784 + i]);
    ASSERT_EQ(flat.data_as<float>()[i], test_images_->pixels[7 * 784 + i]);
  }
}

// ---- partial reads and malformed files -------------------------------------------------------

TEST(IdxReaderTest, MaxCountReadsAPrefix) {
  auto images = ReadIdxImages(FashionMnistPath(false, true), 5);
  auto labels = ReadIdxLabels(FashionMnistPath(false, false), 5);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(images->count, 5);
  EXPECT_EQ(images->pixels.size(), 5u * 784);
  EXPECT_EQ(*labels, (std::vector<int32_t>{9, 2, 1, 1, 6}));
}

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

void WriteFile(const std::string& path, const std::vector<unsigned char>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
}

// An IDX image file with 2 images of 2x3 pixels.
std::vector<unsigned char> TinyImages() {
  return {0, 0, 8, 3,  0,   0,   0,   2,   0,   0, 0, 2, 0, 0,
          0, 3, 0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 1};
}

TEST(IdxReaderTest, ReadsPlainAndGzipTinyFiles) {
  for (bool gzip : {false, true}) {
    const std::string path = TempPath(gzip ? "tiny.idx.gz" : "tiny.idx");
    WriteFile(path, TinyImages(), gzip);
    auto images = ReadIdxImages(path);
    ASSERT_TRUE(images.ok()) << images.status();
    EXPECT_EQ(images->count, 2);
    EXPECT_EQ(images->rows, 2);
    EXPECT_EQ(images->cols, 3);
    EXPECT_EQ(images->pixels, (std::vector<float>{0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f, 1.0f, 0, 0, 0,
                                                  0, 1.0f / 255.0f}));
  }
}

TEST(IdxReaderTest, RejectsMalformedFiles) {
  auto bad_magic = TinyImages();
  bad_magic[2] = 0x0D;  // float data
  WriteFile(TempPath("bad_magic.gz"), bad_magic, true);
  auto s = ReadIdxImages(TempPath("bad_magic.gz")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("not an unsigned-byte IDX file"), absl::string_view::npos) << s;

  auto truncated = TinyImages();
  truncated.resize(truncated.size() - 3);
  WriteFile(TempPath("truncated.gz"), truncated, true);
  s = ReadIdxImages(TempPath("truncated.gz")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("truncated"), absl::string_view::npos) << s;

  auto trailing = TinyImages();
  trailing.push_back(7);
  WriteFile(TempPath("trailing.gz"), trailing, true);
  s = ReadIdxImages(TempPath("trailing.gz")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("trailing"), absl::string_view::npos) << s;

  // A label file is rank 1: reading it as images must fail on the header, and vice versa.
  s = ReadIdxImages(FashionMnistPath(false, false)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = ReadIdxLabels(FashionMnistPath(false, true)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  s = ReadIdxImages(TempPath("does_not_exist.gz")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("does_not_exist.gz"), absl::string_view::npos) << s;
}

TEST(IdxReaderTest, RejectsCutGzipStream) {
  // A real gzip stream cut in the middle: zlib reports an unexpected end of the stream.
  std::vector<unsigned char> big = TinyImages();
  big[7] = 200;  // 200 images of 2x3
  for (int i = 0; i < 200 * 6 - 12; ++i) big.push_back(static_cast<unsigned char>(i * 37));
  WriteFile(TempPath("whole.gz"), big, true);
  std::ifstream in(TempPath("whole.gz"), std::ios::binary);
  std::vector<unsigned char> gz((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  WriteFile(TempPath("cut.gz"), gz, false);
  auto s = ReadIdxImages(TempPath("cut.gz")).status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cut.gz"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace octet
