// End-to-end tests of the `octet` tool: each runs the built binary as a subprocess on small models
// made here with the ONNX protobufs, and checks exit codes, output files and one-line errors.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct CliResult {
  int code = -1;
  bool crashed = false;
  std::string out, err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One graph value: dims are numbers or symbolic names.
void AddValue(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* values,
              const std::string& name, const std::vector<std::string>& dims) {
  onnx::ValueInfoProto* v = values->Add();
  v->set_name(name);
  auto* tensor_type = v->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor_type->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (std::isdigit(static_cast<unsigned char>(d[0]))) {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

void AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& inputs,
             const std::string& output) {
  onnx::NodeProto* node = g->add_node();
  node->set_op_type(op);
  node->set_name(output + "_node");
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(output);
}

onnx::ModelProto NewModel() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("cli_test");
  onnx::OperatorSetIdProto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  m.mutable_graph()->set_name("g");
  return m;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/octet_cli_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;

    // two_io: x f32[N,4], bias f32[4] -> relu_out = Relu(x), "sum/out:0" = x + bias,
    // "../evil" = x * w (w an initializer of 2s).
    onnx::ModelProto m = NewModel();
    onnx::GraphProto* g = m.mutable_graph();
    AddValue(g->mutable_input(), "x", {"N", "4"});
    AddValue(g->mutable_input(), "bias", {"4"});
    onnx::TensorProto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(4);
    for (int i = 0; i < 4; ++i) w->add_float_data(2.0f);
    AddNode(g, "Relu", {"x"}, "relu_out");
    AddNode(g, "Add", {"x", "bias"}, "sum/out:0");
    AddNode(g, "Mul", {"x", "w"}, "../evil");
    AddValue(g->mutable_output(), "relu_out", {"N", "4"});
    AddValue(g->mutable_output(), "sum/out:0", {"N", "4"});
    AddValue(g->mutable_output(), "../evil", {"N", "4"});
    model_ = dir_ + "/two_io.onnx";
    std::ofstream(model_, std::ios::binary) << m.SerializeAsString();

    // seq: tokens f32[N,L] -> Relu; both dimensions symbolic.
    onnx::ModelProto s = NewModel();
    AddValue(s.mutable_graph()->mutable_input(), "tokens", {"N", "L"});
    AddNode(s.mutable_graph(), "Relu", {"tokens"}, "y");
    AddValue(s.mutable_graph()->mutable_output(), "y", {"N", "L"});
    seq_model_ = dir_ + "/seq.onnx";
    std::ofstream(seq_model_, std::ios::binary) << s.SerializeAsString();

    // fixed: x f32[1,4] -> Relu; a static batch dimension.
    onnx::ModelProto f = NewModel();
    AddValue(f.mutable_graph()->mutable_input(), "x", {"1", "4"});
    AddNode(f.mutable_graph(), "Relu", {"x"}, "y");
    AddValue(f.mutable_graph()->mutable_output(), "y", {"1", "4"});
    fixed_model_ = dir_ + "/fixed.onnx";
    std::ofstream(fixed_model_, std::ios::binary) << f.SerializeAsString();

    // pair: a f32[N,4], b f32[N,4] -> Add; one named batch dimension shared by two inputs.
    onnx::ModelProto p = NewModel();
    AddValue(p.mutable_graph()->mutable_input(), "a", {"N", "4"});
    AddValue(p.mutable_graph()->mutable_input(), "b", {"N", "4"});
    AddNode(p.mutable_graph(), "Add", {"a", "b"}, "y");
    AddValue(p.mutable_graph()->mutable_output(), "y", {"N", "4"});
    pair_model_ = dir_ + "/pair.onnx";
    std::ofstream(pair_model_, std::ios::binary) << p.SerializeAsString();

    x_ = Tensor::FromFloats({2, 4}, {-1, 2, -3, 4, 0.5f, -0.5f, 1, -2});
    bias_ = Tensor::FromFloats({4}, {1, 2, 3, 4});
    ASSERT_TRUE(WriteNpy(dir_ + "/x.npy", x_).ok());
    ASSERT_TRUE(WriteNpy(dir_ + "/bias.npy", bias_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `octet ARGS...`, capturing stdout and stderr.
  CliResult Cli(const std::vector<std::string>& args) {
    std::string cmd = absl::StrCat("'", OCTET_CLI_PATH, "'");
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    const std::string out = dir_ + "/stdout.txt", err = dir_ + "/stderr.txt";
    int status = std::system(absl::StrCat(cmd, " >'", out, "' 2>'", err, "'").c_str());
    CliResult r;
    r.crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) > 2);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  // A failure: exit code 1 or 2, no crash, one line on stderr that contains `needle`.
  void ExpectOneLineError(const CliResult& r, const std::string& needle) {
    EXPECT_FALSE(r.crashed) << r.err;
    EXPECT_TRUE(r.code == 1 || r.code == 2) << "exit code " << r.code << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("error: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
  }

  std::vector<std::string> RunArgs(const std::string& out_dir) {
    return {"run",
            "--model",
            model_,
            "--input",
            "x=" + dir_ + "/x.npy",
            "--input",
            "bias=" + dir_ + "/bias.npy",
            "--output-dir",
            out_dir};
  }

  std::string dir_, model_, seq_model_, fixed_model_, pair_model_;
  Tensor x_, bias_;
};

TEST_F(CliTest, HelpOnEveryCommand) {
  for (std::string command : {"", "inspect", "run", "bench"}) {
    std::vector<std::string> args;
    if (!command.empty()) args.push_back(command);
    args.push_back("--help");
    CliResult r = Cli(args);
    EXPECT_EQ(r.code, 0) << command << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Usage: octet ", command))) << command;
    EXPECT_EQ(r.err, "") << command;
  }
  EXPECT_THAT(Cli({"bench", "--help"}).out, HasSubstr("--shape"));
}

TEST_F(CliTest, BadCommandLines) {
  CliResult none = Cli({});
  EXPECT_EQ(none.code, 2);
  EXPECT_THAT(none.err, HasSubstr("Usage: octet"));
  ExpectOneLineError(Cli({"frobnicate"}), "unknown command 'frobnicate'");
  ExpectOneLineError(Cli({"run", "--model", model_}), "missing required flag --output-dir");
  ExpectOneLineError(Cli({"run", "--bogus", "1"}), "unknown flag --bogus");
  ExpectOneLineError(Cli({"inspect"}), "missing MODEL");
  ExpectOneLineError(Cli({"inspect", model_, model_}), "unexpected argument");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--batch", "0"}), "--batch must be");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--batch", "two"}), "--batch must be");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--seconds", "-1"}), "--seconds must be");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--threads"}), "--threads needs a value");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--tune-below-us", "-1"}),
                     "--tune-below-us must be");
  ExpectOneLineError(Cli({"run", "--model", model_, "--model", model_, "--output-dir", dir_}),
                     "--model given more than once");
}

TEST_F(CliTest, InspectShowsSignatureOpsAndWeights) {
  CliResult r = Cli({"inspect", model_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("x f32[N,4]"));
  EXPECT_THAT(r.out, HasSubstr("bias f32[4]"));
  EXPECT_THAT(r.out, HasSubstr("sum/out:0 f32[N,4]"));
  EXPECT_THAT(r.out, HasSubstr("Add x1"));
  EXPECT_THAT(r.out, HasSubstr("Relu x1"));
  EXPECT_THAT(r.out, HasSubstr("parameters: 4 "));
  EXPECT_THAT(r.out, HasSubstr("weights: "));
  EXPECT_THAT(r.out, HasSubstr("optimized plan:"));
}

TEST_F(CliTest, RunWritesEveryOutputUnderSafeNames) {
  const std::string out_dir = dir_ + "/out/nested";
  CliResult r = Cli(RunArgs(out_dir));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr("output 'relu_out' f32[2,4] -> " + out_dir + "/relu_out.npy"));
  EXPECT_THAT(r.out, HasSubstr("output 'sum/out:0' f32[2,4] -> " + out_dir + "/sum_out_0.npy"));
  EXPECT_THAT(r.out, HasSubstr("output '../evil' f32[2,4] -> " + out_dir + "/_._evil.npy"));
  // Nothing escaped the output directory.
  EXPECT_FALSE(fs::exists(dir_ + "/out/evil.npy"));
  EXPECT_EQ(std::distance(fs::directory_iterator(out_dir), fs::directory_iterator()), 3);

  absl::StatusOr<Tensor> relu = ReadNpy(out_dir + "/relu_out.npy");
  absl::StatusOr<Tensor> sum = ReadNpy(out_dir + "/sum_out_0.npy");
  absl::StatusOr<Tensor> twice = ReadNpy(out_dir + "/_._evil.npy");
  ASSERT_TRUE(relu.ok() && sum.ok() && twice.ok());
  ASSERT_EQ(relu->shape(), (Shape{2, 4}));
  ASSERT_EQ(sum->shape(), (Shape{2, 4}));
  for (int i = 0; i < 8; ++i) {
    const float x = x_.data_as<float>()[i];
    EXPECT_EQ(relu->data_as<float>()[i], x > 0 ? x : 0.0f) << i;
    EXPECT_EQ(sum->data_as<float>()[i], x + bias_.data_as<float>()[i % 4]) << i;
    EXPECT_EQ(twice->data_as<float>()[i], 2 * x) << i;
  }
}

TEST_F(CliTest, RunBindsTheBatchFromTheInput) {
  Tensor x3 = Tensor::FromFloats({3, 4}, std::vector<float>(12, -1.5f));
  ASSERT_TRUE(WriteNpy(dir_ + "/x3.npy", x3).ok());
  std::vector<std::string> args = RunArgs(dir_ + "/out3");
  args[4] = "x=" + dir_ + "/x3.npy";
  CliResult r = Cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  absl::StatusOr<Tensor> sum = ReadNpy(dir_ + "/out3/sum_out_0.npy");
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->shape(), (Shape{3, 4}));
  EXPECT_EQ(sum->data_as<float>()[11], -1.5f + 4.0f);
}

TEST_F(CliTest, RunRejectsBadInputsWithOneLine) {
  const std::string out = dir_ + "/out";
  // Missing and unknown input names.
  ExpectOneLineError(
      Cli({"run", "--model", model_, "--input", "x=" + dir_ + "/x.npy", "--output-dir", out}),
      "missing input 'bias'");
  std::vector<std::string> unknown = RunArgs(out);
  unknown.push_back("--input");
  unknown.push_back("nope=" + dir_ + "/x.npy");
  ExpectOneLineError(Cli(unknown), "the model has no input 'nope' (inputs: x, bias)");
  std::vector<std::string> twice = RunArgs(out);
  twice.push_back("--input");
  twice.push_back("x=" + dir_ + "/x.npy");
  ExpectOneLineError(Cli(twice), "input 'x' given twice");
  std::vector<std::string> no_eq = RunArgs(out);
  no_eq[4] = dir_ + "/x.npy";
  ExpectOneLineError(Cli(no_eq), "--input expects NAME=VALUE");

  // Wrong shape, wrong rank, wrong dtype.
  ASSERT_TRUE(WriteNpy(dir_ + "/x25.npy", Tensor::FromFloats({2, 5}, std::vector<float>(10))).ok());
  ASSERT_TRUE(WriteNpy(dir_ + "/x4.npy", Tensor::FromFloats({4}, std::vector<float>(4))).ok());
  ASSERT_TRUE(WriteNpy(dir_ + "/xi.npy", Tensor::FromInt64s({2, 4}, std::vector<int64_t>(8))).ok());
  std::vector<std::string> args = RunArgs(out);
  args[4] = "x=" + dir_ + "/x25.npy";
  ExpectOneLineError(Cli(args), "input 'x' expects f32[N,4], got f32[2,5]");
  args[4] = "x=" + dir_ + "/x4.npy";
  ExpectOneLineError(Cli(args), "input 'x' expects f32[N,4], got f32[4]");
  args[4] = "x=" + dir_ + "/xi.npy";
  ExpectOneLineError(Cli(args), "input 'x' expects f32[N,4], got s64[2,4]");

  // Truncated, corrupt and missing .npy files.
  std::string npy = ReadAll(dir_ + "/x.npy");
  std::ofstream(dir_ + "/cut.npy", std::ios::binary) << npy.substr(0, npy.size() - 5);
  args[4] = "x=" + dir_ + "/cut.npy";
  ExpectOneLineError(Cli(args), "truncated");
  std::ofstream(dir_ + "/junk.npy", std::ios::binary) << "this is not numpy\n\n\nat all";
  args[4] = "x=" + dir_ + "/junk.npy";
  ExpectOneLineError(Cli(args), dir_ + "/junk.npy");
  args[4] = "x=" + dir_ + "/absent.npy";
  ExpectOneLineError(Cli(args), "cannot open");
  EXPECT_FALSE(fs::exists(out)) << "no outputs are written when the inputs are bad";
}

TEST_F(CliTest, BadModelFilesGiveOneLine) {
  const std::string bytes = ReadAll(model_);
  std::ofstream(dir_ + "/truncated.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string junk(4096, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919 + 13) % 251);
  std::ofstream(dir_ + "/corrupt.onnx", std::ios::binary) << junk;
  std::ofstream(dir_ + "/empty.onnx", std::ios::binary) << "";
  for (const char* name : {"truncated.onnx", "corrupt.onnx", "empty.onnx", "absent.onnx"}) {
    SCOPED_TRACE(name);
    const std::string path = dir_ + "/" + name;
    ExpectOneLineError(Cli({"inspect", path}), path);
    std::vector<std::string> args = RunArgs(dir_ + "/out");
    args[2] = path;
    ExpectOneLineError(Cli(args), path);
    ExpectOneLineError(Cli({"bench", "--model", path, "--seconds", "0.1"}), path);
  }
}

TEST_F(CliTest, BenchReportsThroughputAndPercentiles) {
  CliResult r = Cli({"bench", "--model", model_, "--batch", "2", "--threads", "1", "--seconds",
                     "0.2", "--warmup", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'x' f32[2,4]"));
  EXPECT_THAT(r.out, HasSubstr("input 'bias' f32[4]"));
  EXPECT_THAT(r.out, HasSubstr("batch 2, threads 1, warm-up 2 runs (excluded)"));
  EXPECT_THAT(r.out, HasSubstr("samples/s"));
  for (const char* p : {"p50 ", "p90 ", "p99 "}) EXPECT_THAT(r.out, HasSubstr(p));
}

// With tuning off, a 2-thread bench runs its plan on 2 threads and says nothing about it.
TEST_F(CliTest, BenchTuneOffKeepsTheThreadsAsked) {
  CliResult r = Cli({"bench", "--model", model_, "--batch", "2", "--threads", "2", "--seconds",
                     "0.1", "--tune-below-us", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch 2, threads 2"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("plan runs on")));
  EXPECT_THAT(Cli({"bench", "--help"}).out, HasSubstr("--tune-below-us"));
}

TEST_F(CliTest, BenchNeedsShapesForSymbolicDimensions) {
  ExpectOneLineError(Cli({"bench", "--model", seq_model_, "--seconds", "0.1"}), "--shape tokens=");
  CliResult r = Cli({"bench", "--model", seq_model_, "--seconds", "0.1", "--shape", "tokens=3x7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'tokens' f32[3,7]"));
  EXPECT_THAT(r.out, HasSubstr("batch 3,"));
  ExpectOneLineError(Cli({"bench", "--model", seq_model_, "--shape", "tokens=3x"}),
                     "bad shape '3x'");
  ExpectOneLineError(Cli({"bench", "--model", seq_model_, "--shape", "other=3x7"}),
                     "no input 'other'");
  ExpectOneLineError(Cli({"bench", "--model", model_, "--shape", "x=2x5"}),
                     "input 'x' expects f32[N,4], got f32[2,5]");
  ExpectOneLineError(Cli({"bench", "--model", fixed_model_, "--batch", "8"}),
                     "no input has a symbolic batch dimension (x f32[1,4]); --batch 8");
}

// --batch together with --shape for the same input (what deploy/bench/compare_engines.sh passes)
// was refused with "no input has a symbolic batch dimension".
TEST_F(CliTest, BenchTakesBatchTogetherWithShape) {
  CliResult r = Cli({"bench", "--model", seq_model_, "--batch", "3", "--seconds", "0.1", "--shape",
                     "tokens=3x7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'tokens' f32[3,7]"));
  EXPECT_THAT(r.out, HasSubstr("batch 3,"));
  r = Cli({"bench", "--model", model_, "--batch", "2", "--seconds", "0.1", "--shape", "x=2x4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'x' f32[2,4]"));
  ExpectOneLineError(Cli({"bench", "--model", seq_model_, "--batch", "4", "--shape", "tokens=3x7"}),
                     "--batch 4 disagrees with --shape tokens=3x7 (first dimension 3)");
  // A static first dimension takes no --batch, with or without --shape.
  ExpectOneLineError(Cli({"bench", "--model", fixed_model_, "--batch", "8", "--shape", "x=1x4"}),
                     "no input has a symbolic batch dimension (x f32[1,4]); --batch 8");
}

// An input without --shape takes the value --shape gave its named dimension, not the default batch.
TEST_F(CliTest, BenchBindsNamedDimensionsFromShape) {
  CliResult r = Cli({"bench", "--model", pair_model_, "--seconds", "0.1", "--shape", "a=3x4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'a' f32[3,4]"));
  EXPECT_THAT(r.out, HasSubstr("input 'b' f32[3,4]"));
  r = Cli({"bench", "--model", pair_model_, "--batch", "5", "--seconds", "0.1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input 'b' f32[5,4]"));
}

// The demo models (dynamic batch named "batch"), as the README and compare script run them.
TEST_F(CliTest, BenchDemoModelsWithBatchAndShape) {
  const char* src = std::getenv("OCTET_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "OCTET_SOURCE_DIR is set by ctest";
  const std::string models = std::string(src) + "/deploy/models/";
  for (const auto& [name, sample] : std::vector<std::pair<std::string, std::string>>{
           {"fashion_mlp", "784"}, {"fashion_cnn", "1x28x28"}}) {
    SCOPED_TRACE(name);
    const std::string path = models + name + "/1/model.onnx";
    CliResult r = Cli({"bench", "--model", path, "--batch", "4", "--seconds", "0.1"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out,
                HasSubstr("input 'input' f32[4," + absl::StrReplaceAll(sample, {{"x", ","}})));
    r = Cli({"bench", "--model", path, "--batch", "4", "--seconds", "0.1", "--shape",
             "input=4x" + sample});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("batch 4,"));
  }
}

}  // namespace
}  // namespace octet
