#include "absl/strings/str_cat.h"
#include "core/op_kernel.h"

namespace octet {

dnnl::memory PlanValue::Memory(const dnnl::engine& engine) {
  if (!mem_) mem_ = dnnl::memory(md, engine, buffer.data());
  return mem_;
}

absl::Status BuildContext::Invalid(const std::string& why) const {
  return absl::InvalidArgumentError(absl::StrCat(node().Label(), ": ", why));
}

absl::Status BuildContext::Unsupported(const std::string& why) const {
  return absl::UnimplementedError(absl::StrCat(node().Label(), ": ", why));
}

void OpRegistry::Register(OpSchema schema) {
  auto key = std::make_pair(schema.domain, schema.op_type);
  ops_[key] = std::move(schema);
}

const OpSchema* OpRegistry::Find(const std::string& domain, const std::string& op_type) const {
  auto it = ops_.find({domain, op_type});
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::OpTypes() const {
  std::vector<std::string> out;
  for (const auto& [key, schema] : ops_) {
    out.push_back(key.first.empty() ? key.second : absl::StrCat(key.first, ":", key.second));
  }
  return out;
}

const OpRegistry& OpRegistry::Default() {
  // Immutable after construction; built once on first use.
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    RegisterConvOps(*r);
    RegisterGemmOps(*r);
    RegisterPoolOps(*r);
    RegisterNormOps(*r);
    RegisterEltwiseOps(*r);
    RegisterBinaryOps(*r);
    RegisterShapeOps(*r);
    RegisterTensorOps(*r);
    RegisterReduceOps(*r);
    RegisterQuantOps(*r);
    return r;
  }();
  return *registry;
}

}  // namespace octet
