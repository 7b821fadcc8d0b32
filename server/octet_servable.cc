#include "server/octet_servable.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/log.h"
#include "server/quantize_at_load.h"

namespace octet::server {
namespace {

class OctetRunner : public Runner {
 public:
  explicit OctetRunner(std::unique_ptr<ExecutionContext> context) : context_(std::move(context)) {}
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs) override {
    return context_->Run(inputs);
  }

 private:
  std::unique_ptr<ExecutionContext> context_;
};

class OctetServable : public Servable {
 public:
  // `fp32_weight_bytes` < 0: the model's own FP32-equivalent figure.
  OctetServable(std::shared_ptr<const Model> model, int64_t fp32_weight_bytes)
      : model_(std::move(model)), fp32_weight_bytes_(fp32_weight_bytes) {}
  const std::vector<TensorSpec>& inputs() const override { return model_->inputs(); }
  const std::vector<TensorSpec>& outputs() const override { return model_->outputs(); }
  int64_t weight_bytes() const override { return model_->weight_bytes(); }
  int64_t fp32_weight_bytes() const override {
    return fp32_weight_bytes_ >= 0 ? fp32_weight_bytes_ : model_->fp32_weight_bytes();
  }
  absl::StatusOr<std::unique_ptr<Runner>> CreateRunner(
      const RunnerOptions& options) const override {
    ContextOptions context_options;
    context_options.num_threads = options.num_threads;
    context_options.max_cached_plans = options.max_cached_plans;
    absl::StatusOr<std::unique_ptr<ExecutionContext>> context =
        model_->CreateContext(context_options);
    if (!context.ok()) return context.status();
    return std::make_unique<OctetRunner>(std::move(context).value());
  }

 private:
  std::shared_ptr<const Model> model_;
  int64_t fp32_weight_bytes_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open model file"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ss.str();
}

// The FP32 model of `version_dir` quantized per `config`; the per-layer report is logged.
absl::StatusOr<std::shared_ptr<const Servable>> LoadQuantized(
    const std::string& version_dir, const config::QuantizeConfig& config) {
  absl::StatusOr<std::string> fp32_bytes = ReadFile(absl::StrCat(version_dir, "/", kModelFileName));
  if (!fp32_bytes.ok()) return fp32_bytes.status();
  // Loading the FP32 model first checks it and tells which inputs need calibration samples.
  absl::StatusOr<std::shared_ptr<const Model>> fp32 = Model::LoadFromBytes(*fp32_bytes);
  if (!fp32.ok()) return fp32.status();
  absl::StatusOr<QuantizeResult> result =
      QuantizeAtLoad(*fp32_bytes, (*fp32)->inputs(), version_dir, config);
  if (!result.ok()) return result.status();
  const std::filesystem::path dir(version_dir);
  const std::string who = absl::StrCat("model ", dir.parent_path().filename().string(), " version ",
                                       dir.filename().string(), " ");
  for (const std::string& line : QuantizeSummary(*result, config)) LogInfo(who + line);
  absl::StatusOr<std::shared_ptr<const Model>> int8 = Model::LoadFromBytes(result->onnx_bytes);
  if (!int8.ok()) return int8.status();
  return std::make_shared<OctetServable>(std::move(int8).value(), (*fp32)->fp32_weight_bytes());
}

}  // namespace

ServableLoader OctetModelLoader() {
  return [](const std::string& version_dir,
            const config::ModelConfig& config) -> absl::StatusOr<std::shared_ptr<const Servable>> {
    if (config.has_quantize()) return LoadQuantized(version_dir, config.quantize());
    absl::StatusOr<std::shared_ptr<const Model>> model =
        Model::LoadFromFile(absl::StrCat(version_dir, "/", kModelFileName));
    if (!model.ok()) return model.status();
    return std::make_shared<OctetServable>(std::move(model).value(), -1);
  };
}

}  // namespace octet::server
