// `octet quantize` end to end: the built tool is run on the demo MLP with synthetic calibration
// data; the model it writes must load and run in INT8, and every bad input must end as one error
// line with a non-zero exit code.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/npy.h"
#include "core/quant/quantizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct CliResult {
  int code = -1;
  std::string out, err;
};

class QuantizeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/octet_quantize_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const char* src = std::getenv("OCTET_SOURCE_DIR");
    model_ = std::string(src ? src : ".") + "/deploy/models/fashion_mlp/1/model.onnx";
    ASSERT_TRUE(fs::exists(model_)) << model_;
    auto m = Model::LoadFromFile(model_);
    ASSERT_TRUE(m.ok()) << m.status();
    input_ = (*m)->inputs()[0].name;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0, 1);
    std::vector<float> v(64 * 784);
    for (float& x : v) x = u(rng);
    calib_ = dir_ + "/calib.npy";
    ASSERT_TRUE(WriteNpy(calib_, Tensor::FromFloats({64, 784}, v)).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliResult Cli(const std::vector<std::string>& args) {
    std::string cmd = absl::StrCat("'", OCTET_CLI_PATH, "'");
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    const std::string out = dir_ + "/stdout.txt", err = dir_ + "/stderr.txt";
    int status = std::system(absl::StrCat(cmd, " >'", out, "' 2>'", err, "'").c_str());
    CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }
  // Quantize arguments with the given calibration flag value and extra flags.
  std::vector<std::string> Args(const std::string& calibration,
                                std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"quantize",         "--model",   model_,
                                  "--calibration",    calibration, "--output",
                                  dir_ + "/int8.onnx"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void ExpectOneLineError(const CliResult& r, const std::string& needle) {
    EXPECT_TRUE(r.code == 1 || r.code == 2) << "exit code " << r.code << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("octet quantize: error: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_FALSE(fs::exists(dir_ + "/int8.onnx"));
  }

  std::string dir_, model_, input_, calib_;
};

TEST_F(QuantizeCliTest, Help) {
  CliResult r = Cli({"quantize", "--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* flag :
       {"--calibration", "--method", "--percentile", "--no-per-channel", "--exclude", "--validate",
        "--labels", "--max-accuracy-drop", "--min-cosine", "--probes"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  EXPECT_THAT(Cli({"--help"}).out, HasSubstr("quantize"));
}

TEST_F(QuantizeCliTest, WritesAModelThatRunsInInt8AndPrintsTheReport) {
  CliResult r =
      Cli(Args(input_ + "=" + calib_, {"--method", "percentile", "--exclude", "/4/Gemm"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("64/64 samples"));
  EXPECT_THAT(r.out, HasSubstr("SQNR dB"));
  EXPECT_THAT(r.out, HasSubstr("weights: FP32 "));
  EXPECT_THAT(r.out, HasSubstr("fp32"));  // the excluded layer's row
  auto m = Model::LoadFromFile(dir_ + "/int8.onnx");
  ASSERT_TRUE(m.ok()) << m.status();
  std::map<std::string, std::string> ops;
  for (const Node& n : (*m)->graph().nodes) ops[n.name] = n.op_type;
  EXPECT_EQ(ops["/0/Gemm"], "QMatMul") << (*m)->Describe();
  EXPECT_EQ(ops["/2/Gemm"], "QMatMul") << (*m)->Describe();
  EXPECT_EQ(ops["/4/Gemm"], "Gemm") << (*m)->Describe();
  EXPECT_LT((*m)->weight_bytes(), (*m)->fp32_weight_bytes());
}

TEST_F(QuantizeCliTest, BadInputsGiveOneLine) {
  ASSERT_TRUE(WriteNpy(dir_ + "/wrong_shape.npy", Tensor::Zeros(DType::kF32, {8, 28, 28})).ok());
  ASSERT_TRUE(WriteNpy(dir_ + "/wrong_type.npy", Tensor::Zeros(DType::kU8, {8, 784})).ok());
  ExpectOneLineError(Cli(Args(input_ + "=" + dir_ + "/wrong_shape.npy")), "[8,28,28]");
  ExpectOneLineError(Cli(Args(input_ + "=" + dir_ + "/wrong_type.npy")), "u8");
  ExpectOneLineError(Cli(Args("nope=" + calib_)), "no input 'nope'");
  ExpectOneLineError(Cli(Args(input_ + "=" + dir_ + "/missing.npy")), "missing.npy");
  ExpectOneLineError(Cli({"quantize", "--model", model_, "--output", dir_ + "/int8.onnx"}),
                     "missing required flag --calibration");
  ExpectOneLineError(Cli(Args(input_ + "=" + calib_, {"--exclude", "/0/Gemm,nope"})), "'nope'");
  ExpectOneLineError(Cli(Args(input_ + "=" + calib_, {"--method", "median"})), "median");
  ExpectOneLineError(Cli(Args(input_ + "=" + calib_, {"--percentile", "101"})), "--percentile");
  ExpectOneLineError(Cli(Args(input_ + "=" + calib_, {"--validate", "x=" + calib_})),
                     "--validate needs --labels (top-1 guard) or --min-cosine");
  ExpectOneLineError(Cli(Args(input_ + "=" + calib_, {"--per-channel", "--no-per-channel"})),
                     "contradict");
  ExpectOneLineError(Cli({"quantize", "--model", dir_ + "/none.onnx", "--calibration",
                          input_ + "=" + calib_, "--output", dir_ + "/int8.onnx"}),
                     "none.onnx");
}

// Labels are the FP32 model's own predictions (FP32 top-1 = 100%); clipping 40% of every
// activation must cost INT8 accuracy, and a zero budget makes the guard move layers back.
TEST_F(QuantizeCliTest, AccuracyGuardMovesLayersAndSaysSo) {
  auto m = Model::LoadFromFile(model_);
  ASSERT_TRUE(m.ok());
  auto ctx = (*m)->CreateContext();
  ASSERT_TRUE(ctx.ok());
  auto x = ReadNpy(calib_);
  ASSERT_TRUE(x.ok());
  auto out = (*ctx)->Run({*x});
  ASSERT_TRUE(out.ok()) << out.status();
  Tensor labels = Tensor::Zeros(DType::kS64, {64});
  for (int i = 0; i < 64; ++i) {
    const float* row = (*out)[0].data_as<float>() + i * 10;
    labels.data_as<int64_t>()[i] = std::max_element(row, row + 10) - row;
  }
  ASSERT_TRUE(WriteNpy(dir_ + "/labels.npy", labels).ok());
  CliResult r =
      Cli(Args(input_ + "=" + calib_,
               {"--method", "percentile", "--percentile", "60", "--validate", input_ + "=" + calib_,
                "--labels", dir_ + "/labels.npy", "--max-accuracy-drop", "0"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("top-1: FP32 100.00%"));
  EXPECT_THAT(r.out, HasSubstr("moved '"));
  EXPECT_THAT(r.out, HasSubstr("within budget"));
  EXPECT_TRUE(fs::exists(dir_ + "/int8.onnx"));
}

TEST_F(QuantizeCliTest, FidelityGuardFlagErrors) {
  const std::string v = input_ + "=" + calib_;
  ExpectOneLineError(Cli(Args(v, {"--min-cosine", "0.99"})), "--min-cosine needs --validate");
  for (const char* bad : {"0", "-0.5", "1.01", "nan", "abc"}) {
    ExpectOneLineError(Cli(Args(v, {"--validate", v, "--min-cosine", bad})),
                       "--min-cosine must be a number in (0, 1]");
  }
  ExpectOneLineError(Cli(Args(v, {"--validate", v, "--min-cosine", "0.99", "--labels", calib_})),
                     "give one");
  ExpectOneLineError(Cli(Args(v, {"--probes", "3"})), "--probes needs --min-cosine");
  ExpectOneLineError(Cli(Args(v, {"--validate", v, "--min-cosine", "0.99", "--probes", "-1"})),
                     "--probes");
  ExpectOneLineError(Cli(Args(v, {"--labels", calib_})), "--labels needs --validate");
  ExpectOneLineError(
      Cli(Args(v, {"--validate", v, "--min-cosine", "0.99", "--max-accuracy-drop", "1"})),
      "--max-accuracy-drop needs");
  ExpectOneLineError(Cli(Args(v, {"--validate", "nope=" + calib_, "--min-cosine", "0.99"})),
                     "no input 'nope'");
}

// Per-tensor weight scales cost this MLP a cosine of ~4e-5 (0.99996); a target of 0.99998 makes
// the guard measure each Gemm's gain and move the best one(s) back until it holds.
TEST_F(QuantizeCliTest, FidelityGuardMovesLayersAndSaysSo) {
  const std::string v = input_ + "=" + calib_;
  CliResult r = Cli(Args(v, {"--no-per-channel", "--validate", v, "--min-cosine", "0.99998"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cosine INT8 vs FP32: "));
  EXPECT_THAT(r.out, HasSubstr("measured cosine with one layer alone in INT8"));
  EXPECT_THAT(r.out, HasSubstr("/0/Gemm"));
  EXPECT_THAT(r.out, HasSubstr("moved '"));
  EXPECT_THAT(r.out, HasSubstr("% of MACs INT8"));
  EXPECT_THAT(r.out, HasSubstr("within budget"));
  ASSERT_TRUE(fs::exists(dir_ + "/int8.onnx"));
  // Measured independently: the written model meets the target.
  std::ifstream a(model_, std::ios::binary), b(dir_ + "/int8.onnx", std::ios::binary);
  std::stringstream fa, fb;
  fa << a.rdbuf();
  fb << b.rdbuf();
  auto x = ReadNpy(calib_);
  ASSERT_TRUE(x.ok());
  auto c = MeasureCosine(fa.str(), fb.str(), {{input_, *x}}, 1, 16);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GE(*c, 0.99998);
  auto m = Model::LoadFromFile(dir_ + "/int8.onnx");
  ASSERT_TRUE(m.ok()) << m.status();
  int int8_layers = 0;
  for (const Node& n : (*m)->graph().nodes) int8_layers += n.op_type == "QMatMul";
  EXPECT_GT(int8_layers, 0) << "the guard must not give up INT8 altogether";
}

}  // namespace
}  // namespace octet
