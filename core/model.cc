#include "core/model.h"

#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dnnl_util.h"
#include "core/graph.h"
#include "core/onnx_importer.h"
#include "core/op_kernel.h"
#include "core/passes.h"
#include "core/passes_qdq.h"
#include "core/plan.h"
#include "core/weight_cache.h"

namespace octet {

struct Model::Shared {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  WeightCache weights;
};

namespace {

absl::Status ValidateOps(const Graph& graph) {
  const OpRegistry& registry = OpRegistry::Default();
  for (const Node& node : graph.nodes) {
    const OpSchema* schema = registry.Find(node.domain, node.op_type);
    if (schema == nullptr) {
      return absl::UnimplementedError(absl::StrCat(node.Label(), ": op ",
                                                   node.domain.empty() ? "" : node.domain + ":",
                                                   node.op_type, " is not supported by Octet"));
    }
    if (schema->validate) {
      if (auto s = schema->validate(node, graph.opset); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

TensorSpec SpecFrom(const ValueInfo& v) {
  TensorSpec spec;
  spec.name = v.name;
  spec.dtype = v.dtype;
  spec.dims = v.dims;
  spec.dim_names = v.dim_names;
  spec.dim_names.resize(spec.dims.size());
  return spec;
}

bool AllStatic(const std::vector<TensorSpec>& specs) {
  for (const TensorSpec& s : specs) {
    for (int64_t d : s.dims) {
      if (d < 0) return false;
    }
  }
  return true;
}

}  // namespace

Model::Model() = default;
Model::~Model() = default;

absl::StatusOr<std::shared_ptr<const Model>> Model::LoadFromFile(const std::string& path,
                                                                 const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open model file '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto model = LoadFromBytes(ss.str(), options);
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

absl::StatusOr<std::shared_ptr<const Model>> Model::LoadFromBytes(const std::string& bytes,
                                                                  const LoadOptions& options) {
  auto graph = ImportOnnxModel(bytes);
  if (!graph.ok()) return graph.status();
  std::shared_ptr<Model> model(new Model());
  model->graph_ = std::make_unique<Graph>(*std::move(graph));
  Graph& g = *model->graph_;
  if (auto s = ValidateOps(g); !s.ok()) return s;
  if (options.optimize) {
    if (auto s = OptimizeGraph(g); !s.ok()) return s;
  }
  for (const ValueInfo& v : g.inputs) {
    if (!v.has_shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph input '", v.name, "' has no declared shape (rank)"));
    }
    model->inputs_.push_back(SpecFrom(v));
  }
  for (const ValueInfo& v : g.outputs) model->outputs_.push_back(SpecFrom(v));
  try {
    model->shared_ = std::make_shared<Shared>();
  } catch (const dnnl::error& e) {
    return DnnlErrorToStatus(e, "creating the oneDNN CPU engine");
  }
  // Fully static models are compiled now, so unsupported shapes/attributes fail the load and the
  // prepared weights are cached for every later context.
  model->parameter_inputs_ = ExecutionPlan::ParameterInputs(g);
  if (AllStatic(model->inputs_) && model->parameter_inputs_.empty()) {
    std::vector<Shape> shapes;
    for (const TensorSpec& s : model->inputs_) shapes.push_back(s.dims);
    PlanOptions po{&model->shared_->engine, &model->shared_->weights, 1};
    auto plan = ExecutionPlan::Build(g, shapes, po);
    if (!plan.ok()) return plan.status();
  }
  // The file's bytes, its parse and the FP32 tensors the passes replaced (quantized weights) are
  // freed by now, but glibc keeps freed heap pages mapped: hand them back so the process holds
  // what the model holds.
  malloc_trim(0);
  return std::shared_ptr<const Model>(std::move(model));
}

int64_t Model::weight_bytes() const {
  int64_t total = 0;
  for (const auto& [name, t] : graph_->initializers) total += static_cast<int64_t>(t.byte_size());
  return total;
}

namespace {

// Initializers that are quantization parameters (scales, zero points) of the quantized ops and
// of QuantizeLinear/DequantizeLinear: an FP32 model has none of them.
std::set<std::string> QuantParamInitializers(const Graph& g) {
  static const std::map<std::string, std::vector<size_t>> kParams = {
      {"QConv", {1, 2, 4, 5, 6, 7, 10, 11}},
      {"QLinearConv", {1, 2, 4, 5, 6, 7}},
      {"QMatMul", {1, 2, 4, 5, 6, 7}},
      {"QLinearMatMul", {1, 2, 4, 5, 6, 7}},
      {"QPool", {1, 2, 3, 4}},
      {"QuantizeLinear", {1, 2}},
      {"DequantizeLinear", {1, 2}}};
  std::set<std::string> params;
  for (const Node& n : g.nodes) {
    std::vector<size_t> slots;
    if (n.op_type == "QAdd" || n.op_type == "QConcat") {
      slots = {0, 1};  // y's, then every (x, scale, zero point) triple's
      for (size_t i = 3; i + 1 < n.inputs.size(); i += 3) slots.insert(slots.end(), {i, i + 1});
    } else if (auto it = kParams.find(n.op_type); it != kParams.end()) {
      slots = it->second;
    }
    for (size_t i : slots) {
      if (i < n.inputs.size() && !n.inputs[i].empty()) params.insert(n.inputs[i]);
    }
  }
  return params;
}

}  // namespace

int64_t Model::fp32_weight_bytes() const {
  const std::set<std::string> quant_params = QuantParamInitializers(*graph_);
  int64_t total = 0;
  for (const auto& [name, t] : graph_->initializers) {
    // Integer index/shape tensors are not weights, nor are quantization parameters; quantized
    // weights and biases count as their FP32 size.
    if (t.dtype() == DType::kS64 || quant_params.count(name)) continue;
    total += t.num_elements() * 4;
  }
  return total;
}

std::string Model::Describe() const {
  std::string s;
  const std::vector<std::string> precisions = NodePrecisions(*graph_);
  for (const Node& node : graph_->nodes) {
    std::vector<std::string> ins;
    for (const std::string& in : node.inputs) {
      if (!in.empty() && graph_->FindInitializer(in) == nullptr) ins.push_back(in);
    }
    absl::StrAppend(&s, node.domain.empty() ? "" : node.domain + ":", node.op_type, " '", node.name,
                    "' [", precisions[&node - graph_->nodes.data()], "] (",
                    absl::StrJoin(ins, ", "), ") -> (", absl::StrJoin(node.outputs, ", "), ")");
    for (const PostOp& p : node.post_ops) {
      static const char* kNames[] = {"relu", "leaky_relu",   "clip",       "sigmoid",
                                     "tanh", "hard_sigmoid", "hard_swish", "sum"};
      absl::StrAppend(&s, " +", kNames[static_cast<int>(p.kind)]);
    }
    absl::StrAppend(&s, "\n");
  }
  return s;
}

absl::StatusOr<std::unique_ptr<ExecutionContext>> Model::CreateContext(
    const ContextOptions& options) const {
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError("ContextOptions.num_threads must be >= 1");
  }
  if (options.max_cached_plans < 1) {
    return absl::InvalidArgumentError("ContextOptions.max_cached_plans must be >= 1");
  }
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(shared_from_this(), options));
}

struct ExecutionContext::Impl {
  ContextOptions options;
  dnnl::stream stream;
  // Input shapes, then the values of shape-like inputs.
  using Key = std::pair<std::vector<Shape>, std::vector<std::vector<uint8_t>>>;
  // Most recently used first.
  std::list<std::pair<Key, std::unique_ptr<ExecutionPlan>>> plans;
};

ExecutionContext::ExecutionContext(std::shared_ptr<const Model> model,
                                   const ContextOptions& options)
    : model_(std::move(model)), impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->stream = dnnl::stream(model_->shared_->engine);
}

ExecutionContext::~ExecutionContext() = default;

absl::StatusOr<ExecutionPlan*> ExecutionContext::GetPlan(absl::Span<const Shape> shapes,
                                                         absl::Span<const Tensor> inputs) {
  Impl::Key key;
  key.first.assign(shapes.begin(), shapes.end());
  std::vector<Tensor> bound(inputs.size());
  for (size_t i : model_->parameter_inputs_) {
    if (i >= inputs.size()) continue;
    if (inputs[i].num_elements() > ExecutionPlan::kMaxParameterElements) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", model_->inputs()[i].name, "' sets an op parameter and may have at most ",
          ExecutionPlan::kMaxParameterElements, " elements"));
    }
    bound[i] = inputs[i];
    key.second.emplace_back(static_cast<const uint8_t*>(inputs[i].data()),
                            static_cast<const uint8_t*>(inputs[i].data()) + inputs[i].byte_size());
  }
  for (auto it = impl_->plans.begin(); it != impl_->plans.end(); ++it) {
    if (it->first == key) {
      impl_->plans.splice(impl_->plans.begin(), impl_->plans, it);
      return impl_->plans.front().second.get();
    }
  }
  omp_set_num_threads(impl_->options.num_threads);
  PlanOptions po{&model_->shared_->engine, &model_->shared_->weights, impl_->options.num_threads};
  auto plan = ExecutionPlan::Build(model_->graph(), shapes, po, bound);
  if (!plan.ok()) return plan.status();
  std::unique_ptr<ExecutionPlan> chosen = *std::move(plan);
  if (impl_->options.num_threads > 1 && impl_->options.tune_threads_below_micros > 0) {
    chosen = PickThreadCount(std::move(chosen), shapes, inputs, bound);
  }
  impl_->plans.emplace_front(std::move(key), std::move(chosen));
  while (static_cast<int>(impl_->plans.size()) > impl_->options.max_cached_plans) {
    impl_->plans.pop_back();
  }
  malloc_trim(0);  // the build's temporaries (weights before their reorder); plans are rare
  return impl_->plans.front().second.get();
}

std::unique_ptr<ExecutionPlan> ExecutionContext::PickThreadCount(
    std::unique_ptr<ExecutionPlan> wide, absl::Span<const Shape> shapes,
    absl::Span<const Tensor> inputs, absl::Span<const Tensor> bound) {
  std::vector<Tensor> zeros;
  if (inputs.empty()) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      zeros.push_back(Tensor::Zeros(model_->inputs()[i].dtype, shapes[i]));
    }
    inputs = zeros;
  }
  const std::function<int64_t()>& injected = impl_->options.clock_nanos;
  auto now_nanos = [&injected]() -> int64_t {
    if (injected) return injected();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  // Microseconds of one run, or a negative value if it failed.
  auto time_run = [&](ExecutionPlan& p) {
    omp_set_num_threads(p.num_threads());
    const int64_t start = now_nanos();
    const bool ok = p.Run(inputs, impl_->stream).ok();
    return ok ? static_cast<double>(now_nanos() - start) / 1000.0 : -1.0;
  };
  // The first run touches the buffers for the first time: only the second is representative.
  const double first = time_run(*wide) < 0 ? -1.0 : time_run(*wide);
  if (first < 0 || first >= static_cast<double>(impl_->options.tune_threads_below_micros)) {
    return wide;
  }
  PlanOptions one{&model_->shared_->engine, &model_->shared_->weights, 1};
  omp_set_num_threads(1);
  auto narrow = ExecutionPlan::Build(model_->graph(), shapes, one, bound);
  std::unique_ptr<ExecutionPlan> keep = std::move(wide);
  if (narrow.ok() && time_run(**narrow) >= 0) {
    // Interleaved, so that a burst of load on the machine affects both alike.
    constexpr int kRounds = 7;
    std::vector<double> wide_us, narrow_us;
    for (int i = 0; i < kRounds; ++i) {
      wide_us.push_back(time_run(*keep));
      narrow_us.push_back(time_run(**narrow));
    }
    std::sort(wide_us.begin(), wide_us.end());
    std::sort(narrow_us.begin(), narrow_us.end());
    // Ties go to the thread count the caller asked for.
    if (narrow_us[0] >= 0 && narrow_us[kRounds / 2] < 0.97 * wide_us[kRounds / 2]) {
      keep = *std::move(narrow);
    }
  }
  narrow = absl::UnknownError("discarded");  // frees the losing plan before the cache is pruned
  model_->shared_->weights.DropUnused();     // layouts only the discarded plan used
  return keep;
}

absl::StatusOr<const ExecutionPlan*> ExecutionContext::PlanFor(
    absl::Span<const Shape> input_shapes) {
  auto plan = GetPlan(input_shapes, {});
  if (!plan.ok()) return plan.status();
  return *plan;
}

absl::Status ExecutionContext::ValidateInputs(absl::Span<const Tensor> inputs) const {
  const auto& specs = model_->inputs();
  if (inputs.size() != specs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model expects ", specs.size(), " inputs, got ", inputs.size()));
  }
  std::map<std::string, int64_t> bound;  // symbolic dimension name -> value
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& spec = specs[i];
    const Tensor& t = inputs[i];
    if (t.dtype() != spec.dtype) {
      return absl::InvalidArgumentError(absl::StrCat("input '", spec.name, "': expected dtype ",
                                                     DTypeName(spec.dtype), ", got ",
                                                     DTypeName(t.dtype())));
    }
    if (t.rank() != static_cast<int>(spec.dims.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", spec.name, "': expected rank ", spec.dims.size(), " ",
                       ShapeToString(spec.dims), ", got shape ", ShapeToString(t.shape())));
    }
    for (size_t d = 0; d < spec.dims.size(); ++d) {
      if (spec.dims[d] >= 0 && t.dim(d) != spec.dims[d]) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", spec.name, "': dimension ", d, " must be ", spec.dims[d],
                         ", got ", t.dim(d), " (shape ", ShapeToString(t.shape()), ")"));
      }
      if (spec.dims[d] < 0 && t.dim(d) < 1) {
        return absl::InvalidArgumentError(absl::StrCat("input '", spec.name, "': dimension ", d,
                                                       " must be >= 1, got ", t.dim(d)));
      }
      if (spec.dims[d] < 0 && !spec.dim_names[d].empty()) {
        auto [it, inserted] = bound.emplace(spec.dim_names[d], t.dim(d));
        if (!inserted && it->second != t.dim(d)) {
          return absl::InvalidArgumentError(
              absl::StrCat("input '", spec.name, "': dimension '", spec.dim_names[d], "' is ",
                           t.dim(d), " here but ", it->second, " in another input"));
        }
      }
    }
    if (t.data() == nullptr && t.num_elements() > 0) {
      return absl::InvalidArgumentError(absl::StrCat("input '", spec.name, "' has no data"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> ExecutionContext::Run(absl::Span<const Tensor> inputs) {
  if (auto s = ValidateInputs(inputs); !s.ok()) return s;
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  auto plan = GetPlan(shapes, inputs);
  if (!plan.ok()) return plan.status();
  // OpenMP's team size is a per-thread setting: set it on the calling thread for every run.
  omp_set_num_threads((*plan)->num_threads());
  return (*plan)->Run(inputs, impl_->stream);
}

}  // namespace octet
