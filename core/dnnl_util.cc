#include "core/dnnl_util.h"

#include "absl/strings/str_cat.h"

namespace octet {

bool IsDnnlType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kU8 || dtype == DType::kS8 ||
         dtype == DType::kS32;
}

dnnl::memory::data_type ToDnnl(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return dnnl::memory::data_type::f32;
    case DType::kU8:
      return dnnl::memory::data_type::u8;
    case DType::kS8:
      return dnnl::memory::data_type::s8;
    case DType::kS32:
      return dnnl::memory::data_type::s32;
    default:
      return dnnl::memory::data_type::undef;
  }
}

dnnl::memory::dims ToDims(const Shape& shape) {
  if (shape.empty()) return {1};
  return dnnl::memory::dims(shape.begin(), shape.end());
}

dnnl::memory::format_tag PlainTag(int rank) {
  using tag = dnnl::memory::format_tag;
  switch (rank) {
    case 0:
    case 1:
      return tag::a;
    case 2:
      return tag::ab;
    case 3:
      return tag::abc;
    case 4:
      return tag::abcd;
    case 5:
      return tag::abcde;
    case 6:
      return tag::abcdef;
    default:
      return tag::undef;
  }
}

dnnl::memory::format_tag ChannelsLastTag(int rank) {
  using tag = dnnl::memory::format_tag;
  switch (rank) {
    case 3:
      return tag::acb;
    case 4:
      return tag::acdb;
    case 5:
      return tag::acdeb;
    default:
      return PlainTag(rank);
  }
}

dnnl::memory::desc PlainDesc(DType dtype, const Shape& shape) {
  dnnl::memory::dims dims = ToDims(shape);
  // Row-major strides work for any rank (format tags stop at 6 dims).
  dnnl::memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * std::max<int64_t>(dims[i + 1], 1);
  }
  return dnnl::memory::desc(dims, ToDnnl(dtype), strides);
}

bool IsPlain(const dnnl::memory::desc& md) {
  if (md.data.format_kind != dnnl_blocked) return false;
  const auto& blk = md.data.format_desc.blocking;
  if (blk.inner_nblks != 0) return false;
  int64_t stride = 1;
  for (int i = md.data.ndims - 1; i >= 0; --i) {
    if (md.data.dims[i] != 1 && blk.strides[i] != stride) return false;
    stride *= md.data.dims[i];
  }
  return true;
}

absl::Status DnnlErrorToStatus(const dnnl::error& e, const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": oneDNN error ", static_cast<int>(e.status),
                                          " (", e.what(), ")"));
}

std::string ImplName(const dnnl::primitive_desc_base& pd) {
  const char* info = pd.impl_info_str();
  return info ? info : "?";
}

}  // namespace octet
