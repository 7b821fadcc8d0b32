// Small helpers between Octet's types and oneDNN 2.6.
#ifndef OCTET_CORE_DNNL_UTIL_H_
#define OCTET_CORE_DNNL_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "core/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace octet {

// True for the dtypes oneDNN can hold (f32, u8, s8, s32).
bool IsDnnlType(DType dtype);
dnnl::memory::data_type ToDnnl(DType dtype);
dnnl::memory::dims ToDims(const Shape& shape);
// Dense row-major descriptor; rank-0 shapes become {1}.
dnnl::memory::desc PlainDesc(DType dtype, const Shape& shape);
// Row-major tag for a rank (a, ab, abc, ...).
dnnl::memory::format_tag PlainTag(int rank);
// Channels-last tag for rank 3..5 (acb, acdb, acdeb).
dnnl::memory::format_tag ChannelsLastTag(int rank);
bool IsPlain(const dnnl::memory::desc& md);
// Turns a dnnl::error into a Status that says what was being done.
absl::Status DnnlErrorToStatus(const dnnl::error& e, const std::string& what);
// Name of the implementation oneDNN chose for a primitive descriptor ("brg:avx512_core", ...).
std::string ImplName(const dnnl::primitive_desc_base& pd);

}  // namespace octet

#endif  // OCTET_CORE_DNNL_UTIL_H_
