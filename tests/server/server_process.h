// The real octet-server binary as a child process, for the tests that need a process: SIGTERM,
// resident memory under overload, TLS flags, reflection with an external client. It listens on
// 127.0.0.1 with --grpc_port=0 (and --metrics_port=0 / --health_port=0 when asked), and the ports
// it picked are read back from its startup log line, so there is no free-port race.
#ifndef OCTET_TESTS_SERVER_SERVER_PROCESS_H_
#define OCTET_TESTS_SERVER_SERVER_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace octet::server::testing {

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteWholeFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// The source tree (ctest sets OCTET_SOURCE_DIR).
inline std::filesystem::path SourceDir() {
  const char* dir = std::getenv("OCTET_SOURCE_DIR");
  return dir != nullptr ? std::filesystem::path(dir)
                        : std::filesystem::path(OCTET_SOURCE_DIR_DEFAULT);
}

// A fresh directory under the test temp dir, named after the running test.
inline std::filesystem::path FreshTestDir(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              absl::StrCat("octet_", info->test_suite_name(), "_", info->name(),
                                           "_", ::getpid(), "_", suffix);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Copies deploy/models/<model> into <repo>/<model>, replacing its config.pbtxt by `config` when
// that is not empty.
inline void CopyDemoModel(const std::string& model, const std::filesystem::path& repo,
                          const std::string& config = "") {
  const std::filesystem::path from = SourceDir() / "deploy" / "models" / model;
  std::filesystem::create_directories(repo);
  std::filesystem::copy(from, repo / model, std::filesystem::copy_options::recursive);
  if (!config.empty()) WriteWholeFile(repo / model / "config.pbtxt", config);
}

// A Predict request for a demo model: `rows` rows of pseudo-random pixels in [0, 1) drawn from
// `seed`, shaped [rows, 1, 28, 28] for fashion_cnn and [rows, 784] for fashion_mlp.
inline tensorflow::serving::PredictRequest DemoRequest(const std::string& model, int64_t rows,
                                                       uint32_t seed) {
  tensorflow::serving::PredictRequest request;
  request.mutable_model_spec()->set_name(model);
  tensorflow::TensorProto& x = (*request.mutable_inputs())["input"];
  x.set_dtype(tensorflow::DT_FLOAT);
  x.mutable_tensor_shape()->add_dim()->set_size(rows);
  if (model == "fashion_cnn") {
    for (int64_t d : {1, 28, 28}) x.mutable_tensor_shape()->add_dim()->set_size(d);
  } else {
    x.mutable_tensor_shape()->add_dim()->set_size(784);
  }
  std::vector<float> pixels(static_cast<size_t>(rows * 784));
  uint32_t state = seed * 2654435761u + 1;
  for (float& p : pixels) {
    state = state * 1664525u + 1013904223u;  // LCG: reproducible without <random> engines
    p = static_cast<float>(state >> 8) / static_cast<float>(1 << 24);
  }
  x.set_tensor_content(pixels.data(), pixels.size() * sizeof(float));
  return request;
}

// The "logits" output of a response as floats (empty if absent or malformed).
inline std::vector<float> Logits(const tensorflow::serving::PredictResponse& response) {
  auto it = response.outputs().find("logits");
  if (it == response.outputs().end()) return {};
  const std::string& bytes = it->second.tensor_content();
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// True if `got` equals `want` elementwise within `tolerance` (absolute, plus relative to |want|):
// batching a request with others may change the kernels' summation order, never the answer.
inline bool SameLogits(const std::vector<float>& got, const std::vector<float>& want,
                       float tolerance = 1e-3f) {
  if (got.size() != want.size() || want.empty()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::abs(got[i] - want[i]) <= tolerance * (1 + std::abs(want[i])))) return false;
  }
  return true;
}

class ServerProcess {
 public:
  struct Options {
    std::filesystem::path model_repository;
    // Extra flags, e.g. {"--tls_cert_file=..."}.
    std::vector<std::string> flags;
    // Also serve /metrics (on a free port).
    bool metrics = false;
    // Also serve plaintext health on a free --health_port.
    bool health_port = false;
    // How long startup (models loaded, health SERVING) may take.
    absl::Duration startup_timeout = absl::Seconds(180);
  };

  ~ServerProcess() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // Starts octet-server and waits for its startup log line (the ports). Fails the test (and
  // returns false) if the process exits first or the line does not come within the timeout.
  bool Start(const Options& options) {
    options_ = options;
    log_path_ = options.model_repository.parent_path() /
                absl::StrCat(options.model_repository.filename().string(), ".server.log");
    std::vector<std::string> args = {
        OCTET_SERVER_PATH,
        absl::StrCat("--model_repository=", options.model_repository.string()),
        "--host=127.0.0.1",
        "--grpc_port=0",
        absl::StrCat("--metrics_port=", options.metrics ? 0 : -1),
        "--poll_interval_seconds=3600"};
    if (options.health_port) args.push_back("--health_port=0");
    args.insert(args.end(), options.flags.begin(), options.flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      ADD_FAILURE() << "cannot create " << log_path_;
      return false;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      // Child: only async-signal-safe calls until exec.
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    if (pid_ < 0) {
      ADD_FAILURE() << "fork failed";
      return false;
    }
    // "serving gRPC on 127.0.0.1:PORT[ (TLS)][, metrics on :PORT/metrics][, health on :PORT]"
    const std::regex line(R"(serving gRPC on [^ ]*:([0-9]+)[^\n]*)");
    const absl::Time deadline = absl::Now() + options.startup_timeout;
    while (absl::Now() < deadline) {
      const std::string log = Log();
      std::smatch m;
      if (std::regex_search(log, m, line)) {
        grpc_port_ = std::stoi(m[1]);
        const std::string rest = m[0];
        std::smatch p;
        if (std::regex_search(rest, p, std::regex(R"(metrics on :([0-9]+))"))) {
          metrics_port_ = std::stoi(p[1]);
        }
        if (std::regex_search(rest, p, std::regex(R"(health on :([0-9]+))"))) {
          health_port_ = std::stoi(p[1]);
        }
        return true;
      }
      if (Exited()) {
        ADD_FAILURE() << "octet-server exited during startup:\n" << log;
        return false;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "octet-server did not start within "
                  << absl::FormatDuration(options.startup_timeout) << ":\n"
                  << Log();
    return false;
  }

  // Polls grpc.health.v1 Check("") over `channel` until SERVING; false on timeout.
  bool WaitServing(const std::shared_ptr<grpc::Channel>& channel,
                   absl::Duration timeout = absl::Seconds(180)) {
    auto health = grpc::health::v1::Health::NewStub(channel);
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline && !Exited()) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
      if (health->Check(&context, request, &response).ok() &&
          response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::shared_ptr<grpc::Channel> InsecureChannel(int port = 0) const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    // A fresh connection per channel (tests compare channels with different credentials).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port ? port : grpc_port_),
                                     grpc::InsecureChannelCredentials(), args);
  }

  void Signal(int signal_number) { ::kill(pid_, signal_number); }

  // True once the process has exited (reaps it).
  bool Exited() {
    if (exit_status_) return true;
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
    return exit_status_.has_value();
  }
  // Waits for the process to exit; its wait status, or nullopt on timeout.
  std::optional<int> WaitExit(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!Exited() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    return exit_status_;
  }

  // Resident set size from /proc/PID/status (VmRSS), bytes; 0 if unreadable.
  int64_t RssBytes() const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        int64_t kb = 0;
        std::istringstream(line.substr(6)) >> kb;
        return kb * 1024;
      }
    }
    return 0;
  }

  std::string Log() const { return ReadWholeFile(log_path_); }
  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }

 private:
  Options options_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  int grpc_port_ = 0;
  int metrics_port_ = -1;
  int health_port_ = -1;
};

}  // namespace octet::server::testing

#endif  // OCTET_TESTS_SERVER_SERVER_PROCESS_H_
