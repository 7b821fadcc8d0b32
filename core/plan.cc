#include "core/plan.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dnnl_util.h"
#include "core/weight_cache.h"

namespace octet {

class PlanBuilder : public BuildContext {
 public:
  PlanBuilder(const Graph& graph, const PlanOptions& options, ExecutionPlan* plan)
      : graph_(graph), options_(options), plan_(plan), stream_(*options.engine) {}

  absl::Status Build(absl::Span<const Shape> input_shapes, absl::Span<const Tensor> bound);

  // BuildContext.
  const Node& node() const override { return *node_; }
  int64_t opset() const override { return graph_.opset; }
  const dnnl::engine& engine() const override { return *options_.engine; }
  WeightCache& weights() override { return *options_.weights; }
  void KeepAlive(Tensor t) override { plan_->kept_.push_back(std::move(t)); }
  int num_threads() const override { return options_.num_threads; }
  PlanValue& input(size_t i) override;
  PlanValue& input_any_layout(size_t i) override { return *Lookup(node_->inputs[i]); }
  absl::StatusOr<PlanValue*> input_as(size_t i, const dnnl::memory::desc& md) override;
  const Tensor* constant(size_t i) override;
  PlanValue& DefineOutput(size_t i, DType dtype, Shape shape,
                          const dnnl::memory::desc* md) override;
  void SetConstantOutput(size_t i, Tensor value) override;
  PlanValue* DefineOutputInPlace(size_t i, PlanValue* donor) override;
  std::vector<const Node*> Consumers(size_t i, bool* is_graph_output) const override;

 private:
  PlanValue* NewValue(const std::string& name) {
    plan_->values_.emplace_back();
    plan_->values_.back().name = name;
    return &plan_->values_.back();
  }
  // The current version of a value; initializers are materialized on first use.
  PlanValue* Lookup(const std::string& name);
  // A converted copy of `src` in layout `md`, made by a reorder step (or now, if constant).
  absl::StatusOr<PlanValue*> Convert(PlanValue* src, const dnnl::memory::desc& md,
                                     const std::string& suffix);
  absl::Status BuildNode(const Node& node);
  // Storage for a value of `bytes`, reusing a buffer whose value is dead (liveness by node index),
  // viewed as `dtype`/`shape` (raw bytes when the layout is blocked).
  Tensor Allocate(size_t bytes, DType dtype, const Shape& shape, bool plain);
  // Returns the buffers of `name` (and its converted copies) to the pool.
  void Release(const std::string& name);
  size_t node_index_ = 0;
  std::map<std::string, size_t> last_use_;  // value -> index of its last consumer node
  std::multimap<size_t, Tensor> pool_;      // free storage by size
  std::map<std::string, std::vector<PlanValue*>> copies_;  // value -> its converted copies
  std::set<const PlanValue*> pinned_;                      // graph inputs/outputs: never reused
  // True while building a node whose inputs are all constant: its outputs are folded now and
  // live for the whole plan, so they must not take a pooled buffer that earlier steps still
  // write at run time.
  bool folding_ = false;

  const Graph& graph_;
  PlanOptions options_;
  ExecutionPlan* plan_;
  dnnl::stream stream_;  // for folding constants while building
  std::map<std::string, PlanValue*> values_;
  std::map<std::string, PlanValue*> converted_;  // WeightCache::Key(name, md) -> copy
  const Node* node_ = nullptr;
  std::vector<ExecutionPlan::Step> pending_;  // reorders to run before the current node
};

PlanValue* PlanBuilder::Lookup(const std::string& name) {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const Tensor* init = graph_.FindInitializer(name);
  if (init == nullptr) return nullptr;
  PlanValue* v = NewValue(name);
  v->dtype = init->dtype();
  v->shape = init->shape();
  v->buffer = *init;  // shares storage with the graph; never written
  v->is_constant = true;
  if (IsDnnlType(v->dtype)) v->md = PlainDesc(v->dtype, v->shape);
  values_[name] = v;
  return v;
}

absl::StatusOr<PlanValue*> PlanBuilder::Convert(PlanValue* src, const dnnl::memory::desc& md,
                                                const std::string& suffix) {
  std::string key = WeightCache::Key(src->name, md);
  auto it = converted_.find(key);
  if (it != converted_.end()) return it->second;
  PlanValue* dst = NewValue(absl::StrCat(src->name, "@", suffix));
  dst->dtype = src->dtype;
  dst->shape = src->shape;
  dst->md = md;
  // Plain copies are typed views (kernels read them as dtype/shape); blocked ones are raw bytes.
  const bool plain = IsPlain(md);
  if (src->is_constant) {
    dst->buffer = plain ? Tensor::Zeros(dst->dtype, dst->shape)
                        : Tensor::Zeros(DType::kU8, {static_cast<int64_t>(md.get_size())});
  } else {
    dst->buffer = Allocate(md.get_size(), dst->dtype, dst->shape, plain);
  }
  if (!src->is_constant) copies_[src->name].push_back(dst);
  dnnl::reorder::primitive_desc pd(engine(), src->md, engine(), md);
  auto kernel = std::make_unique<PrimitiveKernel>(
      dnnl::reorder(pd),
      std::unordered_map<int, dnnl::memory>{{DNNL_ARG_FROM, src->Memory(engine())},
                                            {DNNL_ARG_TO, dst->Memory(engine())}},
      ImplName(pd));
  if (src->is_constant) {
    auto s = kernel->Run(stream_);
    if (!s.ok()) return s;
    stream_.wait();
    dst->is_constant = true;
  } else {
    ExecutionPlan::Step step;
    step.op_type = "Reorder";
    step.inputs = {src->name};
    step.outputs = {dst->name};
    step.impl = kernel->Describe();
    step.kernel = std::move(kernel);
    pending_.push_back(std::move(step));
  }
  converted_[key] = dst;
  return dst;
}

Tensor PlanBuilder::Allocate(size_t bytes, DType dtype, const Shape& shape, bool plain) {
  Tensor storage;
  auto it = pool_.lower_bound(bytes);
  // Reuse only buffers of a similar size so one large buffer is not tied up by a small value.
  if (!folding_ && it != pool_.end() && it->first <= 2 * bytes + 4096) {
    storage = std::move(it->second);
    pool_.erase(it);
  } else {
    storage = Tensor::Zeros(DType::kU8, {static_cast<int64_t>(std::max<size_t>(bytes, 1))});
    plan_->arena_.push_back(storage);
  }
  if (!plain) return storage;
  return Tensor::Borrow(dtype, shape, storage.data());
}

void PlanBuilder::Release(const std::string& name) {
  auto it = values_.find(name);
  if (it == values_.end()) return;
  std::vector<PlanValue*> dead = copies_[name];
  dead.push_back(it->second);
  for (PlanValue* v : dead) {
    if (v->is_constant || pinned_.count(v) || v->buffer.data() == nullptr) continue;
    // Find the arena block that backs this value and return it.
    for (const Tensor& block : plan_->arena_) {
      if (block.data() == v->buffer.data()) {
        pool_.emplace(block.byte_size(), block);
        break;
      }
    }
  }
  for (auto c = converted_.begin(); c != converted_.end();) {
    bool is_copy = std::find(dead.begin(), dead.end(), c->second) != dead.end();
    c = is_copy ? converted_.erase(c) : std::next(c);
  }
  copies_.erase(name);
}

PlanValue& PlanBuilder::input(size_t i) {
  PlanValue* v = Lookup(node_->inputs[i]);
  if (!IsDnnlType(v->dtype) || IsPlain(v->md)) return *v;
  auto plain = Convert(v, PlainDesc(v->dtype, v->shape), "plain");
  // A reorder between two descriptors of one logical tensor cannot fail to be created.
  return plain.ok() ? **plain : *v;
}

absl::StatusOr<PlanValue*> PlanBuilder::input_as(size_t i, const dnnl::memory::desc& md) {
  PlanValue* v = Lookup(node_->inputs[i]);
  if (v->md == md) return v;
  if (!IsDnnlType(v->dtype)) return Unsupported("input is not a oneDNN type");
  return Convert(v, md, "reordered");
}

const Tensor* PlanBuilder::constant(size_t i) {
  if (!has_input(i)) return nullptr;
  PlanValue* v = Lookup(node_->inputs[i]);
  if (v == nullptr || !v->is_constant) return nullptr;
  return &input(i).buffer;
}

PlanValue& PlanBuilder::DefineOutput(size_t i, DType dtype, Shape shape,
                                     const dnnl::memory::desc* md) {
  PlanValue* v = NewValue(node_->outputs[i]);
  v->dtype = dtype;
  v->shape = std::move(shape);
  if (md != nullptr) {
    v->md = *md;
    v->buffer = Allocate(md->get_size(), dtype, v->shape, IsPlain(*md));
  } else {
    if (IsDnnlType(dtype)) v->md = PlainDesc(dtype, v->shape);
    v->buffer = Allocate(NumElements(v->shape) * DTypeSize(dtype), dtype, v->shape, true);
  }
  values_[v->name] = v;
  return *v;
}

PlanValue* PlanBuilder::DefineOutputInPlace(size_t i, PlanValue* donor) {
  if (donor == nullptr || donor->is_constant || pinned_.count(donor) ||
      donor->buffer.data() == nullptr) {
    return nullptr;
  }
  // The donor (or the value it was converted from) must have no reader after this node.
  std::string source = donor->name;
  for (const auto& [name, copies] : copies_) {
    if (std::find(copies.begin(), copies.end(), donor) != copies.end()) source = name;
  }
  auto use = last_use_.find(source);
  if (use == last_use_.end() || use->second != node_index_) return nullptr;
  // The node must read the donor only through the slot being overwritten.
  if (std::count(node_->inputs.begin(), node_->inputs.end(), source) != 1) return nullptr;
  PlanValue* v = NewValue(node_->outputs[i]);
  v->dtype = donor->dtype;
  v->shape = donor->shape;
  v->md = donor->md;
  v->buffer = donor->buffer;
  donor->buffer = Tensor();  // the storage now belongs to the output; Release skips the donor
  values_[v->name] = v;
  return v;
}

std::vector<const Node*> PlanBuilder::Consumers(size_t i, bool* is_graph_output) const {
  const std::string& name = node_->outputs[i];
  std::vector<const Node*> out;
  for (const Node& n : graph_.nodes) {
    if (std::find(n.inputs.begin(), n.inputs.end(), name) != n.inputs.end()) out.push_back(&n);
  }
  *is_graph_output = false;
  for (const ValueInfo& v : graph_.outputs) *is_graph_output |= v.name == name;
  return out;
}

void PlanBuilder::SetConstantOutput(size_t i, Tensor value) {
  PlanValue* v = NewValue(node_->outputs[i]);
  v->dtype = value.dtype();
  v->shape = value.shape();
  if (IsDnnlType(v->dtype)) v->md = PlainDesc(v->dtype, v->shape);
  v->buffer = std::move(value);
  v->is_constant = true;
  values_[v->name] = v;
}

absl::Status PlanBuilder::BuildNode(const Node& node) {
  node_ = &node;
  const OpSchema* schema = OpRegistry::Default().Find(node.domain, node.op_type);
  if (schema == nullptr) return Unsupported("op is not supported");
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (has_input(i) && Lookup(node.inputs[i]) == nullptr) {
      return Invalid(absl::StrCat("input '", node.inputs[i], "' has no producer"));
    }
  }
  bool all_constant = true;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (has_input(i) && !Lookup(node.inputs[i])->is_constant) all_constant = false;
  }
  folding_ = all_constant;
  auto kernel = schema->build(*this);
  folding_ = false;
  if (!kernel.ok()) return kernel.status();
  for (const std::string& out : node.outputs) {
    if (out.empty() || values_.count(out)) continue;
    if (graph_.UseCount(out) > 0) {
      return Unsupported(absl::StrCat("output '", out, "' is used but not produced by Octet"));
    }
  }
  if (*kernel == nullptr) {
    pending_.clear();
    return absl::OkStatus();
  }
  if (all_constant) {
    // Constant folding: every input is known, so run the kernel now and keep its results.
    for (auto& step : pending_) {
      if (auto s = step.kernel->Run(stream_); !s.ok()) return s;
    }
    pending_.clear();
    if (auto s = (*kernel)->Run(stream_); !s.ok()) return s;
    stream_.wait();
    for (const std::string& out : node.outputs) {
      if (out.empty() || !values_.count(out)) continue;
      PlanValue* v = values_[out];
      if (IsDnnlType(v->dtype) && !IsPlain(v->md)) {
        auto plain = Convert(v, PlainDesc(v->dtype, v->shape), "plain");
        if (!plain.ok()) return plain.status();
        (*plain)->is_constant = true;
        values_[out] = *plain;
      }
      values_[out]->is_constant = true;
    }
    return absl::OkStatus();
  }
  for (auto& step : pending_) plan_->steps_.push_back(std::move(step));
  pending_.clear();
  ExecutionPlan::Step step;
  step.node_name = node.name;
  step.op_type = node.op_type;
  step.inputs = node.inputs;
  step.outputs = node.outputs;
  step.impl = (*kernel)->Describe();
  step.kernel = *std::move(kernel);
  plan_->steps_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status PlanBuilder::Build(absl::Span<const Shape> input_shapes,
                                absl::Span<const Tensor> bound) {
  if (input_shapes.size() != graph_.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", graph_.inputs.size(),
                                                   " input shapes, got ", input_shapes.size()));
  }
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    PlanValue* v = NewValue(graph_.inputs[i].name);
    v->dtype = graph_.inputs[i].dtype;
    v->shape = input_shapes[i];
    if (IsDnnlType(v->dtype)) v->md = PlainDesc(v->dtype, v->shape);
    v->buffer = Tensor::Zeros(v->dtype, v->shape);  // never pooled: Run copies inputs here
    if (i < bound.size() && bound[i].data() != nullptr && bound[i].dtype() == v->dtype &&
        bound[i].shape() == v->shape) {
      std::memcpy(v->buffer.data(), bound[i].data(), v->buffer.byte_size());
      v->is_constant = true;
    }
    values_[v->name] = v;
    plan_->inputs_.push_back(v);
  }
  for (PlanValue* v : plan_->inputs_) pinned_.insert(v);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    for (const std::string& in : graph_.nodes[i].inputs) last_use_[in] = i;
  }
  for (const ValueInfo& out : graph_.outputs) last_use_[out.name] = graph_.nodes.size();
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& node = graph_.nodes[i];
    node_index_ = i;
    try {
      if (auto s = BuildNode(node); !s.ok()) return s;
    } catch (const dnnl::error& e) {
      return DnnlErrorToStatus(e, node.Label());
    }
    // Buffers of values no later node reads are free for the values built next.
    for (const std::string& in : node.inputs) {
      if (!in.empty() && last_use_[in] == i) Release(in);
    }
    for (const std::string& out : node.outputs) {
      if (!out.empty() && !last_use_.count(out)) Release(out);
    }
  }
  for (const ValueInfo& out : graph_.outputs) {
    PlanValue* v = Lookup(out.name);
    if (v == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", out.name, "' is not produced"));
    }
    if (IsDnnlType(v->dtype) && !IsPlain(v->md)) {
      auto plain = Convert(v, PlainDesc(v->dtype, v->shape), "plain");
      if (!plain.ok()) return plain.status();
      v = *plain;
    }
    for (auto& step : pending_) plan_->steps_.push_back(std::move(step));
    pending_.clear();
    plan_->outputs_.push_back(v);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ExecutionPlan>> ExecutionPlan::Build(
    const Graph& graph, absl::Span<const Shape> input_shapes, const PlanOptions& options,
    absl::Span<const Tensor> bound_values) {
  std::unique_ptr<ExecutionPlan> plan(new ExecutionPlan());
  plan->num_threads_ = options.num_threads;
  try {
    PlanBuilder builder(graph, options, plan.get());
    if (auto s = builder.Build(input_shapes, bound_values); !s.ok()) return s;
  } catch (const dnnl::error& e) {
    return DnnlErrorToStatus(e, "building the plan");
  }
  return plan;
}

absl::StatusOr<std::vector<Tensor>> ExecutionPlan::Run(absl::Span<const Tensor> inputs,
                                                       dnnl::stream& stream) {
  if (inputs.size() != inputs_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", inputs_.size(), " inputs, got ", inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    PlanValue* v = inputs_[i];
    if (inputs[i].dtype() != v->dtype || inputs[i].shape() != v->shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", v->name, "': expected ", DTypeName(v->dtype), ShapeToString(v->shape),
          ", got ", DTypeName(inputs[i].dtype()), ShapeToString(inputs[i].shape())));
    }
    if (v->buffer.byte_size() > 0) {
      std::memcpy(v->buffer.data(), inputs[i].data(), v->buffer.byte_size());
    }
  }
  try {
    for (Step& step : steps_) {
      if (auto s = step.kernel->Run(stream); !s.ok()) return s;
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return DnnlErrorToStatus(e, "running the plan");
  }
  std::vector<Tensor> out;
  out.reserve(outputs_.size());
  for (PlanValue* v : outputs_) {
    Tensor t = Tensor::Zeros(v->dtype, v->shape);
    if (t.byte_size() > 0) std::memcpy(t.data(), v->buffer.data(), t.byte_size());
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<size_t> ExecutionPlan::ParameterInputs(const Graph& graph) {
  // Input slots that configure an op rather than carry data.
  static const std::map<std::string, std::vector<size_t>> kSlots = {
      {"Reshape", {1}},      {"Slice", {1, 2, 3, 4}},
      {"Pad", {1, 2, 3}},    {"Resize", {1, 2, 3}},
      {"Upsample", {1}},     {"Expand", {1}},
      {"Tile", {1}},         {"Squeeze", {1}},
      {"Unsqueeze", {1}},    {"ConstantOfShape", {0}},
      {"Range", {0, 1, 2}},  {"Split", {1}},
      {"ReduceSum", {1}},    {"ReduceMean", {1}},
      {"ReduceMax", {1}},    {"ReduceMin", {1}},
      {"ReduceProd", {1}},   {"ReduceL1", {1}},
      {"ReduceL2", {1}},     {"ReduceSumSquare", {1}},
      {"ReduceLogSum", {1}}, {"ReduceLogSumExp", {1}},
      {"TopK", {1}},         {"OneHot", {1}}};
  std::vector<size_t> out;
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    const std::string& name = graph.inputs[i].name;
    bool is_param = false;
    for (const Node& node : graph.nodes) {
      auto it = node.domain.empty() ? kSlots.find(node.op_type) : kSlots.end();
      if (it == kSlots.end()) continue;
      for (size_t slot : it->second) {
        is_param |= slot < node.inputs.size() && node.inputs[slot] == name;
      }
    }
    if (is_param) out.push_back(i);
  }
  return out;
}

std::string ExecutionPlan::Describe() const {
  std::string s;
  auto value_str = [this](const std::string& name) {
    const PlanValue* v = FindValue(name);
    if (v == nullptr) return name;
    return absl::StrCat(name, ":", DTypeName(v->dtype), ShapeToString(v->shape));
  };
  for (const Step& step : steps_) {
    std::vector<std::string> ins, outs;
    for (const auto& n : step.inputs) {
      if (!n.empty()) ins.push_back(value_str(n));
    }
    for (const auto& n : step.outputs) {
      if (!n.empty()) outs.push_back(value_str(n));
    }
    absl::StrAppend(&s, step.op_type, step.node_name.empty() ? "" : " ", step.node_name, " (",
                    absl::StrJoin(ins, ", "), ") -> (", absl::StrJoin(outs, ", "), ") [", step.impl,
                    "]\n");
  }
  return s;
}

int64_t ExecutionPlan::activation_bytes() const {
  int64_t total = 0;
  for (const Tensor& block : arena_) total += static_cast<int64_t>(block.byte_size());
  for (const PlanValue* v : inputs_) total += static_cast<int64_t>(v->buffer.byte_size());
  return total;
}

const PlanValue* ExecutionPlan::FindValue(const std::string& name) const {
  const PlanValue* found = nullptr;
  for (const PlanValue& v : values_) {
    if (v.name == name) found = &v;  // the last version (after fusion passes' renames)
  }
  return found;
}

}  // namespace octet
