#include "core/quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/onnx_importer.h"
#include "core/onnx_writer.h"
#include "core/quant/calibrator.h"
#include "core/quant/qdq_rewriter.h"
#include "core/quant/quant_session.h"

namespace octet {
namespace {

using quant_internal::BuildModel;
using quant_internal::Session;
using quant_internal::StartSession;

int64_t InitializerBytes(const Graph& g) {
  int64_t total = 0;
  for (const auto& [name, t] : g.initializers) total += static_cast<int64_t>(t.byte_size());
  return total;
}

absl::Status ValidateOptions(const QuantizeOptions& options) {
  if (options.calibration_batch < 1) {
    return absl::InvalidArgumentError("calibration_batch must be >= 1");
  }
  if (options.num_threads < 1) return absl::InvalidArgumentError("num_threads must be >= 1");
  if (options.sqnr_samples < 1) return absl::InvalidArgumentError("sqnr_samples must be >= 1");
  absl::StatusOr<RangeEstimator> e = RangeEstimator::Create(options.range);
  return e.ok() ? absl::OkStatus() : e.status();
}

}  // namespace

namespace quant_internal {

absl::StatusOr<std::unique_ptr<Session>> StartSession(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options) {
  if (auto s = ValidateOptions(options); !s.ok()) return s;
  auto session = std::make_unique<Session>();
  absl::StatusOr<Graph> g = PrepareForQuantization(fp32_onnx_bytes);
  if (!g.ok()) return g.status();
  session->prepared = *std::move(g);
  const std::set<std::string> exclude(options.exclude.begin(), options.exclude.end());
  absl::StatusOr<QdqPlan> plan = PlanQuantization(session->prepared, exclude);
  if (!plan.ok()) return plan.status();
  CalibratorOptions co;
  co.batch = options.calibration_batch;
  co.num_threads = options.num_threads;
  absl::StatusOr<Calibrator> calibrator = Calibrator::Create(session->prepared, calibration, co);
  if (!calibrator.ok()) return calibrator.status();
  session->calibrator = std::make_unique<Calibrator>(*std::move(calibrator));
  // Plans with more exclusions quantize a subset of these tensors, possibly with their own
  // range where this plan shares one: calibrate both.
  std::set<std::string> tensors;
  for (const QdqTarget& t : plan->targets) tensors.insert({t.tensor, t.range_of});
  absl::StatusOr<std::map<std::string, CalibratedRange>> ranges = session->calibrator->Calibrate(
      std::vector<std::string>(tensors.begin(), tensors.end()), options.range, options.progress);
  if (!ranges.ok()) return ranges.status();
  session->ranges = *std::move(ranges);
  for (const auto& [name, range] : session->ranges) {
    session->params[name] = U8ParamsForRange(range);
  }
  return session;
}

absl::StatusOr<QuantizeResult> BuildModel(const Session& session,
                                          const std::set<std::string>& exclude,
                                          const QuantizeOptions& options, QdqPlan* plan_out,
                                          bool measure_sqnr) {
  absl::StatusOr<QdqPlan> plan = PlanQuantization(session.prepared, exclude);
  if (!plan.ok()) return plan.status();
  std::map<std::string, std::string> dequantized;
  absl::StatusOr<Graph> qdq =
      RewriteToQdq(session.prepared, *plan, session.params, options.per_channel, &dequantized);
  if (!qdq.ok()) return qdq.status();
  QuantizeResult result;
  absl::StatusOr<std::string> bytes = SerializeGraph(*qdq);
  if (!bytes.ok()) return bytes.status();
  result.onnx_bytes = *std::move(bytes);
  result.fp32_weight_bytes = InitializerBytes(session.prepared);
  result.int8_weight_bytes = InitializerBytes(*qdq);
  if (!measure_sqnr) {
    if (plan_out != nullptr) *plan_out = *std::move(plan);
    return result;
  }

  std::vector<std::pair<std::string, std::string>> compare;
  for (const QdqTarget& t : plan->targets) compare.emplace_back(t.tensor, dequantized[t.tensor]);
  for (const std::string& layer : plan->fp32_layers) {
    const std::string& out = plan->layer_output.at(layer);
    if (!dequantized.count(out)) compare.emplace_back(out, out);
  }
  absl::StatusOr<std::map<std::string, double>> sqnr =
      session.calibrator->CompareSqnr(*qdq, compare, options.sqnr_samples);
  if (!sqnr.ok()) return sqnr.status();

  std::map<std::string, size_t> position;  // node -> index, for the report order
  for (size_t i = 0; i < session.prepared.nodes.size(); ++i) {
    position[session.prepared.nodes[i].name] = i + 1;
  }
  for (const QdqTarget& t : plan->targets) {
    LayerReport r;
    r.node = t.node;
    r.op_type = t.op_type;
    r.tensor = t.tensor;
    const QuantParams& p = session.params.at(t.range_of);
    r.scale = p.scales[0];
    r.zero_point = p.zero_points[0];
    r.clipped_percent = 100.0 * session.ranges.at(t.range_of).clipped_fraction;
    r.sqnr_db = sqnr->at(t.tensor);
    result.layers.push_back(r);
  }
  for (const std::string& layer : plan->fp32_layers) {
    const std::string& out = plan->layer_output.at(layer);
    if (dequantized.count(out)) continue;  // reported as quantized (another reader needs it)
    LayerReport r;
    r.node = layer;
    for (const Node& n : session.prepared.nodes) {
      if (n.name == layer) r.op_type = n.op_type;
    }
    r.tensor = out;
    r.quantized = false;
    r.sqnr_db = sqnr->at(out);
    result.layers.push_back(r);
  }
  std::stable_sort(result.layers.begin(), result.layers.end(),
                   [&](const LayerReport& a, const LayerReport& b) {
                     return position[a.node] < position[b.node];
                   });
  if (plan_out != nullptr) *plan_out = *std::move(plan);
  return result;
}

}  // namespace quant_internal

namespace {

absl::Status CheckLabels(const ValidationSet& v, int64_t n) {
  const Tensor& l = v.labels;
  if (!l.valid() || (l.dtype() != DType::kS64 && l.dtype() != DType::kS32 &&
                     l.dtype() != DType::kU8 && l.dtype() != DType::kS8)) {
    return absl::InvalidArgumentError("labels must be integers (int64, int32, uint8 or int8)");
  }
  if (l.num_elements() != n || (l.rank() != 1 && !(l.rank() == 2 && l.dim(1) == 1))) {
    return absl::InvalidArgumentError(absl::StrCat("labels have shape ", ShapeToString(l.shape()),
                                                   "; expected [", n,
                                                   "] (one per validation sample)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizeResult> QuantizeModel(const std::string& fp32_onnx_bytes,
                                             const std::map<std::string, Tensor>& calibration,
                                             const QuantizeOptions& options) {
  absl::StatusOr<std::unique_ptr<Session>> session =
      StartSession(fp32_onnx_bytes, calibration, options);
  if (!session.ok()) return session.status();
  const std::set<std::string> exclude(options.exclude.begin(), options.exclude.end());
  return BuildModel(**session, exclude, options, nullptr);
}

absl::StatusOr<double> MeasureTop1(const std::string& onnx_bytes, const ValidationSet& validation,
                                   int num_threads, int64_t batch) {
  absl::StatusOr<Graph> g = ImportOnnxModel(onnx_bytes);
  if (!g.ok()) return g.status();
  if (g->outputs.empty()) return absl::InvalidArgumentError("the model has no outputs");
  CalibratorOptions co;
  co.batch = batch;
  co.num_threads = num_threads;
  // The graph is written back unchanged and loaded optimized: QDQ models run in INT8.
  absl::StatusOr<Calibrator> runner = Calibrator::Create(*g, validation.inputs, co);
  if (!runner.ok()) {
    return absl::Status(runner.status().code(),
                        absl::StrCat("validation data: ", runner.status().message()));
  }
  if (auto s = CheckLabels(validation, runner->num_samples()); !s.ok()) return s;
  int64_t correct = 0;
  auto count = [&](int64_t begin, int64_t end, const std::vector<Tensor>& v) -> absl::Status {
    const Tensor& scores = v[0];
    if (scores.dtype() != DType::kF32 || scores.rank() < 1 || scores.num_elements() == 0 ||
        scores.num_elements() % (end - begin) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("output '", g->outputs[0].name,
                                                     "' is not f32 class scores per sample (shape ",
                                                     ShapeToString(scores.shape()), ")"));
    }
    const int64_t classes = scores.num_elements() / (end - begin);
    for (int64_t i = 0; i < end - begin; ++i) {
      const float* row = scores.data_as<float>() + i * classes;
      const int64_t best = std::max_element(row, row + classes) - row;
      if (best == validation.labels.GetAsInt64(begin + i)) ++correct;
    }
    return absl::OkStatus();
  };
  if (auto s = runner->ForEachBatch({g->outputs[0].name}, count); !s.ok()) return s;
  return 100.0 * static_cast<double>(correct) / static_cast<double>(runner->num_samples());
}

absl::StatusOr<AccuracyGuardResult> QuantizeWithAccuracyGuard(
    const std::string& fp32_onnx_bytes, const std::map<std::string, Tensor>& calibration,
    const QuantizeOptions& options, const ValidationSet& validation,
    const AccuracyGuardOptions& guard) {
  if (!(guard.max_accuracy_drop >= 0)) {
    return absl::InvalidArgumentError("max_accuracy_drop must be >= 0 (percentage points)");
  }
  if (guard.max_fp32_layers < 0) return absl::InvalidArgumentError("max_fp32_layers must be >= 0");
  const int64_t batch = std::max<int64_t>(options.calibration_batch, 64);
  AccuracyGuardResult out;
  // Validation data is checked before the (long) calibration.
  absl::StatusOr<double> fp32 =
      MeasureTop1(fp32_onnx_bytes, validation, options.num_threads, batch);
  if (!fp32.ok()) return fp32.status();
  out.fp32_accuracy = *fp32;
  absl::StatusOr<std::unique_ptr<Session>> session =
      StartSession(fp32_onnx_bytes, calibration, options);
  if (!session.ok()) return session.status();
  std::set<std::string> exclude(options.exclude.begin(), options.exclude.end());
  QdqPlan plan;
  absl::StatusOr<QuantizeResult> result = BuildModel(**session, exclude, options, &plan);
  if (!result.ok()) return result.status();
  absl::StatusOr<double> int8 =
      MeasureTop1(result->onnx_bytes, validation, options.num_threads, batch);
  if (!int8.ok()) return int8.status();
  out.initial_int8_accuracy = *int8;
  while (out.fp32_accuracy - *int8 > guard.max_accuracy_drop &&
         static_cast<int>(out.moved_to_fp32.size()) < guard.max_fp32_layers) {
    // The quantized layer whose output is furthest from FP32 goes back to FP32.
    const LayerReport* worst = nullptr;
    for (const LayerReport& r : result->layers) {
      if (!r.quantized || !plan.layers.count(r.node)) continue;
      if (worst == nullptr || r.sqnr_db < worst->sqnr_db) worst = &r;
    }
    if (worst == nullptr) break;  // nothing left to move
    const std::string layer = worst->node;
    exclude.insert(layer);
    out.moved_to_fp32.push_back(layer);
    result = BuildModel(**session, exclude, options, &plan);
    if (!result.ok()) return result.status();
    int8 = MeasureTop1(result->onnx_bytes, validation, options.num_threads, batch);
    if (!int8.ok()) return int8.status();
    out.accuracy_after_move.push_back(*int8);
  }
  out.int8_accuracy = *int8;
  out.within_budget = out.fp32_accuracy - *int8 <= guard.max_accuracy_drop;
  out.result = *std::move(result);
  return out;
}

}  // namespace octet
