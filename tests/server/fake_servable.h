// A model the tests fully understand, served through the same Servable interface as the engine:
//   input  "x"      f32 [N, K]
//   output "y"      f32 [N, K]  = 2 * x + version
//   output "rowsum" f32 [N]     = sum of the row of x
// The version directory's model.onnx is a text file: "features: K" (or "corrupt" to fail the
// load). Runs can be held at a gate to test draining and overload deterministically.
#ifndef OCTET_TESTS_SERVER_FAKE_SERVABLE_H_
#define OCTET_TESTS_SERVER_FAKE_SERVABLE_H_

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "server/servable.h"

namespace octet::server::testing {

// Shared by every fake of a test: counters and an optional gate runs wait at.
struct FakeStats {
  std::atomic<int> loads{0};
  std::atomic<int> runs{0};
  std::atomic<int> multi_row_batches{0};
  std::atomic<int> max_batch_rows{0};
  absl::Mutex mu;
  bool gate_open ABSL_GUARDED_BY(mu) = true;
  int waiting_at_gate ABSL_GUARDED_BY(mu) = 0;

  void CloseGate() {
    absl::MutexLock lock(&mu);
    gate_open = false;
  }
  void OpenGate() {
    absl::MutexLock lock(&mu);
    gate_open = true;
  }
  void WaitForRunsAtGate(int n) {
    absl::MutexLock lock(&mu);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return waiting_at_gate >= n; };
    mu.Await(absl::Condition(&enough));
  }
  void PassGate() {
    absl::MutexLock lock(&mu);
    ++waiting_at_gate;
    mu.Await(absl::Condition(&gate_open));
    --waiting_at_gate;
  }
};

class FakeRunner : public Runner {
 public:
  FakeRunner(int64_t features, float offset, FakeStats* stats)
      : features_(features), offset_(offset), stats_(stats) {}
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs) override {
    stats_->PassGate();
    stats_->runs.fetch_add(1);
    if (inputs.size() != 1 || inputs[0].rank() != 2 || inputs[0].dim(1) != features_) {
      return absl::InvalidArgumentError("fake model: bad input");
    }
    const int64_t rows = inputs[0].dim(0);
    if (rows > 1) stats_->multi_row_batches.fetch_add(1);
    int prev = stats_->max_batch_rows.load();
    while (rows > prev && !stats_->max_batch_rows.compare_exchange_weak(prev, int(rows))) {
    }
    Tensor y = Tensor::Zeros(DType::kF32, {rows, features_});
    Tensor sum = Tensor::Zeros(DType::kF32, {rows});
    const float* x = inputs[0].data_as<float>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < features_; ++k) {
        y.data_as<float>()[r * features_ + k] = 2 * x[r * features_ + k] + offset_;
        sum.data_as<float>()[r] += x[r * features_ + k];
      }
    }
    return std::vector<Tensor>{y, sum};
  }

 private:
  const int64_t features_;
  const float offset_;
  FakeStats* const stats_;
};

class FakeServable : public Servable {
 public:
  FakeServable(int64_t features, float offset, FakeStats* stats)
      : features_(features), offset_(offset), stats_(stats) {
    inputs_.push_back(TensorSpec{"x", DType::kF32, {-1, features}, {"batch", ""}});
    outputs_.push_back(TensorSpec{"y", DType::kF32, {-1, features}, {"batch", ""}});
    outputs_.push_back(TensorSpec{"rowsum", DType::kF32, {-1}, {"batch"}});
  }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  int64_t weight_bytes() const override { return 1000; }
  int64_t fp32_weight_bytes() const override { return 4000; }
  absl::StatusOr<std::unique_ptr<Runner>> CreateRunner(const RunnerOptions&) const override {
    return std::make_unique<FakeRunner>(features_, offset_, stats_);
  }

 private:
  const int64_t features_;
  const float offset_;
  FakeStats* const stats_;
  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
};

// The loader: the version number (directory name) is the offset.
inline ServableLoader FakeLoader(FakeStats* stats) {
  return [stats](const std::string& dir,
                 const config::ModelConfig&) -> absl::StatusOr<std::shared_ptr<const Servable>> {
    stats->loads.fetch_add(1);
    std::ifstream in(dir + "/model.onnx");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string contents = ss.str();  // the view below must not outlive it
    absl::string_view text = absl::StripAsciiWhitespace(contents);
    int64_t features = 0;
    if (!absl::ConsumePrefix(&text, "features: ") || !absl::SimpleAtoi(text, &features) ||
        features < 1) {
      return absl::InvalidArgumentError(absl::StrCat("corrupt fake model in ", dir));
    }
    int64_t version = 0;
    if (!absl::SimpleAtoi(std::filesystem::path(dir).filename().string(), &version)) {
      return absl::InternalError("bad version dir");
    }
    return std::make_shared<FakeServable>(features, static_cast<float>(version), stats);
  };
}

// Writes a file, creating its directories.
inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace octet::server::testing

#endif  // OCTET_TESTS_SERVER_FAKE_SERVABLE_H_
