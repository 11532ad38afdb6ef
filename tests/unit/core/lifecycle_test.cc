// Every lifecycle transition, without processes: the server core over an in-process fake
// launcher (DESIGN.md §2).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "core/instance_supervisor.h"
#include "core/server.h"
#include "support/fake_launcher.h"

namespace sluice::core {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempRepo {
 public:
  TempRepo() {
    char tmpl[] = "/tmp/sluice-lifecycle-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~TempRepo() { fs::remove_all(root_); }
  const std::string& root() const { return root_; }

  void AddModel(const std::string& name, const std::string& extra = "",
                std::vector<int> versions = {1}) {
    fs::create_directories(root_ + "/" + name);
    std::ofstream(root_ + "/" + name + "/config.pbtxt")
        << "name: \"" << name << "\"\nbackend: \"identity\"\nmax_batch_size: 0\n"
        << "input [ { name: \"INPUT0\" data_type: TYPE_INT32 dims: [ -1 ] } ]\n"
        << "output [ { name: \"OUTPUT0\" data_type: TYPE_INT32 dims: [ -1 ] } ]\n"
        << extra;
    for (int v : versions) fs::create_directories(root_ + "/" + name + "/" + std::to_string(v));
  }
  void Touch(const std::string& rel, const std::string& content) {
    std::ofstream(root_ + "/" + rel) << content;
  }

 private:
  std::string root_;
};

std::string Param(const std::string& key, const std::string& value) {
  return "parameters { key: \"" + key + "\" value { string_value: \"" + value + "\" } }\n";
}

InferRequest Request(const std::string& model) {
  InferRequest r;
  r.model_name = model;
  Tensor t{"INPUT0", DataType::kInt32, {2}, std::string(8, '\x01')};
  r.inputs.push_back(t);
  return r;
}

// Collects one request's events.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ResponseEvent> events;
  ResponseSink Sink() {
    return [this](ResponseEvent e) {
      std::lock_guard lock(mu);
      events.push_back(std::move(e));
      cv.notify_all();
    };
  }
  bool WaitFinal(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return !events.empty() && events.back().final; });
  }
  int finals() {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto& e : events) n += e.final;
    return n;
  }
  Status final_status() {
    std::lock_guard lock(mu);
    return events.empty() ? Internal("no events") : events.back().status;
  }
};

struct Fixture {
  explicit Fixture(ModelControlMode mode = ModelControlMode::kExplicit, int grace_ms = 2000,
                   int kill_ms = 1000) {
    ServerOptions o;
    o.repositories = {repo.root()};
    o.control_mode = mode;
    o.poll_secs = 1;
    o.version.unload_grace = std::chrono::milliseconds(grace_ms);
    o.version.kill_timeout = std::chrono::milliseconds(kill_ms);
    options = o;
  }
  void Start() {
    auto l = std::make_unique<testing::FakeLauncher>();
    launcher = l.get();
    auto s = Server::Create(options, std::move(l));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(s).value();
  }
  // Waits up to 2 s for the model's instances to be gone and its row to say UNAVAILABLE (an
  // instance is gone before its state leaves UNLOADING).
  void WaitUnloaded(const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      const std::optional<ModelIndexEntry> row = Row(name);
      if (launcher->live() == 0 && row && row->state == ModelState::kUnavailable) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::optional<ModelIndexEntry> Row(const std::string& name, int64_t version = 1) {
    for (auto& r : server->RepositoryIndex(false))
      if (r.name == name && r.version == version) return r;
    return std::nullopt;
  }
  TempRepo repo;
  ServerOptions options;
  testing::FakeLauncher* launcher = nullptr;
  std::unique_ptr<Server> server;
};

TEST(LifecycleTest, LoadInferUnloadEndsUnavailableUnloaded) {
  Fixture f;
  f.repo.AddModel("m");
  f.Start();
  EXPECT_EQ(f.server->RepositoryIndex(false).size(), 1u);
  EXPECT_FALSE(f.server->RepositoryIndex(false)[0].version.has_value())
      << "never loaded: no version";
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  EXPECT_EQ(f.Row("m")->state, ModelState::kReady);
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
  ASSERT_TRUE(c.WaitFinal(2s));
  EXPECT_TRUE(c.final_status().ok());
  ASSERT_TRUE(f.server->UnloadModel("m", {}).ok());
  auto row = f.Row("m");
  EXPECT_EQ(row->state, ModelState::kUnavailable);
  EXPECT_EQ(row->reason, "unloaded");
  EXPECT_EQ(f.launcher->live(), 0);
  auto refused = f.server->Infer(Request("m"), c.Sink());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
}

TEST(LifecycleTest, UnloadOfUnknownOrUnloadedModelSucceeds) {
  Fixture f;
  f.repo.AddModel("m");
  f.Start();
  EXPECT_TRUE(f.server->UnloadModel("nope", {}).ok());
  EXPECT_TRUE(f.server->UnloadModel("m", {}).ok());
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  EXPECT_TRUE(f.server->UnloadModel("m", {}).ok());
  EXPECT_TRUE(f.server->UnloadModel("m", {}).ok());
}

// A name that load refuses is refused by unload too (it answered OK for '../x'), waiting or not.
TEST(LifecycleTest, UnloadRefusesAnInvalidModelNameAsLoadDoes) {
  Fixture f;
  f.repo.AddModel("m");
  f.Start();
  for (const char* bad : {"../etc", "..", "", "a/b", "m\\x"}) {
    for (bool wait : {true, false}) {
      Status s = f.server->UnloadModel(bad, {.wait = wait});
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
      EXPECT_EQ(s.code(), f.server->LoadModel(bad, {}).code()) << bad;
    }
  }
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  EXPECT_TRUE(f.server->UnloadModel("m", {}).ok());
}

TEST(LifecycleTest, LoadFailureIsInvalidArgumentWithReasonInIndex) {
  Fixture f;
  f.repo.AddModel("bad", Param("fake_fail_load", "true"));
  f.Start();
  Status s = f.server->LoadModel("bad", {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("load failed for model 'bad'"), std::string::npos) << s.message();
  auto row = f.Row("bad");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->state, ModelState::kUnavailable);
  EXPECT_NE(row->reason.find("refused to initialize"), std::string::npos);
  EXPECT_EQ(f.launcher->live(), 0);
}

TEST(LifecycleTest, LoadAndUnloadRefusedOutsideExplicitMode) {
  Fixture f(ModelControlMode::kNone);
  f.repo.AddModel("m");
  f.Start();
  EXPECT_EQ(f.Row("m")->state, ModelState::kReady) << "none mode loads everything at start";
  // Triton's refusal: UNAVAILABLE (HTTP 503), in words true of mode none (Triton's say "if
  // polling is enabled" there too; poll mode keeps them: lifecycle_http_test).
  for (const Status& s : {f.server->LoadModel("m", {}), f.server->UnloadModel("m", {})}) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_EQ(s.message(),
              "explicit model load / unload is not allowed: the server runs with "
              "--model-control-mode none "
              "(start it with --model-control-mode explicit)");
  }
}

TEST(LifecycleTest, UnloadLetsInflightRequestsFinishWithinGrace) {
  Fixture f;
  f.repo.AddModel("m", Param("fake_delay_ms", "300"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 20; ++i) {
    cs.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(f.server->Infer(Request("m"), cs.back()->Sink()).ok());
  }
  ASSERT_TRUE(f.server->UnloadModel("m", {}).ok());
  for (auto& c : cs) {
    EXPECT_EQ(c->finals(), 1);
    EXPECT_TRUE(c->final_status().ok()) << c->final_status().ToString();
  }
  EXPECT_EQ(f.Row("m")->reason, "unloaded");
}

// Issue 20: nv_inference_pending_request_count counted running requests too, and the queue
// duration stayed 0. Pending now means not yet started by the backend, and queue time runs
// from arrival until the backend's start report.
TEST(LifecycleTest, PendingCountsWaitingRequestsAndQueueTimeEndsAtTheStart) {
  Fixture f;
  f.repo.AddModel("m", Param("fake_delay_ms", "400") + Param("fake_serial", "true"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 3; ++i) {
    cs.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(f.server->Infer(Request("m"), cs.back()->Sink()).ok());
  }
  auto stats = [&] { return std::move(f.server->Statistics("m", "")).value().at(0); };
  // One runs, two wait: pending is 2 (it was 3, every request in flight, before).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (stats().pending_count != 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(stats().pending_count, 2u);
  for (auto& c : cs) ASSERT_TRUE(c->WaitFinal(10s));
  // Statistics are counted just after the final event reaches its sink.
  while (stats().success.count < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  const ModelStatistics s = stats();
  EXPECT_EQ(s.pending_count, 0u);
  EXPECT_EQ(s.success.count, 3u);
  EXPECT_EQ(s.queue.count, 3u);
  // The second and third waited for the ones before them; all of it is in queue, and
  // request = queue + compute exactly.
  EXPECT_GT(s.queue.ns, 0u);
  EXPECT_EQ(s.queue.ns + s.compute_infer.ns, s.success.ns);
  EXPECT_EQ(s.first_response_ms.count, 3u);
}

TEST(LifecycleTest, UnloadCancelsRequestsPastGraceAndIsBounded) {
  Fixture f(ModelControlMode::kExplicit, /*grace_ms=*/300, /*kill_ms=*/500);
  f.repo.AddModel("m", Param("fake_delay_ms", "60000"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
  auto start = Clock::now();
  ASSERT_TRUE(f.server->UnloadModel("m", {}).ok());
  EXPECT_LT(Clock::now() - start, 300ms + 500ms + 200ms);
  EXPECT_EQ(c.finals(), 1);
  EXPECT_EQ(c.final_status().code(), StatusCode::kCancelled);
  EXPECT_EQ(f.Row("m")->state, ModelState::kUnavailable);
}

TEST(LifecycleTest, BackendThatNeverSendsFinalCannotPinTheModel) {
  Fixture f(ModelControlMode::kExplicit, 200, 500);
  f.repo.AddModel("m", Param("fake_delay_ms", "60000") + Param("fake_ignore_cancel", "true"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
  auto start = Clock::now();
  ASSERT_TRUE(f.server->UnloadModel("m", {}).ok());
  EXPECT_LT(Clock::now() - start, 200ms + 500ms + 200ms);
  ASSERT_EQ(c.finals(), 1) << "the server synthesizes the final event";
  EXPECT_FALSE(c.final_status().ok());
  EXPECT_EQ(f.Row("m")->reason, "unloaded");
}

TEST(LifecycleTest, UnloadWithoutWaitReturnsAtOnceAndStillEnds) {
  Fixture f(ModelControlMode::kExplicit, 300, 500);
  f.repo.AddModel("m", Param("fake_delay_ms", "60000"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
  auto start = Clock::now();
  UnloadOptions o;
  o.wait = false;
  ASSERT_TRUE(f.server->UnloadModel("m", o).ok());
  EXPECT_LT(Clock::now() - start, 100ms);
  ASSERT_TRUE(c.WaitFinal(2s));
  for (int i = 0; i < 100 && f.Row("m")->state != ModelState::kUnavailable; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(f.Row("m")->state, ModelState::kUnavailable);
}

TEST(LifecycleTest, CrashTurnsModelUnavailableAndFailsInflightWhileOthersServe) {
  Fixture f;
  f.options.version.restart.max_restarts = 0;  // restarts: the Issue19 tests below
  f.repo.AddModel("victim", Param("fake_delay_ms", "60000"));
  f.repo.AddModel("other");
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  ASSERT_TRUE(f.server->LoadModel("other", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("victim"), c.Sink()).ok());
  f.launcher->Crash("victim");
  ASSERT_TRUE(c.WaitFinal(1s));
  EXPECT_EQ(c.final_status().code(), StatusCode::kUnavailable);
  for (int i = 0; i < 50 && f.Row("victim")->state != ModelState::kUnavailable; ++i)
    std::this_thread::sleep_for(20ms);
  auto row = f.Row("victim");
  EXPECT_EQ(row->state, ModelState::kUnavailable);
  EXPECT_NE(row->reason.find("killed by signal 9"), std::string::npos) << row->reason;
  Collector ok;
  ASSERT_TRUE(f.server->Infer(Request("other"), ok.Sink()).ok());
  ASSERT_TRUE(ok.WaitFinal(2s));
  EXPECT_TRUE(ok.final_status().ok());
}

// Issue 19 item 5: a crashed stub never came back. It is restarted after a backoff; its
// in-flight requests fail clearly meanwhile and the index says why it does not serve.
bool WaitState(Fixture& f, const std::string& name, ModelState state, std::chrono::milliseconds t) {
  const auto deadline = Clock::now() + t;
  while (Clock::now() < deadline) {
    auto row = f.Row(name);
    if (row && row->state == state) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST(LifecycleTest, Issue19CrashedInstanceIsRestartedAfterTheBackoff) {
  Fixture f;
  f.options.version.restart.backoff_initial = 300ms;
  f.repo.AddModel("victim", Param("fake_delay_ms", "60000"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("victim"), c.Sink()).ok());
  const auto crashed = Clock::now();
  f.launcher->Crash("victim");
  ASSERT_TRUE(c.WaitFinal(1s));
  EXPECT_EQ(c.final_status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.final_status().message().find("model 'victim'"), std::string::npos)
      << c.final_status().message();
  EXPECT_NE(c.final_status().message().find("killed by signal 9"), std::string::npos);
  ASSERT_TRUE(WaitState(f, "victim", ModelState::kUnavailable, 200ms));
  auto row = f.Row("victim");
  EXPECT_NE(row->reason.find("killed by signal 9"), std::string::npos) << row->reason;
  EXPECT_NE(row->reason.find("restart 1 of 5"), std::string::npos) << row->reason;
  Collector refused;
  EXPECT_EQ(f.server->Infer(Request("victim"), refused.Sink()).status().code(),
            StatusCode::kUnavailable);
  ASSERT_TRUE(WaitState(f, "victim", ModelState::kReady, 2s));
  EXPECT_GE(Clock::now() - crashed, 300ms) << "restarted before the backoff";
  EXPECT_EQ(f.launcher->launches(), 2);
  EXPECT_EQ(f.launcher->live(), 1);
  EXPECT_EQ(f.Row("victim")->reason, "");
  EXPECT_TRUE(f.server->UnloadModel("victim", {}).ok());
  EXPECT_EQ(f.launcher->live(), 0);
}

TEST(LifecycleTest, Issue19RestartLimitReachedEndsUnavailableWithTheReason) {
  Fixture f;
  f.options.version.restart.max_restarts = 2;
  f.options.version.restart.backoff_initial = 20ms;
  f.repo.AddModel("victim");
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  for (int i = 1; i <= 2; ++i) {
    f.launcher->Crash("victim");
    ASSERT_TRUE(WaitState(f, "victim", ModelState::kUnavailable, 1s)) << "crash " << i;
    ASSERT_TRUE(WaitState(f, "victim", ModelState::kReady, 2s)) << "restart " << i;
  }
  f.launcher->Crash("victim");  // a third crash in a row: no third restart
  std::this_thread::sleep_for(300ms);
  auto row = f.Row("victim");
  EXPECT_EQ(row->state, ModelState::kUnavailable);
  EXPECT_NE(row->reason.find("killed by signal 9"), std::string::npos) << row->reason;
  EXPECT_NE(row->reason.find("--model-restart-max 2"), std::string::npos) << row->reason;
  EXPECT_EQ(f.launcher->launches(), 3);
  EXPECT_EQ(f.launcher->live(), 0);
  // A load brings it back.
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  EXPECT_EQ(f.Row("victim")->state, ModelState::kReady);
}

TEST(LifecycleTest, Issue19UnloadWhileRestartingLeavesNoInstance) {
  Fixture f;
  f.options.version.restart.backoff_initial = 2000ms;
  f.repo.AddModel("victim");
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  f.launcher->Crash("victim");
  ASSERT_TRUE(WaitState(f, "victim", ModelState::kUnavailable, 1s));
  const auto start = Clock::now();
  ASSERT_TRUE(f.server->UnloadModel("victim", {}).ok());
  EXPECT_LT(Clock::now() - start, 1s) << "the unload waited for the backoff";
  auto row = f.Row("victim");
  EXPECT_EQ(row->state, ModelState::kUnavailable);
  EXPECT_EQ(row->reason, "unloaded");
  std::this_thread::sleep_for(2500ms);  // past the backoff: nothing restarts
  EXPECT_EQ(f.launcher->launches(), 1);
  EXPECT_EQ(f.launcher->live(), 0);
  EXPECT_EQ(f.Row("victim")->state, ModelState::kUnavailable);
}

TEST(LifecycleTest, Issue19UnloadWhileTheNewInstanceStartsLeavesNoInstance) {
  Fixture f;
  f.options.version.restart.backoff_initial = 50ms;
  f.repo.AddModel("victim", Param("fake_load_ms", "400"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("victim", {}).ok());
  f.launcher->Crash("victim");
  ASSERT_TRUE(WaitState(f, "victim", ModelState::kLoading, 1s)) << "LOADING while it starts";
  EXPECT_NE(f.Row("victim")->reason.find("restarting"), std::string::npos)
      << f.Row("victim")->reason;
  ASSERT_TRUE(f.server->UnloadModel("victim", {}).ok());
  EXPECT_EQ(f.launcher->live(), 0);
  EXPECT_EQ(f.launcher->launches(), 2);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(f.Row("victim")->state, ModelState::kUnavailable);
  EXPECT_EQ(f.Row("victim")->reason, "unloaded");
  EXPECT_EQ(f.launcher->launches(), 2);
  EXPECT_EQ(f.launcher->live(), 0);
}

TEST(LifecycleTest, Issue19OtherInstancesServeWhileOneRestarts) {
  Fixture f;
  f.options.version.restart.backoff_initial = 500ms;
  f.repo.AddModel("pair", "instance_group [ { count: 2 kind: KIND_CPU } ]\n");
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("pair", {}).ok());
  f.launcher->CrashOne("pair");
  // The other instance serves meanwhile: still READY, every request answered.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(f.Row("pair")->state, ModelState::kReady);
    Collector c;
    ASSERT_TRUE(f.server->Infer(Request("pair"), c.Sink()).ok());
    ASSERT_TRUE(c.WaitFinal(2s));
    EXPECT_TRUE(c.final_status().ok()) << c.final_status().ToString();
  }
  for (int i = 0; i < 200 && f.launcher->live() < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(f.launcher->launches(), 3);
  EXPECT_EQ(f.launcher->live(), 2);
  // Both die: nothing serves until one is back.
  f.launcher->Crash("pair");
  ASSERT_TRUE(WaitState(f, "pair", ModelState::kUnavailable, 1s));
  ASSERT_TRUE(WaitState(f, "pair", ModelState::kReady, 3s));
}

// Issue 21: an instance that dies while the load still launches the others. Its crash
// handler stops the instances launched so far on a background thread while the load appends
// the next ones; it read the list of instances without the version's mutex (a data race
// TSan reports here, and a use-after-free when the append reallocates).
TEST(LifecycleTest, Issue21CrashWhileLoadLaunchesFailsTheLoadWithoutARace) {
  Fixture f;
  f.options.version.restart.max_restarts = 0;
  f.repo.AddModel("trio", "instance_group [ { count: 3 kind: KIND_CPU } ]\n");
  f.Start();
  f.launcher->before_launch = [&f](const StubLaunchSpec& spec) {
    if (spec.instance.instance_index != 2) return;
    // Instance 0 dies; its handler stops instance 1 before instance 2 is appended.
    f.launcher->CrashOne("trio");
    for (int i = 0; i < 200 && f.launcher->live() > 0; ++i) std::this_thread::sleep_for(5ms);
  };
  Status s = f.server->LoadModel("trio", {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(f.launcher->launches(), 3);
  EXPECT_EQ(f.launcher->live(), 0);
  EXPECT_EQ(f.Row("trio")->state, ModelState::kUnavailable);
}

// Issue 21: a stub that crashes while its version unloads leaves its reason on the version
// (not "unloaded"). Which reason was a crash's was read from its text, "stub process ..." at
// the start, which a version of several instances prefixes with "instance N: ".
TEST(LifecycleTest, Issue21CrashDuringUnloadKeepsItsReasonWithSeveralInstances) {
  Fixture f(ModelControlMode::kExplicit, 5000, 500);
  f.options.version.restart.max_restarts = 0;
  f.repo.AddModel(
      "pair", "instance_group [ { count: 2 kind: KIND_CPU } ]\n" + Param("fake_delay_ms", "60000"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("pair", {}).ok());
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("pair"), c.Sink()).ok());
  UnloadOptions o;
  o.wait = false;
  ASSERT_TRUE(f.server->UnloadModel("pair", o).ok());
  ASSERT_TRUE(WaitState(f, "pair", ModelState::kUnloading, 1s));
  f.launcher->CrashOne("pair");  // during the grace period: the request is still open
  ASSERT_TRUE(c.WaitFinal(2s));
  ASSERT_TRUE(WaitState(f, "pair", ModelState::kUnavailable, 3s));
  auto row = f.Row("pair");
  EXPECT_NE(row->reason.find("instance 0: stub process killed by signal 9"), std::string::npos)
      << row->reason;
  EXPECT_EQ(f.launcher->live(), 0);
}

// Issue 19 item 7: one config could ask for 1024 stubs (each dirties tens of MB). The
// number of instances of a version is bounded; asking more fails the load, naming both.
TEST(LifecycleTest, Issue19InstanceCountAboveTheLimitFailsTheLoad) {
  Fixture f;
  f.repo.AddModel("many", "instance_group [ { count: 17 kind: KIND_CPU } ]\n");
  f.repo.AddModel("four",
                  "instance_group [ { count: 2 kind: KIND_CPU }, { count: 2 kind: KIND_CPU } ]\n");
  f.options.version.max_instances = 16;
  f.Start();
  Status s = f.server->LoadModel("many", {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("asks for 17 instances"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("limit of 16"), std::string::npos) << s.message();
  EXPECT_EQ(f.launcher->launches(), 0);
  EXPECT_EQ(f.Row("many")->state, ModelState::kUnavailable);
  EXPECT_NE(f.Row("many")->reason.find("limit of 16"), std::string::npos);
  ASSERT_TRUE(f.server->LoadModel("four", {}).ok());
  EXPECT_EQ(f.launcher->live(), 4);
}

TEST(LifecycleTest, Issue19InstanceCountLimitCountsEveryGroup) {
  Fixture f;
  f.repo.AddModel("four",
                  "instance_group [ { count: 2 kind: KIND_CPU }, { count: 2 kind: KIND_CPU } ]\n");
  f.options.version.max_instances = 3;
  f.Start();
  Status s = f.server->LoadModel("four", {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("asks for 4 instances, above the limit of 3"), std::string::npos)
      << s.message();
  EXPECT_EQ(f.launcher->launches(), 0);
}

TEST(LifecycleTest, Issue19RestartBackoffDoublesUpToItsCap) {
  RestartPolicy p;
  p.backoff_initial = 100ms;
  p.backoff_max = 700ms;
  EXPECT_EQ(InstanceSupervisor::Backoff(p, 1), 100ms);
  EXPECT_EQ(InstanceSupervisor::Backoff(p, 2), 200ms);
  EXPECT_EQ(InstanceSupervisor::Backoff(p, 3), 400ms);
  EXPECT_EQ(InstanceSupervisor::Backoff(p, 4), 700ms);
  EXPECT_EQ(InstanceSupervisor::Backoff(p, 60), 700ms);
}

TEST(LifecycleTest, ReloadKeepsServingAndLosesNoRequest) {
  Fixture f;
  f.repo.AddModel("m", Param("fake_delay_ms", "200") + Param("fake_load_ms", "300"));
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::vector<std::unique_ptr<Collector>> cs;
  std::mutex cs_mu;
  std::thread client([&] {
    while (!stop) {
      auto c = std::make_unique<Collector>();
      if (!f.server->Infer(Request("m"), c->Sink()).ok()) refused++;
      {
        std::lock_guard lock(cs_mu);
        cs.push_back(std::move(c));
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());  // reload
  std::this_thread::sleep_for(100ms);
  stop = true;
  client.join();
  EXPECT_EQ(refused.load(), 0) << "the old version serves until the new one is READY";
  for (auto& c : cs) {
    ASSERT_TRUE(c->WaitFinal(3s));
    EXPECT_TRUE(c->final_status().ok()) << c->final_status().ToString();
  }
  EXPECT_EQ(f.launcher->launches(), 2);
  for (int i = 0; i < 100 && f.launcher->live() != 1; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(f.launcher->live(), 1) << "the old version drained and stopped";
}

TEST(LifecycleTest, FailedReloadKeepsTheOldVersionReady) {
  Fixture f;
  f.repo.AddModel("m");
  f.Start();
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  f.repo.AddModel("m", Param("fake_fail_load", "true"));
  EXPECT_FALSE(f.server->LoadModel("m", {}).ok());
  EXPECT_EQ(f.Row("m")->state, ModelState::kReady);
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
  ASSERT_TRUE(c.WaitFinal(2s));
  EXPECT_TRUE(c.final_status().ok());
}

TEST(LifecycleTest, ConcurrentLoadsAndUnloadsEndConsistent) {
  Fixture f(ModelControlMode::kExplicit, 100, 200);
  f.repo.AddModel("m", Param("fake_delay_ms", "5"));
  f.Start();
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop) {
        if (rng() % 2) {
          (void)f.server->LoadModel("m", {});
        } else {
          UnloadOptions o;
          o.wait = rng() % 3 != 0;
          (void)f.server->UnloadModel("m", o);
        }
        Collector c;
        if (f.server->Infer(Request("m"), c.Sink()).ok()) {
          EXPECT_TRUE(c.WaitFinal(3s));
        }
      }
    });
  }
  std::this_thread::sleep_for(3s);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(f.server->UnloadModel("m", {}).ok());
  EXPECT_EQ(f.Row("m")->state, ModelState::kUnavailable);
  for (int i = 0; i < 100 && f.launcher->live() != 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(f.launcher->live(), 0);
  ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
  EXPECT_EQ(f.Row("m")->state, ModelState::kReady);
  EXPECT_EQ(f.launcher->live(), 1);
}

// Requests on one model take effect in the order they were made, an unload that does not
// wait included: a load asked right after it runs after it. (With a plain mutex the
// background unload's thread usually reached the lock after the caller's next load, so the
// model ended UNAVAILABLE with no instance although the last request was a load.)
TEST(LifecycleTest, LoadRightAfterAnUnloadThatDoesNotWaitEndsReady) {
  Fixture f(ModelControlMode::kExplicit, 100, 200);
  f.repo.AddModel("m", Param("fake_load_ms", "20"));
  f.Start();
  UnloadOptions no_wait;
  no_wait.wait = false;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
    ASSERT_TRUE(f.server->UnloadModel("m", no_wait).ok());
    ASSERT_TRUE(f.server->LoadModel("m", {}).ok());
    // Had the unload run after the last load, it would have finished within this wait.
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(f.Row("m")->state, ModelState::kReady);
    EXPECT_EQ(f.launcher->live(), 1);
    Collector c;
    ASSERT_TRUE(f.server->Infer(Request("m"), c.Sink()).ok());
    ASSERT_TRUE(c.WaitFinal(2s));
    EXPECT_TRUE(c.final_status().ok());
  }
  // And an unload that does not wait, alone, still unloads.
  ASSERT_TRUE(f.server->UnloadModel("m", no_wait).ok());
  f.WaitUnloaded("m");
  EXPECT_EQ(f.Row("m")->state, ModelState::kUnavailable);
  EXPECT_EQ(f.launcher->live(), 0);
}

TEST(LifecycleTest, PollAppliesNewChangedAndRemovedModels) {
  Fixture f(ModelControlMode::kPoll);
  f.repo.AddModel("a", "", {1, 2});
  f.Start();
  EXPECT_EQ(f.Row("a", 2)->state, ModelState::kReady);
  EXPECT_FALSE(f.Row("a", 1)) << "latest 1 by default";
  const int base = f.launcher->launches();
  f.repo.AddModel("b");
  f.repo.Touch("a/2/weights.bin", "changed");
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(f.Row("b")->state, ModelState::kReady);
  EXPECT_EQ(f.Row("a", 2)->state, ModelState::kReady);
  EXPECT_EQ(f.launcher->launches(), base + 2) << "b loaded, a/2 reloaded";
  fs::remove_all(f.repo.root() + "/b");
  std::this_thread::sleep_for(2500ms);
  auto row = f.Row("b");
  EXPECT_TRUE(!row || row->state == ModelState::kUnavailable);
}

TEST(LifecycleTest, ShutdownUnloadsEverything) {
  Fixture f(ModelControlMode::kNone, 200, 200);
  f.repo.AddModel("a");
  f.repo.AddModel("b", Param("fake_delay_ms", "60000"));
  f.Start();
  Collector c;
  ASSERT_TRUE(f.server->Infer(Request("b"), c.Sink()).ok());
  f.server->Shutdown();
  EXPECT_EQ(c.finals(), 1);
  EXPECT_EQ(f.launcher->live(), 0);
  EXPECT_FALSE(f.server->IsReady());
}

}  // namespace
}  // namespace sluice::core
