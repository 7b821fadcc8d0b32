// Reads MNIST-style IDX files (optionally gzip'd), such as Debian's dataset-fashion-mnist package,
// for accuracy and calibration tests. Images come back as float pixels/255, exactly the encoding
// the demo models were trained on (tests/fixtures/fashion_mnist.py).
#ifndef OCTET_TESTS_UTIL_IDX_READER_H_
#define OCTET_TESTS_UTIL_IDX_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace octet {

// Where Debian's dataset-fashion-mnist puts the four files.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Returns kFashionMnistDir + "/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz".
std::string FashionMnistPath(bool train, bool images);

struct IdxImages {
  int64_t count = 0;  // number of images
  int64_t rows = 0;
  int64_t cols = 0;
  // count x rows x cols values, row-major, each byte / 255.0f (in [0, 1]).
  std::vector<float> pixels;

  // Copies images [begin, begin + n) into an f32 tensor of shape [n, 1, rows, cols] (CNN input).
  Tensor ToNchw(int64_t begin, int64_t n) const;
  // Same images as [n, rows * cols] (MLP input).
  Tensor ToFlat(int64_t begin, int64_t n) const;
};

// Reads an unsigned-byte IDX image file (magic 0x00000803, dims N x rows x cols); gzip'd or not.
// max_images >= 0 stops after that many images. Errors name the file and what is wrong (bad magic,
// truncated data, trailing bytes, corrupt gzip stream).
absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t max_images = -1);

// Reads an unsigned-byte IDX label file (magic 0x00000801, dims N). max_labels as above.
absl::StatusOr<std::vector<int32_t>> ReadIdxLabels(const std::string& path,
                                                   int64_t max_labels = -1);

}  // namespace octet

#endif  // OCTET_TESTS_UTIL_IDX_READER_H_
