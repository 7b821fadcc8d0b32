#include "server/octet_servable.h"

#include <utility>

#include "absl/strings/str_cat.h"

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
  explicit OctetServable(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  const std::vector<TensorSpec>& inputs() const override { return model_->inputs(); }
  const std::vector<TensorSpec>& outputs() const override { return model_->outputs(); }
  int64_t weight_bytes() const override { return model_->weight_bytes(); }
  int64_t fp32_weight_bytes() const override { return model_->fp32_weight_bytes(); }
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
};

}  // namespace

ServableLoader OctetModelLoader() {
  return [](const std::string& version_dir,
            const config::ModelConfig& config) -> absl::StatusOr<std::shared_ptr<const Servable>> {
    if (config.has_quantize()) {
      // Refuse rather than silently serve FP32 where INT8 was configured.
      return absl::UnimplementedError(
          "config.pbtxt asks to quantize at load, which this build does not support yet; "
          "serve a model quantized offline with `octet quantize` instead");
    }
    absl::StatusOr<std::shared_ptr<const Model>> model =
        Model::LoadFromFile(absl::StrCat(version_dir, "/", kModelFileName));
    if (!model.ok()) return model.status();
    return std::make_shared<OctetServable>(std::move(model).value());
  };
}

}  // namespace octet::server
