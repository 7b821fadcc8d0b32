// QuantizeWithFidelityGuard (core/quant/quantizer.h): mixed precision chosen by measured
// sensitivity, without labels. Like Intel Neural Compressor's fallback strategy, each candidate
// layer is kept alone in FP32 once and the metric measured; layers then move to FP32 in order of
// that gain until the INT8 model's output follows FP32 closely enough.
#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/onnx_importer.h"
#include "core/quant/calibrator.h"
#include "core/quant/quant_session.h"
#include "core/quant/quantizer.h"

namespace octet {
namespace {

using quant_internal::BuildModel;
using quant_internal::Session;
using quant_internal::StartSession;

// First output of `g` (optimized: a QDQ graph runs in INT8) for every sample, flattened: the
// samples' values one after another. `per_sample` receives the values per sample.
absl::StatusOr<std::vector<float>> FirstOutputs(const Graph& g,
                                                const std::map<std::string, Tensor>& inputs,
                                                int num_threads, int64_t batch,
                                                int64_t* per_sample) {
  if (g.outputs.empty()) return absl::InvalidArgumentError("the model has no outputs");
  CalibratorOptions co;
  co.batch = batch;
  co.num_threads = num_threads;
  absl::StatusOr<Calibrator> runner = Calibrator::Create(g, inputs, co);
  if (!runner.ok()) {
    return absl::Status(runner.status().code(),
                        absl::StrCat("validation data: ", runner.status().message()));
  }
  std::vector<float> values;
  *per_sample = 0;
  auto collect = [&](int64_t begin, int64_t end, const std::vector<Tensor>& v) -> absl::Status {
    const Tensor& y = v[0];
    if (y.dtype() != DType::kF32 || y.num_elements() == 0 ||
        y.num_elements() % (end - begin) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("output '", g.outputs[0].name,
                                                     "' is not f32 values per sample (shape ",
                                                     ShapeToString(y.shape()), ")"));
    }
    *per_sample = y.num_elements() / (end - begin);
    values.insert(values.end(), y.data_as<float>(), y.data_as<float>() + y.num_elements());
    return absl::OkStatus();
  };
  if (auto s = runner->ForEachBatch({g.outputs[0].name}, collect); !s.ok()) return s;
  return values;
}

// Mean over samples of cos(a_i, b_i); two zero vectors count as equal.
double MeanCosine(const std::vector<float>& a, const std::vector<float>& b, int64_t per_sample) {
  const int64_t n = static_cast<int64_t>(a.size()) / per_sample;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t k = i * per_sample; k < (i + 1) * per_sample; ++k) {
      ab += static_cast<double>(a[k]) * b[k];
      aa += static_cast<double>(a[k]) * a[k];
      bb += static_cast<double>(b[k]) * b[k];
    }
    sum += aa == 0 && bb == 0 ? 1.0 : (aa == 0 || bb == 0 ? 0.0 : ab / std::sqrt(aa * bb));
  }
  return sum / static_cast<double>(n);
}

// The guard's state: FP32 reference outputs and a way to score a set of exclusions, on all
// validation samples or on the first `probe_samples` of them (the per-layer probes).
class FidelityProbe {
 public:
  FidelityProbe(const Session& session, const QuantizeOptions& options,
                const std::map<std::string, Tensor>& validation, std::vector<float> reference,
                int64_t per_sample, int64_t batch, int64_t probe_samples)
      : session_(session),
        options_(options),
        validation_(validation),
        reference_(std::move(reference)),
        per_sample_(per_sample),
        batch_(batch) {
    for (const auto& [name, t] : validation) subset_[name] = SliceRows(t, 0, probe_samples);
    subset_reference_.assign(reference_.begin(), reference_.begin() + probe_samples * per_sample);
  }

  // Builds the QDQ model for `exclude` and measures its mean cosine against FP32.
  absl::StatusOr<double> Score(const std::set<std::string>& exclude, bool subset,
                               QdqPlan* plan) const {
    absl::StatusOr<QuantizeResult> r =
        BuildModel(session_, exclude, options_, plan, /*measure_sqnr=*/false);
    if (!r.ok()) return r.status();
    absl::StatusOr<Graph> g = ImportOnnxModel(r->onnx_bytes);
    if (!g.ok()) return g.status();
    const std::vector<float>& reference = subset ? subset_reference_ : reference_;
    int64_t per_sample = 0;
    absl::StatusOr<std::vector<float>> y =
        FirstOutputs(*g, subset ? subset_ : validation_, options_.num_threads, batch_, &per_sample);
    if (!y.ok()) return y.status();
    if (y->size() != reference.size()) {
      return absl::InternalError("the quantized model's first output differs in size from FP32's");
    }
    return MeanCosine(reference, *y, per_sample_);
  }

 private:
  const Session& session_;
  const QuantizeOptions& options_;
  const std::map<std::string, Tensor>& validation_;
  const std::vector<float> reference_;
  const int64_t per_sample_;
  const int64_t batch_;
  std::map<std::string, Tensor> subset_;
  std::vector<float> subset_reference_;
};

// Output-channel axis of a quantizable layer's weight (as the rewriter quantizes it).
int64_t ChannelAxis(const Node& n) {
  if (n.op_type == "Conv") return 0;
  if (n.op_type == "Gemm") return n.GetInt("transB", 0) != 0 ? 0 : 1;
  return 1;  // MatMul [K, N]
}

// Multiply-accumulates per sample and weight elements of every layer in `layers`, from one FP32
// run over the first validation sample: weight elements * output elements / output channels.
absl::Status CountLayerWork(const Graph& g, const std::set<std::string>& layers,
                            const std::map<std::string, Tensor>& validation, int num_threads,
                            std::map<std::string, int64_t>* macs,
                            std::map<std::string, int64_t>* weights) {
  std::map<std::string, Tensor> one;
  for (const auto& [name, t] : validation) one[name] = SliceRows(t, 0, 1);
  CalibratorOptions co;
  co.batch = 1;
  co.num_threads = num_threads;
  absl::StatusOr<Calibrator> runner = Calibrator::Create(g, one, co);
  if (!runner.ok()) return runner.status();
  std::vector<const Node*> nodes;
  std::vector<std::string> outputs;
  for (const Node& n : g.nodes) {
    if (!layers.count(n.name)) continue;
    nodes.push_back(&n);
    outputs.push_back(n.outputs[0]);
  }
  if (nodes.empty()) return absl::OkStatus();
  auto count = [&](int64_t, int64_t, const std::vector<Tensor>& v) -> absl::Status {
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Tensor* w = g.FindInitializer(nodes[i]->inputs[1]);
      if (w == nullptr) return absl::InternalError(nodes[i]->Label() + ": weight not constant");
      const int64_t channels = w->dim(static_cast<int>(ChannelAxis(*nodes[i])));
      (*macs)[nodes[i]->name] =
          w->num_elements() * (v[i].num_elements() / std::max<int64_t>(channels, 1));
      (*weights)[nodes[i]->name] = w->num_elements();
    }
    return absl::OkStatus();
  };
  return runner->ForEachBatch(outputs, count);
}

double Int8Fraction(const std::map<std::string, int64_t>& work, const std::set<std::string>& fp32) {
  int64_t total = 0, int8 = 0;
  for (const auto& [layer, n] : work) {
    total += n;
    if (!fp32.count(layer)) int8 += n;
  }
  return total > 0 ? static_cast<double>(int8) / static_cast<double>(total) : 0.0;
}

}  // namespace

absl::StatusOr<double> MeasureCosine(const std::string& reference_onnx_bytes,
                                     const std::string& onnx_bytes,
                                     const std::map<std::string, Tensor>& inputs, int num_threads,
                                     int64_t batch) {
  absl::StatusOr<Graph> a = ImportOnnxModel(reference_onnx_bytes);
  if (!a.ok()) return a.status();
  absl::StatusOr<Graph> b = ImportOnnxModel(onnx_bytes);
  if (!b.ok()) return b.status();
  int64_t na = 0, nb = 0;
  absl::StatusOr<std::vector<float>> ya = FirstOutputs(*a, inputs, num_threads, batch, &na);
  if (!ya.ok()) return ya.status();
  absl::StatusOr<std::vector<float>> yb = FirstOutputs(*b, inputs, num_threads, batch, &nb);
  if (!yb.ok()) return yb.status();
  if (ya->size() != yb->size()) {
    return absl::InvalidArgumentError("the two models' first outputs differ in size");
  }
  return MeanCosine(*ya, *yb, na);
}

absl::StatusOr<FidelityGuardResult> QuantizeWithFidelityGuard(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options, const std::map<std::string, Tensor>& validation,
    const FidelityGuardOptions& guard) {
  if (!(guard.min_cosine > 0 && guard.min_cosine <= 1)) {
    return absl::InvalidArgumentError("min_cosine must be in (0, 1]");
  }
  if (guard.max_probes < 0) return absl::InvalidArgumentError("max_probes must be >= 0");
  if (guard.probe_samples < 0) return absl::InvalidArgumentError("probe_samples must be >= 0");
  if (guard.max_fp32_layers < 0) return absl::InvalidArgumentError("max_fp32_layers must be >= 0");
  const int64_t batch = std::max<int64_t>(options.calibration_batch, 16);
  // Validation data is checked (and FP32's outputs computed) before the long calibration.
  absl::StatusOr<Graph> fp32 = ImportOnnxModel(fp32_onnx_bytes);
  if (!fp32.ok()) return fp32.status();
  int64_t per_sample = 0;
  absl::StatusOr<std::vector<float>> reference =
      FirstOutputs(*fp32, validation, options.num_threads, batch, &per_sample);
  if (!reference.ok()) return reference.status();
  absl::StatusOr<std::unique_ptr<Session>> session =
      StartSession(fp32_onnx_bytes, calibration, options);
  if (!session.ok()) return session.status();
  const int64_t n = static_cast<int64_t>(reference->size()) / per_sample;
  const int64_t probe_samples = guard.probe_samples > 0 ? std::min(n, guard.probe_samples) : n;
  const FidelityProbe probe(**session, options, validation, *std::move(reference), per_sample,
                            batch, probe_samples);

  FidelityGuardResult out;
  std::set<std::string> exclude(options.exclude.begin(), options.exclude.end());
  QdqPlan plan;
  absl::StatusOr<double> cosine = probe.Score(exclude, /*subset=*/false, &plan);
  if (!cosine.ok()) return cosine.status();
  out.initial_cosine = *cosine;
  std::set<std::string> all_layers(plan.layers);
  all_layers.insert(plan.fp32_layers.begin(), plan.fp32_layers.end());
  std::map<std::string, int64_t> macs, weights;
  if (auto s = CountLayerWork((*session)->prepared, all_layers, validation, options.num_threads,
                              &macs, &weights);
      !s.ok()) {
    return s;
  }
  if (*cosine < guard.min_cosine && guard.max_fp32_layers > 0) {
    // Candidates: quantized layers in topological order, the first max_probes of them.
    for (const Node& n : (*session)->prepared.nodes) {
      if (!plan.layers.count(n.name)) continue;
      if (guard.max_probes > 0 && static_cast<int>(out.ranking.size()) >= guard.max_probes) break;
      std::set<std::string> trial = exclude;
      if (guard.probe == FidelityGuardOptions::Probe::kFp32Alone) {
        trial.insert(n.name);
      } else {
        trial.insert(plan.layers.begin(), plan.layers.end());
        trial.erase(n.name);
      }
      absl::StatusOr<double> c = probe.Score(trial, /*subset=*/true, nullptr);
      if (!c.ok()) return c.status();
      const double gain = guard.probe == FidelityGuardOptions::Probe::kFp32Alone
                              ? *c - out.initial_cosine
                              : 1.0 - *c;
      out.ranking.push_back({n.name, *c, gain, macs[n.name]});
    }
    std::stable_sort(
        out.ranking.begin(), out.ranking.end(),
        [](const LayerSensitivity& a, const LayerSensitivity& b) { return a.gain > b.gain; });
    // Then the layers not probed, in topological order.
    std::vector<std::string> order;
    for (const LayerSensitivity& l : out.ranking) order.push_back(l.node);
    for (const Node& n : (*session)->prepared.nodes) {
      if (plan.layers.count(n.name) &&
          std::find(order.begin(), order.end(), n.name) == order.end()) {
        order.push_back(n.name);
      }
    }
    for (const std::string& layer : order) {
      if (*cosine >= guard.min_cosine ||
          static_cast<int>(out.moved_to_fp32.size()) >= guard.max_fp32_layers) {
        break;
      }
      exclude.insert(layer);
      out.moved_to_fp32.push_back(layer);
      cosine = probe.Score(exclude, /*subset=*/false, nullptr);
      if (!cosine.ok()) return cosine.status();
      out.cosine_after_move.push_back(*cosine);
      out.int8_macs_after_move.push_back(Int8Fraction(macs, exclude));
    }
  }
  out.cosine = *cosine;
  out.within_budget = *cosine >= guard.min_cosine;
  out.int8_mac_fraction = Int8Fraction(macs, exclude);
  out.int8_weight_fraction = Int8Fraction(weights, exclude);
  // The final model with its SQNR report.
  absl::StatusOr<QuantizeResult> result = BuildModel(**session, exclude, options, nullptr);
  if (!result.ok()) return result.status();
  out.result = *std::move(result);
  return out;
}

}  // namespace octet
