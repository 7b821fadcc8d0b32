// `octet bench --model M --batch N --threads T --seconds S`: engine-only throughput and latency.
// Inputs are random tensors of the model's input shapes; only ExecutionContext::Run is timed
// (no file I/O, no input generation), and warm-up runs (which build the plan) are excluded.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/tool/args.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace octet::tool {
namespace {

// The shape of each input: --shape if given, else the model's dims with each symbolic dimension
// bound to the value a --shape gave the same named dimension (e.g. "batch"), and a remaining
// symbolic first dimension bound to the batch size. Other symbolic dimensions need --shape.
// --batch may be given together with --shape; the batch dimensions must then agree with it.
absl::StatusOr<std::vector<Shape>> ResolveShapes(const Model& model, int64_t batch,
                                                 bool batch_given,
                                                 const std::vector<std::string>& shape_flags) {
  std::map<std::string, Shape> given;
  for (const std::string& flag : shape_flags) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = SplitAssignment("shape", flag);
    if (!kv.ok()) return kv.status();
    absl::StatusOr<Shape> shape = ParseShapeText(kv->second);
    if (!shape.ok()) return shape.status();
    if (!given.emplace(kv->first, *shape).second) {
      return absl::InvalidArgumentError(absl::StrCat("--shape for '", kv->first, "' given twice"));
    }
  }
  for (const auto& [name, shape] : given) {
    bool known = false;
    for (const TensorSpec& spec : model.inputs()) known |= spec.name == name;
    if (!known)
      return absl::InvalidArgumentError(absl::StrCat("the model has no input '", name, "'"));
  }
  auto is_symbolic_batch = [](const TensorSpec& spec) {
    return !spec.dims.empty() && spec.dims[0] < 0;
  };
  // Named symbolic dimensions fixed by --shape (the engine requires one value per name).
  std::map<std::string, int64_t> named;
  for (const TensorSpec& spec : model.inputs()) {
    auto it = given.find(spec.name);
    if (it == given.end()) continue;
    absl::Status s =
        CheckAgainstSpec(Tensor::Borrow(spec.dtype, it->second, nullptr), spec, "--shape");
    if (!s.ok()) return s;
    if (batch_given && is_symbolic_batch(spec) && it->second[0] != batch) {
      return absl::InvalidArgumentError(absl::StrCat("--batch ", batch, " disagrees with --shape ",
                                                     spec.name, "=", absl::StrJoin(it->second, "x"),
                                                     " (first dimension ", it->second[0], ")"));
    }
    for (size_t i = 0; i < spec.dims.size() && i < spec.dim_names.size(); ++i) {
      if (spec.dims[i] < 0 && !spec.dim_names[i].empty()) {
        named.emplace(spec.dim_names[i], it->second[i]);
      }
    }
  }
  std::vector<Shape> shapes;
  for (const TensorSpec& spec : model.inputs()) {
    auto it = given.find(spec.name);
    if (it != given.end()) {
      shapes.push_back(it->second);
      continue;
    }
    Shape shape = spec.dims;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] >= 0) continue;
      const bool has_name = i < spec.dim_names.size() && !spec.dim_names[i].empty();
      auto bound = has_name ? named.find(spec.dim_names[i]) : named.end();
      if (bound != named.end()) {
        shape[i] = bound->second;
        continue;
      }
      if (i == 0) {
        shape[i] = batch;
        if (has_name) named.emplace(spec.dim_names[i], batch);
        continue;
      }
      std::vector<std::string> dims;  // e.g. "Nx3xHxW", for the hint
      for (size_t j = 0; j < spec.dims.size(); ++j) {
        bool named_dim = j < spec.dim_names.size() && !spec.dim_names[j].empty();
        dims.push_back(spec.dims[j] >= 0 ? absl::StrCat(spec.dims[j])
                                         : (named_dim ? spec.dim_names[j] : "?"));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("input '", spec.name, "' (", SpecToString(spec),
                       ") has a symbolic dimension after the batch; give its shape with --shape ",
                       spec.name, "=", absl::StrJoin(dims, "x")));
    }
    shapes.push_back(shape);
  }
  // --batch needs somewhere to go: at least one input with a symbolic first dimension (bound
  // above, or checked against --shape).
  bool has_batch = false;
  for (const TensorSpec& spec : model.inputs()) has_batch |= is_symbolic_batch(spec);
  if (batch_given && !has_batch && batch != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("no input has a symbolic batch dimension (",
                     model.inputs().empty() ? "no inputs" : SpecToString(model.inputs()[0]),
                     "); --batch ", batch, " cannot apply"));
  }
  return shapes;
}

// Random values: floats in [-1, 1), full range for 8-bit types, 0/1 for bools and zeros for
// 32/64-bit integers (they are usually indices or shapes, where random values are invalid).
Tensor RandomTensor(DType dtype, const Shape& shape, std::mt19937* rng) {
  Tensor t = Tensor::Zeros(dtype, shape);
  const int64_t n = t.num_elements();
  if (dtype == DType::kF32) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int64_t i = 0; i < n; ++i) t.data_as<float>()[i] = dist(*rng);
  } else if (dtype == DType::kU8 || dtype == DType::kS8 || dtype == DType::kBool) {
    std::uniform_int_distribution<int> dist(0, dtype == DType::kBool ? 1 : 255);
    for (int64_t i = 0; i < n; ++i) t.data_as<uint8_t>()[i] = static_cast<uint8_t>(dist(*rng));
  }
  return t;
}

// User + system CPU time of the whole process (every thread), in seconds. Less sensitive to other
// jobs on a shared machine than wall time (a run's CPU time does not grow while it waits).
double ProcessCpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int BenchMain(const std::vector<std::string>& args) {
  ArgParser parser(
      "bench", "bench --model MODEL [--batch N] [--threads T] [--seconds S] [--shape NAME=DIMS]",
      "Runs the model on random inputs for S seconds after W warm-up runs and reports "
      "throughput\n(samples/s = batch x runs/s) and run latency percentiles p50/p90/p99. Only "
      "the engine call is\ntimed. A symbolic first dimension is bound to N; other symbolic "
      "dimensions need --shape.\nRandom inputs: floats in [-1,1), random 8-bit values and bools, "
      "zeros for 32/64-bit integers.");
  parser.AddFlag("model", "MODEL", "The ONNX model file.", /*required=*/true);
  parser.AddFlag("batch", "N", "Batch size bound to symbolic first dimensions (default 1).");
  parser.AddFlag("threads", "T", "Engine threads of the execution context (default 1).");
  parser.AddFlag("seconds", "S", "Measured duration in seconds (default 10).");
  parser.AddFlag("warmup", "W", "Untimed warm-up runs before measuring (default 5).");
  parser.AddFlag("tune-below-us", "U",
                 "With T > 1, a plan whose run takes under U microseconds is timed against a "
                 "one-thread\nbuild of itself and the faster is kept (default 10000; 0 = always "
                 "T threads).");
  parser.AddFlag("shape", "NAME=DIMS", "Full shape of an input, e.g. input=1x3x224x224.",
                 /*required=*/false, /*repeated=*/true);
  if (absl::Status s = parser.Parse(args); !s.ok()) return ReportUsageError("bench", s);
  if (parser.help_requested()) {
    std::cout << parser.Usage();
    return kExitOk;
  }
  absl::StatusOr<int64_t> batch = ParseIntFlag("batch", parser.Get("batch", "1"), 1, 1 << 20);
  if (!batch.ok()) return ReportUsageError("bench", batch.status());
  absl::StatusOr<int64_t> threads = ParseIntFlag("threads", parser.Get("threads", "1"), 1, 1024);
  if (!threads.ok()) return ReportUsageError("bench", threads.status());
  absl::StatusOr<int64_t> warmup = ParseIntFlag("warmup", parser.Get("warmup", "5"), 0, 1 << 20);
  if (!warmup.ok()) return ReportUsageError("bench", warmup.status());
  absl::StatusOr<double> seconds = ParseDoubleFlag("seconds", parser.Get("seconds", "10"), 0);
  if (!seconds.ok()) return ReportUsageError("bench", seconds.status());
  absl::StatusOr<int64_t> tune_below =
      ParseIntFlag("tune-below-us", parser.Get("tune-below-us", "10000"), 0, int64_t{1} << 40);
  if (!tune_below.ok()) return ReportUsageError("bench", tune_below.status());

  absl::StatusOr<std::shared_ptr<const Model>> model = LoadModel(parser.Get("model"));
  if (!model.ok()) return ReportError("bench", model.status());
  const int64_t rss_after_load = RssBytes(), peak_after_load = PeakRssBytes();
  absl::StatusOr<std::vector<Shape>> shapes =
      ResolveShapes(**model, *batch, parser.Has("batch"), parser.GetAll("shape"));
  if (!shapes.ok()) return ReportError("bench", shapes.status());
  std::mt19937 rng(42);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < shapes->size(); ++i) {
    inputs.push_back(RandomTensor((*model)->inputs()[i].dtype, (*shapes)[i], &rng));
  }

  ContextOptions options;
  options.num_threads = static_cast<int>(*threads);
  options.tune_threads_below_micros = *tune_below;
  absl::StatusOr<std::unique_ptr<ExecutionContext>> context = (*model)->CreateContext(options);
  if (!context.ok()) return ReportError("bench", context.status());
  for (int64_t i = 0; i < std::max<int64_t>(*warmup, 1); ++i) {
    // At least one untimed run: the first run builds the plan for these shapes.
    absl::StatusOr<std::vector<Tensor>> out = (*context)->Run(inputs);
    if (!out.ok()) return ReportError("bench", out.status());
  }

  const int64_t rss_after_warmup = RssBytes();
  absl::StatusOr<const ExecutionPlan*> plan = (*context)->PlanFor(*shapes);
  const int64_t macs = plan.ok() ? PlanMacs(**plan) : 0;
  // ContextOptions::tune_threads_below_micros may have picked one thread for a short plan.
  const std::string plan_threads =
      plan.ok() && (*plan)->num_threads() != *threads
          ? absl::StrFormat("plan runs on %d thread(s): measured faster at load than %d\n",
                            (*plan)->num_threads(), *threads)
          : "";

  using Clock = std::chrono::steady_clock;
  std::vector<double> latencies_ms;
  const double cpu_start = ProcessCpuSeconds();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(*seconds);
  auto now = start;
  do {
    const auto t0 = Clock::now();
    absl::StatusOr<std::vector<Tensor>> out = (*context)->Run(inputs);
    now = Clock::now();
    if (!out.ok()) return ReportError("bench", out.status());
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - t0).count());
  } while (now < deadline);
  const double elapsed = std::chrono::duration<double>(now - start).count();
  const double cpu_ms = (ProcessCpuSeconds() - cpu_start) * 1000.0;
  std::sort(latencies_ms.begin(), latencies_ms.end());

  std::cout << "model: " << parser.Get("model") << "\n";
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::cout << "input '" << (*model)->inputs()[i].name << "' " << TensorSummary(inputs[i])
              << "\n";
  }
  // Samples per run: the first input's first dimension (it differs from --batch only when --shape
  // set it).
  const int64_t samples = !inputs.empty() && inputs[0].rank() > 0 ? inputs[0].dim(0) : *batch;
  const double runs_per_s = latencies_ms.size() / elapsed;
  std::cout << absl::StrFormat(
      "batch %d, threads %d, warm-up %d runs (excluded)\n%s"
      "runs: %d in %.2f s\n"
      "throughput: %.1f samples/s (%.1f runs/s)\n"
      "latency ms: p50 %.4g  p90 %.4g  p99 %.4g  (min %.4g, max %.4g)\n"
      "cpu ms per run: %.4g (process CPU time, all threads)\n",
      samples, *threads, std::max<int64_t>(*warmup, 1), plan_threads, latencies_ms.size(), elapsed,
      runs_per_s * samples, runs_per_s, Percentile(latencies_ms, 50), Percentile(latencies_ms, 90),
      Percentile(latencies_ms, 99), latencies_ms.front(), latencies_ms.back(),
      cpu_ms / latencies_ms.size());
  // Compute rate, for the fraction of the machine's peak (tests/bench/vnni_peak for int8).
  if (macs > 0) {
    std::cout << absl::StrFormat("compute: %.4g GMAC per sample, %.1f GMAC/s\n",
                                 macs / 1e9 / samples, macs / 1e9 * runs_per_s);
  }
  // RSS after load = the model as held (weights); the peak during load adds the file and its
  // parse; after warm-up adds the plan (primitives, weights reordered for them, activations).
  std::cout << absl::StrFormat(
      "memory: RSS %.1f MiB after load (peak during load %.1f MiB), %.1f MiB after warm-up\n",
      rss_after_load / 1048576.0, peak_after_load / 1048576.0, rss_after_warmup / 1048576.0);
  return kExitOk;
}

}  // namespace octet::tool
