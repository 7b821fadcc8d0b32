#include "core/npy.h"

#include <cstdint>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octet {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy pads the preamble + header to a multiple of this so the data is aligned.
constexpr size_t kHeaderAlignment = 64;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed .npy header: ", what));
}

// The header is a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// This is a small recursive-descent parser for exactly the subset numpy writes: string keys,
// string / bool / tuple-of-int values.
class HeaderParser {
 public:
  struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
  };

  explicit HeaderParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<Header> Parse() {
    Header header;
    bool have_descr = false, have_order = false, have_shape = false;
    SkipSpace();
    if (!Consume('{')) return Malformed("expected '{'");
    while (true) {
      SkipSpace();
      if (Consume('}')) break;
      std::string key;
      if (!ParseString(&key)) return Malformed("expected a quoted key");
      SkipSpace();
      if (!Consume(':')) return Malformed(absl::StrCat("expected ':' after '", key, "'"));
      SkipSpace();
      if (key == "descr") {
        if (have_descr) return Malformed("duplicate key 'descr'");
        if (!ParseString(&header.descr)) {
          return Malformed("'descr' is not a string (structured dtypes are not supported)");
        }
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) return Malformed("duplicate key 'fortran_order'");
        if (ConsumeWord("True")) {
          header.fortran_order = true;
        } else if (ConsumeWord("False")) {
          header.fortran_order = false;
        } else {
          return Malformed("'fortran_order' is not True or False");
        }
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) return Malformed("duplicate key 'shape'");
        absl::Status s = ParseShape(&header.shape);
        if (!s.ok()) return s;
        have_shape = true;
      } else {
        return Malformed(absl::StrCat("unexpected key '", key, "'"));
      }
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume('}')) break;
      return Malformed("expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != text_.size()) return Malformed("unexpected text after the dictionary");
    if (!have_descr || !have_order || !have_shape) {
      return Malformed("missing one of 'descr', 'fortran_order', 'shape'");
    }
    return header;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ConsumeWord(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    size_t end = pos_ + word.size();
    if (end < text_.size() &&
        (absl::ascii_isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) {
      return false;
    }
    pos_ = end;
    return true;
  }
  // A single- or double-quoted string without escapes (numpy never writes any).
  bool ParseString(std::string* out) {
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return false;
    char quote = text_[pos_];
    size_t end = text_.find(quote, pos_ + 1);
    if (end == absl::string_view::npos) return false;
    absl::string_view body = text_.substr(pos_ + 1, end - pos_ - 1);
    if (body.find('\\') != absl::string_view::npos || body.find('\n') != absl::string_view::npos) {
      return false;
    }
    *out = std::string(body);
    pos_ = end + 1;
    return true;
  }
  // A Python tuple of non-negative integers: "()", "(3,)", "(2, 3)" or "(2, 3,)". Python 2 era
  // files may carry an 'L' suffix ("(3L,)").
  absl::Status ParseShape(Shape* shape) {
    if (!Consume('(')) return Malformed("'shape' is not a tuple");
    int count = 0;
    bool trailing_comma = false;
    while (true) {
      SkipSpace();
      if (Consume(')')) break;
      if (count > 0 && !trailing_comma) return Malformed("expected ',' in 'shape'");
      size_t start = pos_;
      int64_t value = 0;
      while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
        int digit = text_[pos_] - '0';
        if (value > (INT64_MAX - digit) / 10) return Malformed("dimension too large in 'shape'");
        value = value * 10 + digit;
        ++pos_;
      }
      if (pos_ == start) return Malformed("'shape' holds something other than integers");
      Consume('L');
      shape->push_back(value);
      ++count;
      SkipSpace();
      trailing_comma = Consume(',');
    }
    // (3) is the integer 3 in Python, not a tuple.
    if (count == 1 && !trailing_comma) return Malformed("'shape' is not a tuple");
    if (count > 64) return Malformed("'shape' has more than 64 dimensions");
    return absl::OkStatus();
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

// Maps a numpy dtype descriptor to an Octet dtype.
absl::StatusOr<DType> DTypeFromDescr(absl::string_view descr) {
  if (descr.size() < 2) return Malformed(absl::StrCat("bad dtype descriptor '", descr, "'"));
  char order = descr[0];
  absl::string_view kind = descr.substr(1);
  struct Entry {
    const char* kind;
    DType dtype;
  };
  static constexpr Entry kTable[] = {{"f4", DType::kF32}, {"u1", DType::kU8},
                                     {"i1", DType::kS8},  {"i4", DType::kS32},
                                     {"i8", DType::kS64}, {"b1", DType::kBool}};
  for (const Entry& e : kTable) {
    if (kind != e.kind) continue;
    if (DTypeSize(e.dtype) == 1) {
      // Byte order is meaningless for one-byte types; numpy writes '|'.
      if (order == '|' || order == '<' || order == '>' || order == '=') return e.dtype;
    } else {
      if (order == '<') return e.dtype;
      if (order == '>') {
        return absl::InvalidArgumentError(
            absl::StrCat("big-endian dtype '", descr, "' is not supported (only little endian)"));
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("dtype '", descr, "' has an unsupported byte order mark"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype '", descr, "' (supported: <f4, |u1, |i1, <i4, <i8, |b1)"));
}

const char* DescrFor(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "<f4";
    case DType::kU8:
      return "|u1";
    case DType::kS8:
      return "|i1";
    case DType::kS32:
      return "<i4";
    case DType::kS64:
      return "<i8";
    case DType::kBool:
      return "|b1";
  }
  return "?";
}

uint32_t ReadLittleEndian(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes) {
  if (bytes.size() < kMagicLen + 2 ||
      bytes.substr(0, kMagicLen) != absl::string_view(kMagic, kMagicLen)) {
    return absl::InvalidArgumentError("not a .npy file (bad magic string)");
  }
  int major = static_cast<unsigned char>(bytes[kMagicLen]);
  int minor = static_cast<unsigned char>(bytes[kMagicLen + 1]);
  int len_bytes;
  if (major == 1 && minor == 0) {
    len_bytes = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    len_bytes = 4;  // 3.0 only differs in allowing UTF-8 in the header.
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported .npy format version ", major, ".", minor));
  }
  size_t preamble = kMagicLen + 2 + len_bytes;
  if (bytes.size() < preamble) {
    return absl::InvalidArgumentError("truncated .npy file (header length missing)");
  }
  size_t header_len = ReadLittleEndian(bytes.data() + kMagicLen + 2, len_bytes);
  if (bytes.size() - preamble < header_len) {
    return absl::InvalidArgumentError(absl::StrCat("truncated .npy file (header needs ", header_len,
                                                   " bytes, file has ", bytes.size() - preamble,
                                                   ")"));
  }
  absl::StatusOr<HeaderParser::Header> header =
      HeaderParser(bytes.substr(preamble, header_len)).Parse();
  if (!header.ok()) return header.status();
  if (header->fortran_order) {
    return absl::InvalidArgumentError("Fortran-order .npy arrays are not supported (C order only)");
  }
  absl::StatusOr<DType> dtype = DTypeFromDescr(header->descr);
  if (!dtype.ok()) return dtype.status();

  // Element count with overflow checks; a zero dimension makes the array empty.
  uint64_t count = 1;
  bool empty = false;
  for (int64_t d : header->shape) empty |= d == 0;
  if (!empty) {
    for (int64_t d : header->shape) {
      if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count) ||
          count > (uint64_t{1} << 56)) {
        return Malformed(absl::StrCat("shape ", ShapeToString(header->shape), " is too large"));
      }
    }
  } else {
    count = 0;
  }
  uint64_t data_bytes = count * DTypeSize(*dtype);
  absl::string_view data = bytes.substr(preamble + header_len);
  if (data.size() < data_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated .npy file: ", DTypeName(*dtype), ShapeToString(header->shape),
                     " needs ", data_bytes, " data bytes, file has ", data.size()));
  }
  if (data.size() > data_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(".npy file has ", data.size() - data_bytes, " unexpected bytes after the ",
                     DTypeName(*dtype), ShapeToString(header->shape), " array data"));
  }
  absl::StatusOr<Tensor> tensor =
      Tensor::FromBytes(*dtype, header->shape, data.data(), static_cast<size_t>(data_bytes));
  if (!tensor.ok()) return tensor.status();
  if (*dtype == DType::kBool) {
    // Octet bools are exactly 0 or 1.
    uint8_t* p = tensor->data_as<uint8_t>();
    for (uint64_t i = 0; i < count; ++i) p[i] = p[i] != 0;
  }
  return tensor;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  absl::StatusOr<Tensor> tensor = ParseNpy(bytes);
  if (!tensor.ok()) return WithPath(path, tensor.status());
  return tensor;
}

std::string SerializeNpy(const Tensor& tensor) {
  std::string shape;
  if (tensor.rank() == 1) {
    shape = absl::StrCat("(", tensor.dim(0), ",)");
  } else {
    shape = absl::StrCat("(", absl::StrJoin(tensor.shape(), ", "), ")");
  }
  std::string dict = absl::StrCat("{'descr': '", DescrFor(tensor.dtype()),
                                  "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Like numpy >= 1.23: spare spaces so the first dimension can grow in place, then padding so
  // the data starts on a 64-byte boundary (always at least one space, as numpy does). With this
  // the output is byte-identical to np.save's.
  if (tensor.rank() > 0) {
    size_t digits = absl::StrCat(tensor.dim(0)).size();
    if (digits < 21) dict.append(21 - digits, ' ');
  }
  // Version 1.0 stores the header length in 2 bytes; fall back to 2.0 only when needed.
  auto padding = [&](int len_bytes) {
    size_t unpadded = kMagicLen + 2 + len_bytes + dict.size() + 1;  // +1 for the final '\n'
    return kHeaderAlignment - unpadded % kHeaderAlignment;
  };
  int len_bytes = dict.size() + 1 + padding(2) <= 65535 ? 2 : 4;
  dict.append(padding(len_bytes), ' ');
  dict.push_back('\n');
  uint32_t header_len = static_cast<uint32_t>(dict.size());

  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(len_bytes == 2 ? 1 : 2));
  out.push_back(0);
  for (int i = 0; i < len_bytes; ++i)
    out.push_back(static_cast<char>((header_len >> (8 * i)) & 0xff));
  out += dict;
  if (tensor.byte_size() > 0) {
    out.append(static_cast<const char*>(tensor.data()), tensor.byte_size());
  }
  return out;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  std::string bytes = SerializeNpy(tensor);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing"));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace octet
