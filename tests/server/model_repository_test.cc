// ModelRepository with the fake loader: name validation, version policies, hot reload, failing
// versions and configs, models that try to escape the repository.
#include "server/model_repository.h"

#include <filesystem>
#include <string>

#include "absl/synchronization/notification.h"
#include "fake_servable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet::server {
namespace {

namespace fs = std::filesystem;
using tensorflow::serving::ModelVersionStatus;
using ::testing::ElementsAre;
using testing::FakeLoader;
using testing::FakeStats;
using ::testing::HasSubstr;
using testing::WriteFile;

TEST(ModelNameTest, AcceptsPlainNames) {
  for (const char* name : {"fashion_cnn", "resnet-18", "m.v2", "A1"}) {
    EXPECT_TRUE(ValidateModelName(name).ok()) << name;
  }
}

TEST(ModelNameTest, RejectsNamesThatCouldEscape) {
  for (const char* name :
       {"", ".", "..", "../etc", "a/b", "/abs", ".hidden", "a b", "a\\b", "x\n", "caf\xC3\xA9"}) {
    EXPECT_FALSE(ValidateModelName(name).ok()) << name;
  }
  EXPECT_FALSE(ValidateModelName(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateModelName(std::string(128, 'a')).ok());
}

TEST(ModelNameTest, VersionDirectoryNames) {
  EXPECT_EQ(ParseVersionDirName("1"), 1);
  EXPECT_EQ(ParseVersionDirName("0042"), 42);
  for (const char* bad : {"", "-1", "1a", "v1", "1.0", "99999999999999999999"}) {
    EXPECT_FALSE(ParseVersionDirName(bad).has_value()) << bad;
  }
}

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ =
        fs::path(::testing::TempDir()) /
        ("repo_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(base_);
    root_ = base_ / "models";
    fs::create_directories(root_);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(base_);
  }
  void MakeRepo() {
    ModelRepository::Options options;
    options.root = root_.string();
    options.loader = FakeLoader(&stats_);
    options.metrics = &metrics_;
    options.cpu_budget = 2;
    auto repo = ModelRepository::Create(options);
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = std::move(repo).value();
  }
  void AddVersion(const std::string& model, int64_t version,
                  const std::string& content = "features: 3") {
    WriteFile(root_ / model / std::to_string(version) / "model.onnx", content);
  }
  void SetConfig(const std::string& model, const std::string& text) {
    WriteFile(root_ / model / "config.pbtxt", text);
  }
  int64_t ServedVersion(const std::string& model) {
    auto v = repo_->Get(model, std::nullopt);
    return v.ok() ? (*v)->version() : -1;
  }
  std::vector<int64_t> AvailableVersions(const std::string& model) {
    std::vector<int64_t> out;
    auto statuses = repo_->GetStatus(model, std::nullopt);
    if (!statuses.ok()) return out;
    for (const VersionStatus& s : *statuses) {
      if (s.state == ModelVersionStatus::AVAILABLE) out.push_back(s.version);
    }
    return out;
  }
  VersionStatus StatusOf(const std::string& model, int64_t version) {
    auto statuses = repo_->GetStatus(model, version);
    EXPECT_TRUE(statuses.ok()) << statuses.status();
    return statuses.ok() && !statuses->empty() ? (*statuses)[0] : VersionStatus{};
  }
  // Runs one row [1, 2, 3] through the served version; returns y[0].
  float Infer(const std::string& model) {
    auto version = repo_->Get(model, std::nullopt);
    EXPECT_TRUE(version.ok()) << version.status();
    absl::Notification done;
    float y0 = -1;
    auto request = std::make_shared<InferenceRequest>(
        std::vector<Tensor>{Tensor::FromFloats({1, 3}, {1, 2, 3})}, 1, absl::InfiniteFuture(), "",
        [&](absl::Status status, InferenceRequest& r) {
          EXPECT_TRUE(status.ok()) << status;
          if (status.ok()) y0 = r.outputs()[0].data_as<float>()[0];
          done.Notify();
        });
    EXPECT_TRUE((*version)->Submit(request).ok());
    done.WaitForNotification();
    return y0;
  }

  fs::path base_;
  fs::path root_;
  FakeStats stats_;
  Metrics metrics_{Metrics::Options{}};
  std::unique_ptr<ModelRepository> repo_;
};

TEST_F(ModelRepositoryTest, MissingRootIsAnError) {
  ModelRepository::Options options;
  options.root = (base_ / "nope").string();
  options.loader = FakeLoader(&stats_);
  options.metrics = &metrics_;
  EXPECT_EQ(ModelRepository::Create(options).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, ServesTheLatestVersionByDefault) {
  SetConfig("m", "");
  AddVersion("m", 1);
  AddVersion("m", 2);
  MakeRepo();
  EXPECT_FALSE(repo_->AllModelsReady());
  repo_->Poll();
  EXPECT_TRUE(repo_->AllModelsReady());
  EXPECT_EQ(ServedVersion("m"), 2);
  EXPECT_EQ(Infer("m"), 2 * 1 + 2);
  EXPECT_EQ(repo_->Get("m", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->Get("nope", std::nullopt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->Get("../m", std::nullopt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(AvailableVersions("m"), ElementsAre(2));
  EXPECT_EQ(stats_.loads.load(), 1);
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_loaded{model=\"m\",version=\"2\"} 1"));
}

TEST_F(ModelRepositoryTest, HotReloadSwitchesAndUnloadsTheOldVersion) {
  SetConfig("m", "");
  AddVersion("m", 1);
  MakeRepo();
  repo_->Poll();
  EXPECT_EQ(Infer("m"), 2 + 1);
  // A request still holding version 1 keeps it alive (draining) across the switch.
  std::shared_ptr<LoadedVersion> held = repo_->Get("m", std::nullopt).value();
  AddVersion("m", 2);
  repo_->Poll();
  EXPECT_EQ(ServedVersion("m"), 2);
  EXPECT_EQ(Infer("m"), 2 + 2);
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::UNLOADING);
  held.reset();
  repo_->Poll();
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::END);
  EXPECT_TRUE(StatusOf("m", 1).status.ok());
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_loaded{model=\"m\",version=\"1\"} 0"));
}

TEST_F(ModelRepositoryTest, CorruptVersionIsRefusedAndTheLastGoodOneKeepsServing) {
  SetConfig("m", "");
  AddVersion("m", 2);
  MakeRepo();
  repo_->Poll();
  AddVersion("m", 3, "corrupt");
  repo_->Poll();
  EXPECT_EQ(ServedVersion("m"), 2);
  EXPECT_EQ(Infer("m"), 2 + 2);
  VersionStatus v3 = StatusOf("m", 3);
  EXPECT_EQ(v3.state, ModelVersionStatus::END);
  EXPECT_THAT(v3.status.message(), HasSubstr("corrupt fake model"));
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_load_failures_total{model=\"m\"} 1"));
  // Not retried while the files are unchanged.
  const int loads = stats_.loads.load();
  repo_->Poll();
  EXPECT_EQ(stats_.loads.load(), loads);
  // Fixed on disk: retried and switched to.
  fs::remove(root_ / "m" / "3" / "model.onnx");
  AddVersion("m", 3, "features: 3\n");
  repo_->Poll();
  EXPECT_EQ(ServedVersion("m"), 3);
}

TEST_F(ModelRepositoryTest, FirstVersionFailingLeavesTheModelUnavailable) {
  SetConfig("m", "");
  AddVersion("m", 1, "corrupt");
  SetConfig("ok", "");
  AddVersion("ok", 1);
  MakeRepo();
  repo_->Poll();
  EXPECT_EQ(repo_->Get("m", std::nullopt).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ServedVersion("ok"), 1);
  EXPECT_FALSE(repo_->AllModelsReady());
}

TEST_F(ModelRepositoryTest, BadConfigIsReportedAndAGoodOneKeepsServing) {
  SetConfig("m", "num_workers: 1");
  AddVersion("m", 1);
  SetConfig("bad", "this is not a config");
  AddVersion("bad", 1);
  MakeRepo();
  repo_->Poll();
  EXPECT_EQ(repo_->Get("bad", std::nullopt).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_load_failures_total{model=\"bad\"} 1"));
  SetConfig("m", "batching { max_batch_size: 0 }");
  repo_->Poll();
  EXPECT_EQ(ServedVersion("m"), 1);
  EXPECT_EQ(Infer("m"), 3);
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_load_failures_total{model=\"m\"} 1"));
  repo_->Poll();  // reported once, not at every poll
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_load_failures_total{model=\"m\"} 1"));
}

TEST_F(ModelRepositoryTest, ConfigChangeReloadsTheServingVersion) {
  SetConfig("m", "");
  AddVersion("m", 1);
  MakeRepo();
  repo_->Poll();
  std::shared_ptr<LoadedVersion> before = repo_->Get("m", std::nullopt).value();
  SetConfig("m", "batching { max_batch_size: 4 max_queue_size: 8 }");
  repo_->Poll();
  std::shared_ptr<LoadedVersion> after = repo_->Get("m", std::nullopt).value();
  EXPECT_NE(before.get(), after.get());
  EXPECT_EQ(after->config().batching().max_batch_size(), 4);
  EXPECT_EQ(after->max_request_rows(), 8);
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::AVAILABLE);
  before.reset();
  repo_->Poll();
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::AVAILABLE);
}

TEST_F(ModelRepositoryTest, ReplacedModelFileReloadsTheVersion) {
  SetConfig("m", "");
  AddVersion("m", 1, "features: 3");
  MakeRepo();
  repo_->Poll();
  std::shared_ptr<LoadedVersion> before = repo_->Get("m", std::nullopt).value();
  EXPECT_EQ(before->servable().inputs()[0].dims[1], 3);
  repo_->Poll();  // unchanged files: no reload
  EXPECT_EQ(stats_.loads.load(), 1);
  // model.onnx replaced in place (written elsewhere, renamed over the old one).
  WriteFile(base_ / "staging.onnx", "features: 5");
  fs::rename(base_ / "staging.onnx", root_ / "m" / "1" / "model.onnx");
  repo_->Poll();
  std::shared_ptr<LoadedVersion> after = repo_->Get("m", std::nullopt).value();
  EXPECT_NE(before.get(), after.get());
  EXPECT_EQ(after->servable().inputs()[0].dims[1], 5);
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::AVAILABLE);
  // A replacement that does not load leaves the last good instance serving.
  WriteFile(base_ / "staging.onnx", "corrupt");
  fs::rename(base_ / "staging.onnx", root_ / "m" / "1" / "model.onnx");
  repo_->Poll();
  EXPECT_EQ(repo_->Get("m", std::nullopt).value().get(), after.get());
  EXPECT_EQ(StatusOf("m", 1).state, ModelVersionStatus::AVAILABLE);
  EXPECT_THAT(metrics_.Scrape(), HasSubstr("octet_model_load_failures_total{model=\"m\"} 1"));
  const int loads = stats_.loads.load();
  repo_->Poll();  // not retried while the bad file is unchanged
  EXPECT_EQ(stats_.loads.load(), loads);
}

TEST_F(ModelRepositoryTest, VersionPolicies) {
  SetConfig("all", "version_policy { all {} }");
  SetConfig("two", "version_policy { latest { num_versions: 2 } }");
  SetConfig("pick", "version_policy { specific { versions: 1 versions: 3 versions: 9 } }");
  for (const char* m : {"all", "two", "pick"}) {
    for (int v : {1, 2, 3}) AddVersion(m, v);
  }
  MakeRepo();
  repo_->Poll();
  EXPECT_THAT(AvailableVersions("all"), ElementsAre(1, 2, 3));
  EXPECT_THAT(AvailableVersions("two"), ElementsAre(2, 3));
  EXPECT_THAT(AvailableVersions("pick"), ElementsAre(1, 3));
  EXPECT_EQ(repo_->Get("all", 1).value()->version(), 1);
  EXPECT_EQ(ServedVersion("pick"), 3);
}

TEST_F(ModelRepositoryTest, NothingOutsideTheRepositoryIsLoaded) {
  // A symlinked model directory and a symlinked version pointing outside the root.
  WriteFile(base_ / "outside" / "config.pbtxt", "");
  WriteFile(base_ / "outside" / "1" / "model.onnx", "features: 3");
  fs::create_directory_symlink(base_ / "outside", root_ / "evil");
  SetConfig("m", "");
  AddVersion("m", 1);
  fs::create_directory_symlink(base_ / "outside" / "1", root_ / "m" / "7");
  // Names that are not model names are ignored.
  WriteFile(root_ / ".hidden" / "config.pbtxt", "");
  WriteFile(root_ / ".hidden" / "1" / "model.onnx", "features: 3");
  MakeRepo();
  repo_->Poll();
  EXPECT_THAT(repo_->ModelNames(), ElementsAre("m"));
  EXPECT_EQ(ServedVersion("m"), 1);
  EXPECT_EQ(repo_->Get("evil", std::nullopt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->Get(".hidden", std::nullopt).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, RemovedModelIsUnloaded) {
  SetConfig("m", "");
  AddVersion("m", 1);
  MakeRepo();
  repo_->Poll();
  EXPECT_EQ(ServedVersion("m"), 1);
  fs::remove_all(root_ / "m");
  repo_->Poll();
  EXPECT_EQ(repo_->Get("m", std::nullopt).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(repo_->AllModelsReady());
}

TEST_F(ModelRepositoryTest, EmptyRepositoryIsNotReady) {
  MakeRepo();
  repo_->Poll();
  EXPECT_FALSE(repo_->AllModelsReady());
  EXPECT_TRUE(repo_->ModelNames().empty());
}

}  // namespace
}  // namespace octet::server
