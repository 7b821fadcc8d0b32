#include "tests/util/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace octet {
namespace {

// IDX header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
// one big-endian uint32 per dimension.
constexpr uint8_t kIdxUnsignedByte = 0x08;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly n bytes; gzread also passes plain (not gzip'd) files through unchanged.
absl::Status ReadExactly(gzFile f, const std::string& path, void* out, size_t n,
                         absl::string_view what) {
  auto* dst = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 24));
    const int got = gzread(f, dst + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      return absl::DataLossError(absl::StrCat(path, ": corrupt gzip stream while reading ", what,
                                              ": ", msg ? msg : "unknown zlib error"));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  if (done < n) {
    int errnum = 0;
    const char* msg = gzerror(f, &errnum);
    return absl::DataLossError(absl::StrCat(
        path, ": truncated: expected ", n, " bytes of ", what, ", got ", done,
        (errnum != Z_OK && msg != nullptr) ? absl::StrCat(" (", msg, ")") : std::string()));
  }
  return absl::OkStatus();
}

// Opens `path`, checks the header's type code and rank, returns the dimensions.
absl::StatusOr<std::vector<int64_t>> OpenIdx(const std::string& path, int rank, GzFile* file) {
  file->reset(gzopen(path.c_str(), "rb"));
  if (*file == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  unsigned char magic[4];
  if (auto s = ReadExactly(file->get(), path, magic, 4, "the IDX magic"); !s.ok()) return s;
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != kIdxUnsignedByte || magic[3] != rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an unsigned-byte IDX file of rank ", rank, " (magic bytes ",
                     static_cast<int>(magic[0]), " ", static_cast<int>(magic[1]), " ",
                     static_cast<int>(magic[2]), " ", static_cast<int>(magic[3]), ")"));
  }
  std::vector<int64_t> dims(rank);
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    if (auto s = ReadExactly(file->get(), path, b, 4, "the IDX dimensions"); !s.ok()) return s;
    dims[i] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | b[3];
  }
  return dims;
}

// A full read must end exactly at the end of the data: extra bytes mean a mislabeled file.
absl::Status CheckAtEnd(gzFile f, const std::string& path) {
  unsigned char extra;
  const int got = gzread(f, &extra, 1);
  if (got > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": trailing bytes after the data the IDX header describes"));
  }
  if (got < 0) {
    int errnum = 0;
    const char* msg = gzerror(f, &errnum);
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt gzip stream at end: ", msg ? msg : "unknown zlib error"));
  }
  return absl::OkStatus();
}

Tensor CopyImages(const IdxImages& images, int64_t begin, int64_t n, Shape shape) {
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  const int64_t per_image = images.rows * images.cols;
  std::memcpy(t.data(), images.pixels.data() + begin * per_image,
              static_cast<size_t>(n * per_image) * sizeof(float));
  return t;
}

}  // namespace

std::string FashionMnistPath(bool train, bool images) {
  return absl::StrCat(kFashionMnistDir, "/", train ? "train" : "t10k", "-",
                      images ? "images-idx3" : "labels-idx1", "-ubyte.gz");
}

Tensor IdxImages::ToNchw(int64_t begin, int64_t n) const {
  return CopyImages(*this, begin, n, {n, 1, rows, cols});
}

Tensor IdxImages::ToFlat(int64_t begin, int64_t n) const {
  return CopyImages(*this, begin, n, {n, rows * cols});
}

absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t max_images) {
  GzFile file;
  auto dims = OpenIdx(path, 3, &file);
  if (!dims.ok()) return dims.status();
  IdxImages out;
  out.count = (*dims)[0];
  out.rows = (*dims)[1];
  out.cols = (*dims)[2];
  if (out.rows == 0 || out.cols == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": images of size ", out.rows, "x", out.cols));
  }
  const bool partial = max_images >= 0 && max_images < out.count;
  if (partial) out.count = max_images;
  const size_t n = static_cast<size_t>(out.count * out.rows * out.cols);
  std::vector<unsigned char> bytes(n);
  if (auto s = ReadExactly(file.get(), path, bytes.data(), n, "pixels"); !s.ok()) return s;
  if (!partial) {
    if (auto s = CheckAtEnd(file.get(), path); !s.ok()) return s;
  }
  out.pixels.resize(n);
  // pixel / 255 with a true float division, bit-identical to numpy's
  // images.astype(float32) / float32(255) in the training script.
  for (size_t i = 0; i < n; ++i) out.pixels[i] = static_cast<float>(bytes[i]) / 255.0f;
  return out;
}

absl::StatusOr<std::vector<int32_t>> ReadIdxLabels(const std::string& path, int64_t max_labels) {
  GzFile file;
  auto dims = OpenIdx(path, 1, &file);
  if (!dims.ok()) return dims.status();
  int64_t count = (*dims)[0];
  const bool partial = max_labels >= 0 && max_labels < count;
  if (partial) count = max_labels;
  std::vector<unsigned char> bytes(static_cast<size_t>(count));
  if (auto s = ReadExactly(file.get(), path, bytes.data(), bytes.size(), "labels"); !s.ok()) {
    return s;
  }
  if (!partial) {
    if (auto s = CheckAtEnd(file.get(), path); !s.ok()) return s;
  }
  return std::vector<int32_t>(bytes.begin(), bytes.end());
}

}  // namespace octet
