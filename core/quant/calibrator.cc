#include "core/quant/calibrator.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/model.h"
#include "core/onnx_writer.h"

namespace octet {

Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end) {
  Shape shape = t.shape();
  const size_t row = t.byte_size() / static_cast<size_t>(shape[0]);
  shape[0] = end - begin;
  Tensor out = Tensor::Zeros(t.dtype(), shape);
  std::memcpy(out.data(), static_cast<const char*>(t.data()) + row * begin, row * (end - begin));
  return out;
}

namespace {

std::string DimsText(const std::vector<int64_t>& dims) {
  std::vector<std::string> parts;
  for (int64_t d : dims) parts.push_back(d < 0 ? "?" : absl::StrCat(d));
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

// One loaded graph with some intermediate tensors exposed as outputs.
class Runner {
 public:
  static absl::StatusOr<std::unique_ptr<Runner>> Create(const Graph& source, bool optimize,
                                                        const std::vector<std::string>& tensors,
                                                        int num_threads) {
    auto r = std::unique_ptr<Runner>(new Runner());
    Graph g = source;
    std::map<std::string, int> input_index;
    for (size_t i = 0; i < g.inputs.size(); ++i)
      input_index[g.inputs[i].name] = static_cast<int>(i);
    for (const std::string& t : tensors) {
      if (auto it = input_index.find(t); it != input_index.end()) {
        r->sources_.push_back({true, it->second});
        continue;
      }
      int index = -1;
      for (size_t i = 0; i < g.outputs.size(); ++i) {
        if (g.outputs[i].name == t) index = static_cast<int>(i);
      }
      if (index < 0) {
        index = static_cast<int>(g.outputs.size());
        ValueInfo v;
        v.name = t;
        g.outputs.push_back(v);
      }
      r->sources_.push_back({false, index});
    }
    absl::StatusOr<std::string> bytes = SerializeGraph(g);
    if (!bytes.ok()) return bytes.status();
    LoadOptions lo;
    lo.optimize = optimize;
    absl::StatusOr<std::shared_ptr<const Model>> model = Model::LoadFromBytes(*bytes, lo);
    if (!model.ok()) return model.status();
    r->model_ = *model;
    ContextOptions co;
    co.num_threads = num_threads;
    absl::StatusOr<std::unique_ptr<ExecutionContext>> ctx = r->model_->CreateContext(co);
    if (!ctx.ok()) return ctx.status();
    r->context_ = *std::move(ctx);
    return r;
  }

  // The exposed tensors for this batch of inputs.
  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) {
    absl::StatusOr<std::vector<Tensor>> outs = context_->Run(inputs);
    if (!outs.ok()) return outs.status();
    std::vector<Tensor> values;
    for (const Source& s : sources_)
      values.push_back(s.is_input ? inputs[s.index] : (*outs)[s.index]);
    return values;
  }

 private:
  Runner() = default;
  struct Source {
    bool is_input;
    int index;
  };
  std::vector<Source> sources_;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<ExecutionContext> context_;
};

}  // namespace

absl::StatusOr<Calibrator> Calibrator::Create(const Graph& fp32,
                                              const std::map<std::string, Tensor>& samples,
                                              const CalibratorOptions& options) {
  if (options.batch < 1) return absl::InvalidArgumentError("calibration batch must be >= 1");
  if (options.num_threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  Calibrator c;
  c.fp32_ = fp32;
  c.num_threads_ = options.num_threads;
  std::vector<std::string> names;
  for (const ValueInfo& v : fp32.inputs) names.push_back(v.name);
  for (const auto& [name, t] : samples) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the model has no input '", name, "' (inputs: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  int64_t fixed = 0;
  for (const ValueInfo& v : fp32.inputs) {
    auto it = samples.find(v.name);
    if (it == samples.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing calibration data for input '", v.name, "'"));
    }
    const Tensor& t = it->second;
    const std::string what = absl::StrCat("calibration data for input '", v.name, "'");
    if (t.dtype() != v.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is ", DTypeName(t.dtype()),
                                                     "; the model expects ", DTypeName(v.dtype)));
    }
    if (t.rank() != static_cast<int>(v.dims.size()) || t.rank() == 0 || t.dim(0) < 1) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", ShapeToString(t.shape()),
                                                     "; expected N samples of ", DimsText(v.dims),
                                                     " stacked along dimension 0 (N >= 1)"));
    }
    for (int d = 1; d < t.rank(); ++d) {
      if (v.dims[d] >= 0 && v.dims[d] != t.dim(d)) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has shape ", ShapeToString(t.shape()), "; the model's is ",
                         DimsText(v.dims), " (dimension ", d, ")"));
      }
    }
    if (c.num_samples_ != 0 && t.dim(0) != c.num_samples_) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", t.dim(0), " samples; other inputs have ", c.num_samples_));
    }
    c.num_samples_ = t.dim(0);
    if (v.dims[0] >= 0) fixed = v.dims[0];
    c.inputs_.push_back(t);
  }
  if (fp32.inputs.empty()) return absl::InvalidArgumentError("the model has no inputs");
  c.batch_ = options.batch;
  if (fixed > 0) {
    // A fixed batch dimension: every run takes exactly that many samples.
    if (c.num_samples_ % fixed != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the model's batch dimension is fixed at ", fixed, "; the ", c.num_samples_,
                       " calibration samples are not a multiple of it"));
    }
    c.batch_ = fixed;
    c.fixed_batch_ = true;
  }
  return c;
}

absl::Status Calibrator::ForEachBatch(const std::vector<std::string>& tensors,
                                      const Visitor& visit) const {
  absl::StatusOr<std::unique_ptr<Runner>> runner =
      Runner::Create(fp32_, /*optimize=*/true, tensors, num_threads_);
  if (!runner.ok()) return runner.status();
  for (int64_t begin = 0; begin < num_samples_; begin += batch_) {
    const int64_t end = std::min(num_samples_, begin + batch_);
    std::vector<Tensor> batch;
    for (const Tensor& t : inputs_) batch.push_back(SliceRows(t, begin, end));
    absl::StatusOr<std::vector<Tensor>> values = (*runner)->Run(batch);
    if (!values.ok()) return values.status();
    if (auto s = visit(begin, end, *values); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, CalibratedRange>> Calibrator::Calibrate(
    const std::vector<std::string>& tensors, const RangeEstimatorOptions& options,
    const std::function<void(int64_t, int64_t)>& progress) const {
  std::vector<RangeEstimator> estimators;
  for (size_t i = 0; i < tensors.size(); ++i) {
    absl::StatusOr<RangeEstimator> e = RangeEstimator::Create(options);
    if (!e.ok()) return e.status();
    estimators.push_back(*std::move(e));
  }
  auto observe = [&](int64_t, int64_t done, const std::vector<Tensor>& values) -> absl::Status {
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].dtype() != DType::kF32) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", tensors[i], "' is ",
                                                       DTypeName(values[i].dtype()),
                                                       ", not f32; it cannot be quantized"));
      }
      estimators[i].Observe(absl::MakeConstSpan(values[i].data_as<float>(),
                                                static_cast<size_t>(values[i].num_elements())));
    }
    if (progress) progress(done, num_samples_);
    return absl::OkStatus();
  };
  if (auto s = ForEachBatch(tensors, observe); !s.ok()) return s;
  std::map<std::string, CalibratedRange> ranges;
  for (size_t i = 0; i < tensors.size(); ++i) {
    absl::StatusOr<CalibratedRange> r = estimators[i].Finish();
    if (!r.ok()) {
      return absl::Status(r.status().code(), absl::StrCat("calibrating tensor '", tensors[i],
                                                          "': ", r.status().message()));
    }
    ranges[tensors[i]] = *r;
  }
  return ranges;
}

absl::StatusOr<std::map<std::string, double>> Calibrator::CompareSqnr(
    const Graph& other, const std::vector<std::pair<std::string, std::string>>& tensors,
    int64_t max_samples) const {
  int64_t limit = std::min(std::max<int64_t>(max_samples, 1), num_samples_);
  if (fixed_batch_) limit = std::max(batch_, limit / batch_ * batch_);
  std::vector<std::string> x_names, y_names;
  for (const auto& [x, y] : tensors) {
    x_names.push_back(x);
    y_names.push_back(y);
  }
  absl::StatusOr<std::unique_ptr<Runner>> reference =
      Runner::Create(fp32_, /*optimize=*/true, x_names, num_threads_);
  if (!reference.ok()) return reference.status();
  // Unoptimized: Q/DQ run as written (simulated in FP32), as any ONNX runtime would compute.
  absl::StatusOr<std::unique_ptr<Runner>> test =
      Runner::Create(other, /*optimize=*/false, y_names, num_threads_);
  if (!test.ok()) return test.status();
  std::vector<double> signal(tensors.size(), 0.0), noise(tensors.size(), 0.0);
  for (int64_t begin = 0; begin < limit; begin += batch_) {
    const int64_t end = std::min(limit, begin + batch_);
    std::vector<Tensor> batch;
    for (const Tensor& t : inputs_) batch.push_back(SliceRows(t, begin, end));
    absl::StatusOr<std::vector<Tensor>> x = (*reference)->Run(batch);
    if (!x.ok()) return x.status();
    absl::StatusOr<std::vector<Tensor>> y = (*test)->Run(batch);
    if (!y.ok()) return y.status();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& a = (*x)[i];
      const Tensor& b = (*y)[i];
      if (a.shape() != b.shape() || a.dtype() != DType::kF32 || b.dtype() != DType::kF32) {
        return absl::InternalError(absl::StrCat(
            "tensor '", x_names[i], "' differs in shape/type: ", ShapeToString(a.shape()), " vs ",
            ShapeToString(b.shape())));
      }
      for (int64_t k = 0; k < a.num_elements(); ++k) {
        const double u = a.data_as<float>()[k], v = b.data_as<float>()[k];
        signal[i] += u * u;
        noise[i] += (u - v) * (u - v);
      }
    }
  }
  std::map<std::string, double> sqnr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    sqnr[x_names[i]] = noise[i] == 0 ? std::numeric_limits<double>::infinity()
                                     : 10.0 * std::log10(signal[i] / noise[i]);
  }
  return sqnr;
}

}  // namespace octet
