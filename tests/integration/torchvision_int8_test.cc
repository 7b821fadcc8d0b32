// Issue 3 acceptance: torchvision resnet18, resnet50 and mobilenet_v2 (random seeded weights,
// BatchNorm statistics warmed up on random data; tests/fixtures/export_torchvision.py) quantized
// by QuantizeModel, then INT8 (Octet's INT8 engine on the QDQ model) against FP32 (Octet's FP32
// engine on the original file) on 64 random inputs, distinct from the calibration samples: the
// issue asks for a mean cosine similarity of the logits of 0.995 (resnets) / 0.99 (mobilenet_v2);
// resnet18 meets it, resnet50 (0.985) and mobilenet_v2 (0.980) do not yet: the test prints
// whether the goal is met and asserts a regression floor (full INT8 cannot meet it on these
// nearly chaotic networks, tests/fixtures/README.md; TorchvisionGuardTest below meets it with
// the fidelity guard's mixed precision). Every method's figures are printed;
// OCTET_INT8_SIMULATE=1 also compares the INT8 engine with the QDQ graph simulated in FP32 (they
// agree: the loss is the quantization itself, amplified through these random-weight networks).
//
// Random-weight networks give all inputs a large shared logit component (different inputs'
// logits are ~0.95-0.975 apart in cosine, see the fixtures' manifest.json), so the output also
// shows the cosine of the logits with FP32's mean logit vector removed, and top-1 agreement.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/quant/calibrator.h"
#include "core/quant/quantizer.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

constexpr int64_t kEvalSamples = 64;
constexpr int64_t kCalibrationSamples = 16;
constexpr int64_t kBatch = 16;
constexpr int kThreads = 2;
constexpr int64_t kClasses = 1000;

std::string FixtureDir() {
  const char* dir = std::getenv("OCTET_TORCHVISION_DIR");
  return dir ? dir : "fixtures/torchvision";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// n images [n, 3, 224, 224] of standard normal noise (the distribution the fixtures' BatchNorm
// statistics were warmed up on).
Tensor RandomImages(int64_t n, uint32_t seed) {
  Tensor t = Tensor::Zeros(DType::kF32, {n, 3, 224, 224});
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = normal(rng);
  return t;
}

// Logits [n, 1000] of the model (loaded optimized: a QDQ model runs as INT8 layers).
absl::StatusOr<std::vector<float>> Logits(const Model& model, const Tensor& images) {
  auto ctx = model.CreateContext({.num_threads = kThreads});
  if (!ctx.ok()) return ctx.status();
  std::vector<float> out;
  const int64_t n = images.dim(0);
  for (int64_t b = 0; b < n; b += kBatch) {
    const Tensor batch = SliceRows(images, b, std::min(n, b + kBatch));
    auto y = (*ctx)->Run({batch});
    if (!y.ok()) return y.status();
    const Tensor& logits = (*y)[0];
    if (logits.num_elements() != batch.dim(0) * kClasses) {
      return absl::InternalError("unexpected logits shape " + ShapeToString(logits.shape()));
    }
    out.insert(out.end(), logits.data_as<float>(), logits.data_as<float>() + logits.num_elements());
  }
  return out;
}

double Cosine(const float* a, const float* b, const double* center) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t k = 0; k < kClasses; ++k) {
    const double x = a[k] - (center ? center[k] : 0), y = b[k] - (center ? center[k] : 0);
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / std::sqrt(aa * bb);
}

struct Agreement {
  double mean_cosine = 0;
  double min_cosine = 1;
  double mean_centered_cosine = 0;  // with FP32's mean logit vector removed from both
  int top1_agree = 0;
};

Agreement Compare(const std::vector<float>& fp32, const std::vector<float>& int8) {
  const int64_t n = static_cast<int64_t>(fp32.size()) / kClasses;
  std::vector<double> center(kClasses, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < kClasses; ++k) center[k] += fp32[i * kClasses + k] / n;
  }
  Agreement a;
  for (int64_t i = 0; i < n; ++i) {
    const float* x = &fp32[i * kClasses];
    const float* y = &int8[i * kClasses];
    const double c = Cosine(x, y, nullptr);
    a.mean_cosine += c / n;
    a.min_cosine = std::min(a.min_cosine, c);
    a.mean_centered_cosine += Cosine(x, y, center.data()) / n;
    a.top1_agree += std::max_element(x, x + kClasses) - x == std::max_element(y, y + kClasses) - y;
  }
  return a;
}

struct Case {
  std::string model;
  CalibrationMethod method;  // the best method found for this model, asserted below
  // Issue 3's acceptance goal for the mean cosine (0.995 resnets, 0.99 mobilenet_v2), printed as
  // met or not; resnet50 and mobilenet_v2 do not reach it yet (see the regression floor).
  double goal;
  // Asserted: what the method reaches today (resnet50 0.985, mobilenet_v2 0.980) minus a margin
  // for the calibration/evaluation noise. Raise it toward `goal` as quantization improves.
  double floor;
};

class TorchvisionInt8Test : public ::testing::TestWithParam<Case> {};

TEST_P(TorchvisionInt8Test, Int8LogitsFollowFp32) {
  const Case& c = GetParam();
  const std::string fp32_bytes = ReadFile(FixtureDir() + "/" + c.model + ".onnx");
  ASSERT_FALSE(fp32_bytes.empty()) << "missing fixture " << c.model;
  auto fp32_model = Model::LoadFromBytes(fp32_bytes);
  ASSERT_TRUE(fp32_model.ok()) << fp32_model.status();
  // Different seeds: the evaluation inputs are not among the calibration samples.
  const Tensor eval = RandomImages(kEvalSamples, 1001);
  const std::map<std::string, Tensor> calibration = {
      {(*fp32_model)->inputs()[0].name, RandomImages(kCalibrationSamples, 2002)}};
  auto fp32 = Logits(**fp32_model, eval);
  ASSERT_TRUE(fp32.ok()) << fp32.status();

  // Methods to evaluate: all by default; OCTET_INT8_METHODS=entropy,mse narrows it (the asserted
  // method is always included).
  std::vector<CalibrationMethod> methods = {CalibrationMethod::kMinMax,
                                            CalibrationMethod::kPercentile,
                                            CalibrationMethod::kEntropy, CalibrationMethod::kMse};
  if (const char* only = std::getenv("OCTET_INT8_METHODS")) {
    methods = {c.method};
    for (absl::string_view name : absl::StrSplit(only, ',', absl::SkipEmpty())) {
      auto m = ParseCalibrationMethod(name);
      ASSERT_TRUE(m.ok()) << m.status();
      if (*m != c.method) methods.push_back(*m);
    }
  }
  for (CalibrationMethod method : methods) {
    QuantizeOptions options;
    options.range.method = method;
    options.calibration_batch = kBatch;
    options.num_threads = kThreads;
    options.sqnr_samples = 1;
    auto q = QuantizeModel(fp32_bytes, calibration, options);
    ASSERT_TRUE(q.ok()) << CalibrationMethodName(method) << ": " << q.status();
    auto int8_model = Model::LoadFromBytes(q->onnx_bytes);
    ASSERT_TRUE(int8_model.ok()) << int8_model.status();
    // Every Conv/Gemm runs as an int8 layer on the engine.
    int int8_layers = 0;
    for (const Node& n : (*int8_model)->graph().nodes) {
      EXPECT_FALSE(n.domain.empty() && (n.op_type == "Conv" || n.op_type == "Gemm"))
          << n.name << " left in FP32";
      int8_layers += n.op_type == "QConv" || n.op_type == "QMatMul";
    }
    EXPECT_GT(int8_layers, 0);
    auto int8 = Logits(**int8_model, eval);
    ASSERT_TRUE(int8.ok()) << int8.status();
    const Agreement a = Compare(*fp32, *int8);
    std::printf(
        "%s %-10s INT8 vs FP32 over %lld inputs: mean cosine %.5f (min %.5f), centered %.4f, "
        "top-1 agreement %d/%lld, %d int8 layers\n",
        c.model.c_str(), CalibrationMethodName(method), static_cast<long long>(kEvalSamples),
        a.mean_cosine, a.min_cosine, a.mean_centered_cosine, a.top1_agree,
        static_cast<long long>(kEvalSamples), int8_layers);
    std::fflush(stdout);
    if (std::getenv("OCTET_INT8_SIMULATE") != nullptr) {
      // Diagnostic: the INT8 engine against the QDQ graph's literal meaning (Q/DQ simulated in
      // FP32, unoptimized), and that simulation against FP32.
      auto sim_model = Model::LoadFromBytes(q->onnx_bytes, {.optimize = false});
      ASSERT_TRUE(sim_model.ok()) << sim_model.status();
      auto sim = Logits(**sim_model, eval);
      ASSERT_TRUE(sim.ok()) << sim.status();
      const Agreement e = Compare(*sim, *int8), f = Compare(*fp32, *sim);
      std::printf(
          "  engine vs simulated QDQ: cosine %.5f centered %.4f; simulated vs FP32: %.5f "
          "centered %.4f\n",
          e.mean_cosine, e.mean_centered_cosine, f.mean_cosine, f.mean_centered_cosine);
    }
    if (method == c.method) {
      std::printf("%s %s: acceptance goal mean cosine >= %.3f %s\n", c.model.c_str(),
                  CalibrationMethodName(method), c.goal,
                  a.mean_cosine >= c.goal ? "MET" : "NOT MET");
      EXPECT_GE(a.mean_cosine, c.floor)
          << c.model << " with " << CalibrationMethodName(method) << " calibration";
    }
  }
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.model; }

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionInt8Test,
                         ::testing::Values(Case{"resnet18", CalibrationMethod::kMse, 0.995, 0.995},
                                           Case{"resnet50", CalibrationMethod::kMse, 0.995, 0.98},
                                           Case{"mobilenet_v2", CalibrationMethod::kMse, 0.99,
                                                0.975}),
                         [](const auto& info) { return info.param.model; });

// The label-free fidelity guard (QuantizeWithFidelityGuard) on the models full INT8 cannot bring
// to the goal: it measures each layer's sensitivity on 64 validation inputs and moves layers to
// FP32 until the mean cosine there reaches the goal; the result is then measured independently
// on the 64 evaluation inputs above (not the validation ones) and must meet the goal too, while
// keeping at least `min_int8_macs` of the Conv/Gemm MACs in INT8 (so excluding everything cannot
// pass).
struct GuardCase {
  std::string model;
  double goal;            // issue 3's mean-cosine goal, asserted on the evaluation inputs
  double guard_target;    // what the guard aims for on the validation inputs (goal + a margin)
  int max_probes;         // FidelityGuardOptions::max_probes (the rest follow in order)
  int64_t probe_samples;  // FidelityGuardOptions::probe_samples
  double min_int8_macs;   // asserted floor of the INT8 MAC fraction
};

class TorchvisionGuardTest : public ::testing::TestWithParam<GuardCase> {};

TEST_P(TorchvisionGuardTest, GuardedModelMeetsTheGoalOnUnseenInputs) {
  const GuardCase& c = GetParam();
  const std::string fp32_bytes = ReadFile(FixtureDir() + "/" + c.model + ".onnx");
  ASSERT_FALSE(fp32_bytes.empty()) << "missing fixture " << c.model;
  auto fp32_model = Model::LoadFromBytes(fp32_bytes);
  ASSERT_TRUE(fp32_model.ok()) << fp32_model.status();
  const std::string input = (*fp32_model)->inputs()[0].name;
  const Tensor eval = RandomImages(kEvalSamples, 1001);
  auto fp32 = Logits(**fp32_model, eval);
  ASSERT_TRUE(fp32.ok()) << fp32.status();

  QuantizeOptions options;
  options.range.method = CalibrationMethod::kMse;
  options.calibration_batch = kBatch;
  options.num_threads = kThreads;
  options.sqnr_samples = 1;
  FidelityGuardOptions guard;
  guard.min_cosine = c.guard_target;
  guard.max_probes = c.max_probes;
  guard.probe_samples = c.probe_samples;
  const auto start = std::chrono::steady_clock::now();
  auto g = QuantizeWithFidelityGuard(fp32_bytes, {{input, RandomImages(kCalibrationSamples, 2002)}},
                                     options, {{input, RandomImages(kEvalSamples, 3003)}}, guard);
  ASSERT_TRUE(g.ok()) << g.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s guard: validation cosine %.5f -> %.5f after %zu move(s), %zu probe(s), %.0f s\n",
              c.model.c_str(), g->initial_cosine, g->cosine, g->moved_to_fp32.size(),
              g->ranking.size(), seconds);
  for (size_t i = 0; i < g->moved_to_fp32.size(); ++i) {
    std::printf("  moved %-48s cosine %.5f, INT8 MACs %.1f%%\n", g->moved_to_fp32[i].c_str(),
                g->cosine_after_move[i], 100 * g->int8_macs_after_move[i]);
  }
  EXPECT_TRUE(g->within_budget);
  auto int8_model = Model::LoadFromBytes(g->result.onnx_bytes);
  ASSERT_TRUE(int8_model.ok()) << int8_model.status();
  // The moved layers, and only they, run in FP32.
  std::set<std::string> fp32_layers;
  for (const Node& n : (*int8_model)->graph().nodes) {
    if (n.domain.empty() && (n.op_type == "Conv" || n.op_type == "Gemm"))
      fp32_layers.insert(n.name);
  }
  EXPECT_EQ(fp32_layers, std::set<std::string>(g->moved_to_fp32.begin(), g->moved_to_fp32.end()));
  auto int8 = Logits(**int8_model, eval);
  ASSERT_TRUE(int8.ok()) << int8.status();
  const Agreement a = Compare(*fp32, *int8);
  std::printf(
      "%s guarded INT8 vs FP32 over %lld unseen inputs: mean cosine %.5f (min %.5f), centered "
      "%.4f, top-1 agreement %d/%lld; INT8 MACs %.1f%%, INT8 layer weights %.1f%%\n",
      c.model.c_str(), static_cast<long long>(kEvalSamples), a.mean_cosine, a.min_cosine,
      a.mean_centered_cosine, a.top1_agree, static_cast<long long>(kEvalSamples),
      100 * g->int8_mac_fraction, 100 * g->int8_weight_fraction);
  EXPECT_GE(a.mean_cosine, c.goal) << c.model;
  EXPECT_GE(g->int8_mac_fraction, c.min_int8_macs) << c.model;
}

void PrintTo(const GuardCase& c, std::ostream* os) { *os << c.model; }

// Measured 2026-11-23: resnet50 moves 13 layers (75.8% of MACs stay INT8, unseen cosine
// 0.9958), mobilenet_v2 7 (79.7%, 0.9910); floors 70%. The probes are
// bounded (first 20 layers of resnet50, 16 samples) to keep CI time down: on these networks the
// damage falls with depth (see tests/fixtures/README.md).
INSTANTIATE_TEST_SUITE_P(Models, TorchvisionGuardTest,
                         ::testing::Values(GuardCase{"resnet50", 0.995, 0.9955, 20, 16, 0.7},
                                           GuardCase{"mobilenet_v2", 0.99, 0.9905, 0, 16, 0.7}),
                         [](const auto& info) { return info.param.model; });

}  // namespace
}  // namespace octet
