// The demo CNN and MLP, run through the engine on the 10k Fashion-MNIST test images read straight
// from Debian's IDX files, must reproduce the top-1 accuracy the training script measured in
// PyTorch (tests/fixtures/fashion_models.json).
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "core/model.h"
#include "gtest/gtest.h"
#include "tests/util/idx_reader.h"

namespace octet {
namespace {

std::string SourceDir() {
  const char* dir = std::getenv("OCTET_SOURCE_DIR");
  return dir ? dir : ".";
}

// "torch_correct": N of one model in the fixtures JSON.
int TorchCorrect(const std::string& model) {
  std::ifstream in(SourceDir() + "/tests/fixtures/fashion_models.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string json = ss.str();
  size_t at = json.find("\"" + model + "\"");
  if (at == std::string::npos) return -1;
  std::smatch m;
  std::string rest = json.substr(at);
  if (!std::regex_search(rest, m, std::regex("\"torch_correct\":\\s*(\\d+)"))) return -1;
  return std::stoi(m[1]);
}

class FashionAccuracyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FashionAccuracyTest, ReproducesTrainingScriptAccuracy) {
  const std::string name = GetParam();
  const int expected = TorchCorrect(name);
  ASSERT_GT(expected, 0) << "no torch_correct for " << name << " in fashion_models.json";
  auto images = ReadIdxImages(FashionMnistPath(/*train=*/false, /*images=*/true));
  auto labels = ReadIdxLabels(FashionMnistPath(false, false));
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(images->count, 10000);
  auto model = Model::LoadFromFile(SourceDir() + "/deploy/models/" + name + "/1/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  auto ctx = (*model)->CreateContext({.num_threads = 2});
  ASSERT_TRUE(ctx.ok());
  const bool flat = (*model)->inputs()[0].dims.size() == 2;
  const int64_t kBatch = 250;
  int correct = 0;
  for (int64_t begin = 0; begin < images->count; begin += kBatch) {
    Tensor x = flat ? images->ToFlat(begin, kBatch) : images->ToNchw(begin, kBatch);
    auto out = (*ctx)->Run({x});
    ASSERT_TRUE(out.ok()) << out.status();
    const Tensor& logits = (*out)[0];
    ASSERT_EQ(logits.shape(), (Shape{kBatch, 10}));
    for (int64_t i = 0; i < kBatch; ++i) {
      const float* row = logits.data_as<float>() + i * 10;
      int best = static_cast<int>(std::max_element(row, row + 10) - row);
      correct += best == (*labels)[begin + i];
    }
  }
  // Identical math in another library's float order may flip a near-tie or two.
  EXPECT_NEAR(correct, expected, 3) << name << ": engine top-1 " << correct / 100.0
                                    << "% vs PyTorch " << expected / 100.0 << "%";
}

INSTANTIATE_TEST_SUITE_P(DemoModels, FashionAccuracyTest,
                         ::testing::Values("fashion_cnn", "fashion_mlp"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace octet
