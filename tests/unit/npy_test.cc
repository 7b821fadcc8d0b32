#include "core/npy.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

std::string SourceDir() {
  const char* dir = std::getenv("OCTET_SOURCE_DIR");
  return dir != nullptr ? dir : OCTET_SOURCE_DIR_DEFAULT;
}

std::string Fixture(const std::string& name) {
  return absl::StrCat(SourceDir(), "/tests/fixtures/npy/", name);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A fresh temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/octet_npy_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(absl::StrCat("rm -rf '", path_, "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Builds .npy bytes by hand: magic, version, header length, header text (not padded), data.
std::string MakeNpy(const std::string& header, const std::string& data, int major = 1,
                    int minor = 0) {
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(static_cast<char>(minor));
  uint32_t len = static_cast<uint32_t>(header.size());
  int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string Floats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Reading files written by numpy.

TEST(NpyTest, ReadsNumpyF32) {
  absl::StatusOr<Tensor> t = ReadNpy(Fixture("f32_2x3.npy"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kF32);
  EXPECT_EQ(t->shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t->data_as<float>()[i], i * 0.5f - 1.0f) << i;
}

TEST(NpyTest, ReadsNumpyHeaderVersions2And3) {
  for (int version : {2, 3}) {
    std::string name = absl::StrCat("f32_2x3_v", version, ".npy");
    std::string bytes = ReadAll(Fixture(name));
    ASSERT_GT(bytes.size(), 8u) << name;
    EXPECT_EQ(bytes[6], version) << "fixture is not the version it claims";
    absl::StatusOr<Tensor> t = ParseNpy(bytes);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    EXPECT_EQ(t->shape(), (Shape{2, 3}));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(t->data_as<float>()[i], i * 0.5f - 1.0f);
  }
}

TEST(NpyTest, ReadsNumpyIntegerAndBoolDtypes) {
  absl::StatusOr<Tensor> u8 = ReadNpy(Fixture("u8_4.npy"));
  ASSERT_TRUE(u8.ok()) << u8.status();
  EXPECT_EQ(u8->dtype(), DType::kU8);
  EXPECT_EQ(u8->shape(), (Shape{4}));
  EXPECT_EQ(u8->ToInt64Vector(), (std::vector<int64_t>{0, 1, 128, 255}));

  absl::StatusOr<Tensor> s8 = ReadNpy(Fixture("s8_2x2.npy"));
  ASSERT_TRUE(s8.ok()) << s8.status();
  EXPECT_EQ(s8->dtype(), DType::kS8);
  EXPECT_EQ(s8->shape(), (Shape{2, 2}));
  EXPECT_EQ(s8->ToInt64Vector(), (std::vector<int64_t>{-128, -1, 0, 127}));

  absl::StatusOr<Tensor> s32 = ReadNpy(Fixture("s32_3.npy"));
  ASSERT_TRUE(s32.ok()) << s32.status();
  EXPECT_EQ(s32->dtype(), DType::kS32);
  EXPECT_EQ(s32->ToInt64Vector(), (std::vector<int64_t>{INT32_MIN, 0, INT32_MAX}));

  absl::StatusOr<Tensor> s64 = ReadNpy(Fixture("s64_2x1x2.npy"));
  ASSERT_TRUE(s64.ok()) << s64.status();
  EXPECT_EQ(s64->dtype(), DType::kS64);
  EXPECT_EQ(s64->shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(s64->ToInt64Vector(),
            (std::vector<int64_t>{-(int64_t{1} << 40), 1, int64_t{1} << 62, -5}));

  absl::StatusOr<Tensor> b = ReadNpy(Fixture("bool_5.npy"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->dtype(), DType::kBool);
  EXPECT_EQ(b->ToInt64Vector(), (std::vector<int64_t>{1, 0, 1, 1, 0}));
}

TEST(NpyTest, ReadsScalarAndEmpty) {
  absl::StatusOr<Tensor> s = ReadNpy(Fixture("f32_scalar.npy"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->data_as<float>()[0], 3.25f);

  absl::StatusOr<Tensor> e = ReadNpy(Fixture("f32_0x3.npy"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->shape(), (Shape{0, 3}));
  EXPECT_EQ(e->num_elements(), 0);
}

TEST(NpyTest, BoolBytesAreNormalized) {
  absl::StatusOr<Tensor> t =
      ParseNpy(MakeNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n",
                       std::string("\x00\x07\x01", 3)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ToInt64Vector(), (std::vector<int64_t>{0, 1, 1}));
}

TEST(NpyTest, AcceptsHeaderVariantsNumpyCanRead) {
  // Double quotes, no trailing comma, other key order, Python 2 long suffix, no padding.
  absl::StatusOr<Tensor> t = ParseNpy(MakeNpy(
      "{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"<f4\"}", Floats({1, 2})));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{2, 1}));
  // Fortran order is irrelevant for 1-D arrays but numpy still writes False; True is refused.
  absl::StatusOr<Tensor> u = ParseNpy(
      MakeNpy("{'descr': '<u1', 'fortran_order': False, 'shape': (1,)}", std::string("\x05", 1)));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->dtype(), DType::kU8);
}

// ---------------------------------------------------------------------------------------------
// Writing: byte-identical to np.save, and round trips.

TEST(NpyTest, SerializeIsByteIdenticalToNumpy) {
  for (const char* name : {"f32_2x3.npy", "u8_4.npy", "s8_2x2.npy", "s32_3.npy", "s64_2x1x2.npy",
                           "bool_5.npy", "f32_scalar.npy", "f32_0x3.npy"}) {
    std::string bytes = ReadAll(Fixture(name));
    absl::StatusOr<Tensor> t = ParseNpy(bytes);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    EXPECT_EQ(SerializeNpy(*t), bytes) << name;
  }
}

TEST(NpyTest, WriteThenReadRoundTripsEveryDtype) {
  TempDir dir;
  for (DType dtype :
       {DType::kF32, DType::kU8, DType::kS8, DType::kS32, DType::kS64, DType::kBool}) {
    Tensor t = Tensor::Zeros(dtype, {3, 1, 4});
    auto* p = static_cast<unsigned char*>(t.data());
    for (size_t i = 0; i < t.byte_size(); ++i) p[i] = static_cast<unsigned char>(i * 37 + 11);
    if (dtype == DType::kBool) {
      for (size_t i = 0; i < t.byte_size(); ++i) p[i] &= 1;
    }
    std::string path = absl::StrCat(dir.path(), "/", DTypeName(dtype), ".npy");
    ASSERT_TRUE(WriteNpy(path, t).ok());
    absl::StatusOr<Tensor> back = ReadNpy(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->dtype(), dtype);
    EXPECT_EQ(back->shape(), t.shape());
    EXPECT_EQ(std::string(static_cast<const char*>(back->data()), back->byte_size()),
              std::string(static_cast<const char*>(t.data()), t.byte_size()));
    // Data starts on a 64-byte boundary, like numpy's.
    EXPECT_EQ((ReadAll(path).size() - t.byte_size()) % 64, 0u);
  }
}

TEST(NpyTest, WriteToBadPathFailsNamingIt) {
  absl::Status s = WriteNpy("/nonexistent-dir/x.npy", Tensor::FromFloats({1}, {1}));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent-dir/x.npy"));
}

// Cross-check with a live numpy: files we write load in numpy with the same dtype, shape and
// values, and a random array numpy writes reads back identically here.
TEST(NpyTest, CrossCheckWithLiveNumpy) {
  if (access("/usr/bin/python3", X_OK) != 0 ||
      std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    // deploy/setup.sh installs python3-numpy: its absence is a broken set-up, not a reason to skip.
    FAIL() << "/usr/bin/python3 with numpy not available (run deploy/setup.sh)";
  }
  TempDir dir;
  Tensor f = Tensor::FromFloats({2, 2}, {1.5f, -2.25f, 1e-30f, 3.4e38f});
  Tensor l = Tensor::FromInt64s({3}, {-1, int64_t{1} << 50, 7});
  ASSERT_TRUE(WriteNpy(dir.path() + "/f.npy", f).ok());
  ASSERT_TRUE(WriteNpy(dir.path() + "/l.npy", l).ok());
  std::string script = absl::StrCat(
      "import numpy as np\n"
      "f = np.load('",
      dir.path(),
      "/f.npy')\n"
      "l = np.load('",
      dir.path(),
      "/l.npy')\n"
      "assert f.dtype == np.float32 and f.shape == (2, 2), (f.dtype, f.shape)\n"
      "assert (f == np.array([[1.5, -2.25], [1e-30, 3.4e38]], dtype=np.float32)).all(), f\n"
      "assert l.dtype == np.int64 and l.shape == (3,) and list(l) == [-1, 2**50, 7], l\n"
      "rng = np.random.default_rng(7)\n"
      "r = rng.standard_normal((3, 5, 2)).astype(np.float32)\n"
      "np.save('",
      dir.path(),
      "/r.npy', r)\n"
      "open('",
      dir.path(), "/r.txt', 'w').write(' '.join(repr(float(x)) for x in r.ravel()))\n");
  std::string script_path = dir.path() + "/check.py";
  std::ofstream(script_path) << script;
  ASSERT_EQ(std::system(absl::StrCat("/usr/bin/python3 ", script_path).c_str()), 0);

  absl::StatusOr<Tensor> r = ReadNpy(dir.path() + "/r.npy");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shape(), (Shape{3, 5, 2}));
  std::vector<std::string> values = absl::StrSplit(ReadAll(dir.path() + "/r.txt"), ' ');
  ASSERT_EQ(values.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(r->data_as<float>()[i], static_cast<float>(std::strtod(values[i].c_str(), nullptr)));
  }
}

// ---------------------------------------------------------------------------------------------
// Rejections.

void ExpectInvalid(const absl::StatusOr<Tensor>& t, const std::string& needle) {
  ASSERT_FALSE(t.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(needle));
}

TEST(NpyTest, RejectsFortranOrderNamingTheFile) {
  std::string path = Fixture("reject_fortran_f32_2x3.npy");
  absl::StatusOr<Tensor> t = ReadNpy(path);
  ExpectInvalid(t, "Fortran");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(path));
}

TEST(NpyTest, RejectsBigEndian) {
  ExpectInvalid(ReadNpy(Fixture("reject_bigendian_f32_3.npy")), "big-endian dtype '>f4'");
  ExpectInvalid(ReadNpy(Fixture("reject_bigendian_s64_3.npy")), "big-endian dtype '>i8'");
}

TEST(NpyTest, RejectsUnsupportedDtypesNamingThem) {
  ExpectInvalid(ReadNpy(Fixture("reject_f64_3.npy")), "unsupported dtype '<f8'");
  ExpectInvalid(ReadNpy(Fixture("reject_f16_3.npy")), "unsupported dtype '<f2'");
  ExpectInvalid(ReadNpy(Fixture("reject_u16_3.npy")), "unsupported dtype '<u2'");
  ExpectInvalid(ReadNpy(Fixture("reject_unicode.npy")), "unsupported dtype '<U2'");
  ExpectInvalid(ReadNpy(Fixture("reject_structured.npy")), "structured dtypes");
}

TEST(NpyTest, RejectsTruncatedData) {
  std::string bytes = ReadAll(Fixture("f32_2x3.npy"));
  for (size_t cut : {size_t{1}, size_t{4}, size_t{23}}) {
    ExpectInvalid(ParseNpy(absl::string_view(bytes).substr(0, bytes.size() - cut)),
                  "truncated .npy file");
  }
  // Truncated inside the header and inside the preamble.
  ExpectInvalid(ParseNpy(absl::string_view(bytes).substr(0, 40)), "truncated .npy file");
  ExpectInvalid(ParseNpy(absl::string_view(bytes).substr(0, 9)), "truncated .npy file");
  // Through ReadNpy the error names the file.
  TempDir dir;
  std::string path = dir.path() + "/cut.npy";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  absl::StatusOr<Tensor> t = ReadNpy(path);
  ExpectInvalid(t, "truncated");
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(path));
}

TEST(NpyTest, RejectsTrailingBytes) {
  ExpectInvalid(ParseNpy(ReadAll(Fixture("u8_4.npy")) + "x"), "unexpected bytes");
}

TEST(NpyTest, RejectsBadMagicAndVersion) {
  ExpectInvalid(ParseNpy(""), "bad magic");
  ExpectInvalid(ParseNpy("hello world, not numpy"), "bad magic");
  ExpectInvalid(ParseNpy("\x93NUMPX\x01\x00\x00\x00"), "bad magic");
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  ExpectInvalid(ParseNpy(MakeNpy(header, Floats({1}), 4, 0)), "version 4.0");
  ExpectInvalid(ParseNpy(MakeNpy(header, Floats({1}), 1, 1)), "version 1.1");
  EXPECT_TRUE(ParseNpy(MakeNpy(header, Floats({1}), 2, 0)).ok());
  EXPECT_TRUE(ParseNpy(MakeNpy(header, Floats({1}), 3, 0)).ok());
}

TEST(NpyTest, RejectsMalformedHeaders) {
  struct Case {
    std::string header;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", "expected '{'"},
      {"['descr', '<f4']", "expected '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing one of"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "duplicate"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "other than integers"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1.0,)}", "expected ','"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1 1)}", "expected ','"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}", "other than integers"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}", "True or False"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (1,)}", "not a string"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "expected ','"},
      {"{descr: '<f4'}", "quoted key"},
      {"{'descr' '<f4'}", "expected ':'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) 'x'}", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing", "after the dictionary"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
      {"{'descr': 'f', 'fortran_order': False, 'shape': (1,)}", "bad dtype descriptor"},
      {"{'descr': '=f4', 'fortran_order': False, 'shape': (1,)}", "byte order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}",
       "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    ExpectInvalid(ParseNpy(MakeNpy(c.header, Floats({1}))), c.error);
  }
  // A header length pointing past the end of the file.
  std::string bytes = MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "");
  bytes[8] = static_cast<char>(0xff);
  ExpectInvalid(ParseNpy(bytes), "truncated .npy file (header");
}

TEST(NpyTest, MissingFileIsNamed) {
  absl::StatusOr<Tensor> t = ReadNpy("/nonexistent/input.npy");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/input.npy"));
}

}  // namespace
}  // namespace octet
