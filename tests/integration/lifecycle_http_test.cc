// Issue 2's lifecycle guarantees through the real `sluice` binary over HTTP: load, infer,
// unload, crashes, reloads, concurrent control, poll mode, shutdown.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <random>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<std::string> Explicit(const TestRepository& repo, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--model-repository", repo.path(), "--model-control-mode", "explicit"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(LifecycleHttpTest, LoadInferUnloadLeavesNoStub) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  EXPECT_EQ(StateOf(*http, "identity", ""), "UNKNOWN");
  ASSERT_EQ(Load(*http, "identity"), 200);
  EXPECT_EQ(StateOf(*http, "identity"), "READY");
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  auto r = http->Post("/v2/models/identity/infer", IdentityBody(3));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["outputs"][0]["name"], "OUTPUT0");
  EXPECT_EQ(body["outputs"][0]["data"], nlohmann::json({0, 1, 2}));
  ASSERT_EQ(Unload(*http, "identity"), 200);
  auto row = IndexRow(*http, "identity");
  EXPECT_EQ(row["state"], "UNAVAILABLE");
  EXPECT_EQ(row["reason"], "unloaded");
  for (pid_t pid : stubs) EXPECT_FALSE(ProcessAlive(pid)) << "stub " << pid << " survived unload";
  EXPECT_TRUE(server.Children().empty());
}

TEST(LifecycleHttpTest, UnloadWithTwentyInflightRequestsNoneHangs) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Explicit(repo, {"--model-unload-grace-secs", "1", "--model-kill-timeout-secs", "2"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  ASSERT_EQ(Load(*http, "repeat"), 200);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, clean_error{0}, other{0};
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      auto c = Http(server.http_port());
      // Half finish within the grace period, half would take far longer.
      auto r = c->Post("/v2/models/repeat/generate", RepeatBody(1, i % 2 ? 300 : 20000));
      if (!r.ok()) {
        other++;
        return;
      }
      if (r->status == 200) {
        ok++;
      } else {
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        (j.is_object() && j.contains("error") ? clean_error : other)++;
      }
    });
  }
  std::this_thread::sleep_for(150ms);
  auto start = Clock::now();
  ASSERT_EQ(Unload(*http, "repeat"), 200);
  EXPECT_LT(Clock::now() - start, 1s + 2s + 1s);
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok + clean_error, 20) << "other=" << other;
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(StateOf(*http, "repeat"), "UNAVAILABLE");
}

TEST(LifecycleHttpTest, StubIgnoringShutdownStillEndsWithinGracePlusKill) {
  TestRepository repo;
  repo.Add("stubborn", IdentityConfig("stubborn", Param("ignore_shutdown", "true")));
  ServerProcess server(Explicit(repo, {"--model-unload-grace-secs", "1", "--model-kill-timeout-secs", "2"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  ASSERT_EQ(Load(*http, "stubborn"), 200);
  auto stubs = server.Children();
  auto start = Clock::now();
  ASSERT_EQ(Unload(*http, "stubborn"), 200);
  EXPECT_LT(Clock::now() - start, 1s + 2s + 500ms);
  EXPECT_EQ(StateOf(*http, "stubborn"), "UNAVAILABLE");
  for (pid_t pid : stubs) EXPECT_FALSE(ProcessAlive(pid));
}

TEST(LifecycleHttpTest, KilledStubMakesItsModelUnavailableWhileAnotherServes) {
  TestRepository repo;
  repo.Add("victim", IdentityConfig("victim"));
  repo.Add("bystander", IdentityConfig("bystander"));
  // The checks below run within the restart backoff (Issue19 tests: the restart itself).
  ServerProcess server(Explicit(repo, {"--load-model", "victim", "--model-restart-backoff-ms", "5000"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto victim_stubs = server.Children();
  ASSERT_EQ(victim_stubs.size(), 1u);
  ASSERT_EQ(Load(*http, "bystander"), 200);
  kill(victim_stubs[0], SIGKILL);
  auto start = Clock::now();
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 1s));
  EXPECT_LT(Clock::now() - start, 1s);
  auto row = IndexRow(*http, "victim");
  EXPECT_NE(row.value("reason", "").find("signal 9"), std::string::npos) << row.dump();
  auto r = http->Post("/v2/models/victim/infer", IdentityBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503) << r->body;
  r = http->Post("/v2/models/bystander/infer", IdentityBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

// Issue 19 item 4: four concurrent 40-60 MB tensors (binary extension) deadlocked the
// stub's IPC; the heartbeat killed the stub and the model went UNAVAILABLE. All four are
// served now (or refused cleanly with 429), and the same stub keeps serving.
TEST(LifecycleHttpTest, Issue19FourConcurrentLargeTensorsDoNotKillTheStub) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo, {"--load-model", "identity", "--model-restart-max", "0"}));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  std::vector<std::thread> clients;
  std::vector<int> status(4, 0);
  std::vector<size_t> body_bytes(4, 0);
  const auto start = Clock::now();
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      const size_t n = (40u << 20) / 4 + i * ((5u << 20) / 4);  // 40, 45, 50, 55 MB
      const std::string header =
          R"({"inputs":[{"name":"INPUT0","shape":[)" + std::to_string(n) +
          R"(],"datatype":"INT32","parameters":{"binary_data_size":)" + std::to_string(n * 4) +
          R"(}}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]})";
      std::string body = header + std::string(n * 4, static_cast<char>(i + 1));
      auto c = Http(server.http_port());
      auto r = c->Request("POST", "/v2/models/identity/infer", body,
                          {{"Inference-Header-Content-Length", std::to_string(header.size())}},
                          "application/octet-stream");
      if (r.ok()) {
        status[i] = r->status;
        body_bytes[i] = r->body.size();
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_LT(Clock::now() - start, 60s);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(status[i] == 200 || status[i] == 429) << "request " << i << ": " << status[i];
    if (status[i] == 200) {
      EXPECT_GT(body_bytes[i], (40u << 20) + i * (5u << 20));
    }
  }
  auto http = Http(server.http_port());
  EXPECT_EQ(StateOf(*http, "identity"), "READY") << IndexRow(*http, "identity").dump();
  EXPECT_EQ(server.Children(), stubs) << "the stub was replaced";
  EXPECT_EQ(http->Post("/v2/models/identity/infer", IdentityBody())->status, 200);
}

// The same with JSON tensors: ~12 M elements each (a 24-30 MB body, a 48-60 MB tensor).
TEST(LifecycleHttpTest, Issue19FourConcurrentLargeJsonTensorsDoNotKillTheStub) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo, {"--load-model", "identity", "--model-restart-max", "0"}));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  std::vector<std::thread> clients;
  std::vector<int> status(4, 0);
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      const size_t n = 12'000'000 + i * 1'000'000;
      std::string body = R"({"inputs":[{"name":"INPUT0","shape":[)" + std::to_string(n) +
                         R"(],"datatype":"INT32","data":[)";
      body.reserve(body.size() + 2 * n + 16);
      for (size_t k = 0; k < n; ++k) {
        body += static_cast<char>('0' + (k + i) % 10);
        if (k + 1 < n) body += ',';
      }
      body += R"(]}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]})";
      auto c = Http(server.http_port());
      auto r = c->Post("/v2/models/identity/infer", body);
      if (r.ok()) status[i] = r->status;
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(status[i] == 200 || status[i] == 429) << "request " << i << ": " << status[i];
  auto http = Http(server.http_port());
  EXPECT_EQ(StateOf(*http, "identity"), "READY") << IndexRow(*http, "identity").dump();
  EXPECT_EQ(server.Children(), stubs) << "the stub was replaced";
}

// Issue 19 item 5: a crashed stub never came back (in modes none and poll only a server
// restart helped). It is restarted after the backoff, with the index honest meanwhile.
int InferStatus(client::HttpClient& http, const std::string& model) {
  auto r = http.Post("/v2/models/" + model + "/infer", IdentityBody());
  return r.ok() ? r->status : -1;
}

TEST(LifecycleHttpTest, Issue19KilledStubIsRestartedAndServesAgain) {
  TestRepository repo;
  repo.Add("victim", IdentityConfig("victim"));
  ServerProcess server({"--model-repository", repo.path(), "--model-control-mode", "none",
                        "--model-restart-backoff-ms", "700"});
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  ASSERT_EQ(StateOf(*http, "victim"), "READY");
  auto before = server.Children();
  ASSERT_EQ(before.size(), 1u);
  const auto killed = Clock::now();
  kill(before[0], SIGKILL);
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 1s));
  auto row = IndexRow(*http, "victim");
  EXPECT_NE(row.value("reason", "").find("killed by signal 9"), std::string::npos) << row.dump();
  EXPECT_NE(row.value("reason", "").find("restart 1 of 5"), std::string::npos) << row.dump();
  EXPECT_EQ(InferStatus(*http, "victim"), 503);
  ASSERT_TRUE(WaitForState(*http, "victim", "READY", 15s)) << IndexRow(*http, "victim").dump();
  EXPECT_GE(Clock::now() - killed, 700ms);
  EXPECT_EQ(InferStatus(*http, "victim"), 200);
  auto after = server.Children();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
  EXPECT_FALSE(ProcessAlive(before[0]));
}

TEST(LifecycleHttpTest, Issue19HungStubIsKilledByTheHeartbeatAndRestarted) {
  TestRepository repo;
  repo.Add("victim", IdentityConfig("victim"));
  ServerProcess server(Explicit(repo, {"--load-model", "victim", "--stub-heartbeat-timeout-ms", "1000",
                                       "--model-restart-backoff-ms", "200"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto before = server.Children();
  ASSERT_EQ(before.size(), 1u);
  kill(before[0], SIGSTOP);
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 5s));
  EXPECT_NE(IndexRow(*http, "victim").value("reason", "").find("heartbeats"), std::string::npos)
      << IndexRow(*http, "victim").dump();
  ASSERT_TRUE(WaitForState(*http, "victim", "READY", 15s)) << IndexRow(*http, "victim").dump();
  EXPECT_EQ(InferStatus(*http, "victim"), 200);
  EXPECT_FALSE(ProcessAlive(before[0]));
}

TEST(LifecycleHttpTest, Issue19RestartLimitReachedStaysUnavailableWithTheReason) {
  TestRepository repo;
  repo.Add("victim", IdentityConfig("victim"));
  ServerProcess server(Explicit(repo, {"--load-model", "victim", "--model-restart-max", "1",
                                       "--model-restart-backoff-ms", "200"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto first = server.Children();
  ASSERT_EQ(first.size(), 1u);
  kill(first[0], SIGKILL);
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 1s));
  ASSERT_TRUE(WaitForState(*http, "victim", "READY", 15s));
  auto second = server.Children();
  ASSERT_EQ(second.size(), 1u);
  kill(second[0], SIGKILL);
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 1s));
  std::this_thread::sleep_for(1500ms);  // well past the backoff: no third stub
  auto row = IndexRow(*http, "victim");
  EXPECT_EQ(row.value("state", ""), "UNAVAILABLE");
  EXPECT_NE(row.value("reason", "").find("killed by signal 9"), std::string::npos) << row.dump();
  EXPECT_NE(row.value("reason", "").find("--model-restart-max 1"), std::string::npos) << row.dump();
  EXPECT_TRUE(server.Children().empty());
  EXPECT_EQ(InferStatus(*http, "victim"), 503);
  // An explicit load brings it back.
  ASSERT_EQ(Load(*http, "victim"), 200);
  EXPECT_EQ(InferStatus(*http, "victim"), 200);
}

TEST(LifecycleHttpTest, Issue19UnloadWhileRestartingLeavesNoStub) {
  TestRepository repo;
  repo.Add("victim", IdentityConfig("victim"));
  ServerProcess server(Explicit(repo, {"--load-model", "victim", "--model-restart-backoff-ms", "2000"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  kill(stubs[0], SIGKILL);
  ASSERT_TRUE(WaitForState(*http, "victim", "UNAVAILABLE", 1s));
  const auto start = Clock::now();
  ASSERT_EQ(Unload(*http, "victim"), 200);
  EXPECT_LT(Clock::now() - start, 1s);
  auto row = IndexRow(*http, "victim");
  EXPECT_EQ(row.value("state", ""), "UNAVAILABLE");
  EXPECT_EQ(row.value("reason", ""), "unloaded");
  std::this_thread::sleep_for(2500ms);  // past the backoff: nothing was restarted
  EXPECT_TRUE(server.Children().empty());
  EXPECT_EQ(StateOf(*http, "victim"), "UNAVAILABLE");
}

// Issue 19 item 7: a load override asking for 1024 instances started them all.
TEST(LifecycleHttpTest, Issue19LoadOverrideAskingTooManyInstancesIs400) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto r = http->Post(
      "/v2/repository/models/identity/load",
      R"({"parameters":{"config":"{\"name\":\"identity\",\"backend\":\"identity\",\"instance_group\":[{\"count\":1024,\"kind\":\"KIND_CPU\"}]}"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("1024"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("limit of 16"), std::string::npos) << r->body;
  EXPECT_TRUE(server.Children().empty());
  // Under the flag's limit it loads.
  ServerProcess wide(Explicit(repo, {"--model-instance-count-max", "2"}));
  ASSERT_TRUE(wide.started());
  auto http2 = Http(wide.http_port());
  r = http2->Post(
      "/v2/repository/models/identity/load",
      R"({"parameters":{"config":"{\"name\":\"identity\",\"backend\":\"identity\",\"instance_group\":[{\"count\":3,\"kind\":\"KIND_CPU\"}]}"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("limit of 2"), std::string::npos) << r->body;
  r = http2->Post(
      "/v2/repository/models/identity/load",
      R"({"parameters":{"config":"{\"name\":\"identity\",\"backend\":\"identity\",\"instance_group\":[{\"count\":2,\"kind\":\"KIND_CPU\"}]}"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(wide.Children().size(), 2u);
}

TEST(LifecycleHttpTest, ReloadWithInflightRequestsLosesNone) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Explicit(repo, {"--load-model", "repeat"}));
  ASSERT_TRUE(server.started());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop) {
        auto c = Http(server.http_port());
        auto r = c->Post("/v2/models/repeat/generate", RepeatBody(1, 100));
        if (r.ok() && r->status == 200) {
          ok++;
        } else {
          failed++;
          ADD_FAILURE() << (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString());
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  auto http = Http(server.http_port());
  ASSERT_EQ(Load(*http, "repeat"), 200);  // reload
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 10);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(StateOf(*http, "repeat"), "READY");
}

TEST(LifecycleHttpTest, FailedReloadKeepsTheOldVersionReady) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo, {"--load-model", "identity"}));
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  nlohmann::json bad_config = {{"name", "identity"}, {"backend", "no_such_backend"}};
  int status = Load(*http, "identity", nlohmann::json{{"parameters", {{"config", bad_config.dump()}}}}.dump());
  EXPECT_EQ(status, 400);
  EXPECT_EQ(StateOf(*http, "identity"), "READY");
  auto r = http->Post("/v2/models/identity/infer", IdentityBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(LifecycleHttpTest, EightThreadsLoadingAndUnloadingEndConsistent) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  ServerProcess server(Explicit(repo, {"--model-unload-grace-secs", "1", "--model-kill-timeout-secs", "1"}));
  ASSERT_TRUE(server.started());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto duration = std::chrono::seconds(30);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop) {
        auto c = Http(server.http_port());
        if (rng() % 2) {
          int s = Load(*c, "identity");
          EXPECT_TRUE(s == 200 || s == 400) << s;
        } else {
          EXPECT_EQ(Unload(*c, "identity", rng() % 3 ? "" : R"({"parameters":{"wait":false}})"), 200);
        }
        (void)c->Post("/v2/models/identity/infer", IdentityBody());
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& t : threads) t.join();
  auto http = Http(server.http_port());
  ASSERT_EQ(Unload(*http, "identity"), 200);
  EXPECT_TRUE(WaitForState(*http, "identity", "UNAVAILABLE", 5s));
  for (int i = 0; i < 100 && !server.Children().empty(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(server.Children().empty());
  ASSERT_EQ(Load(*http, "identity"), 200);
  EXPECT_EQ(server.Children().size(), 1u);
  auto r = http->Post("/v2/models/identity/infer", IdentityBody());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST(LifecycleHttpTest, PollModeSeesNewChangedAndDeletedModels) {
  TestRepository repo;
  repo.Add("a", IdentityConfig("a"));
  ServerProcess server({"--model-repository", repo.path(), "--model-control-mode", "poll",
                        "--repository-poll-secs", "1"});
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  EXPECT_EQ(StateOf(*http, "a"), "READY");
  auto a_stubs = server.Children();
  repo.Add("b", IdentityConfig("b"));
  EXPECT_TRUE(WaitForState(*http, "b", "READY", 5s));
  repo.Add("a", IdentityConfig("a", Param("changed", "yes")));
  EXPECT_TRUE(server.WaitForLog("poll: applying changes of model 'a'", 5s));
  EXPECT_TRUE(WaitForState(*http, "a", "READY", 5s));
  for (int i = 0; i < 100 && ProcessAlive(a_stubs[0]); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ProcessAlive(a_stubs[0])) << "the changed model was reloaded";
  repo.Remove("b");
  EXPECT_TRUE(WaitForState(*http, "b", "UNAVAILABLE", 5s) || IndexRow(*http, "b", "").is_null());
  // The load / unload API is Triton's refusal here: 503 with its words; nothing changes.
  for (const char* op : {"load", "unload"}) {
    auto r = http->Post(std::string("/v2/repository/models/a/") + op, "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 503) << op << ": " << r->body;
    EXPECT_NE(r->body.find("explicit model load / unload is not allowed if polling is enabled"),
              std::string::npos)
        << r->body;
  }
  EXPECT_EQ(StateOf(*http, "a"), "READY");
}

TEST(LifecycleHttpTest, SigtermLeavesNoChildAndExitsZero) {
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server({"--model-repository", repo.path(), "--exit-timeout-secs", "2",
                        "--model-unload-grace-secs", "1", "--model-kill-timeout-secs", "1"});
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  EXPECT_EQ(stubs.size(), 2u);
  server.Signal(SIGTERM);
  int status = server.WaitExit(10s);
  ASSERT_NE(status, -1) << "sluice did not exit";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (pid_t pid : stubs) EXPECT_FALSE(ProcessAlive(pid));
}

TEST(LifecycleHttpTest, KillNineOfTheServerLeavesNoStubAndNoSharedMemory) {
  auto shm_before = DevShmEntries();
  TestRepository repo;
  repo.Add("identity", IdentityConfig("identity"));
  repo.Add("repeat", RepeatConfig("repeat"));
  std::vector<pid_t> stubs;
  {
    ServerProcess server({"--model-repository", repo.path()});
    ASSERT_TRUE(server.started());
    stubs = server.Children();
    ASSERT_EQ(stubs.size(), 2u);
    // A large tensor through the shared-memory path first.
    auto http = Http(server.http_port());
    auto r = http->Post("/v2/models/identity/infer", IdentityBody(100000));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
    server.Signal(SIGKILL);
    server.WaitExit(5s);
  }
  auto deadline = Clock::now() + 10s;
  bool any_alive = true;
  while (any_alive && Clock::now() < deadline) {
    any_alive = false;
    for (pid_t pid : stubs) any_alive = any_alive || ProcessAlive(pid);
    if (any_alive) std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(any_alive);
  EXPECT_EQ(DevShmEntries(), shm_before);
}

}  // namespace
}  // namespace sluice::testing
