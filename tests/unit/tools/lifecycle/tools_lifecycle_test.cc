// sluice-lifecycle's logic: index reading, the GPU verdict over NVML snapshots, the report,
// and the whole procedure over HTTP against a fake Triton (asynchronous unload, SSE streams)
// that either behaves or keeps the model UNLOADING forever.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "support/tools_test_server.h"
#include "tools/lifecycle/checker.h"
#include "tools/lifecycle/gpu_check.h"
#include "tools/lifecycle/lifecycle_report.h"

namespace sluice::lifecycle {
namespace {

using namespace sluice::client::testing;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

TEST(IndexTest, StatesFromTritonIndex) {
  auto index = nlohmann::json::parse(R"([
    {"name": "other", "version": "1", "state": "READY"},
    {"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
    {"name": "m", "version": "2", "state": "READY"}])");
  auto e = ModelStateFromIndex(index, "m", "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->state, IndexState::kReady);
  EXPECT_EQ(e->version, "2");
  e = ModelStateFromIndex(index, "m", "1");
  EXPECT_EQ(e->state, IndexState::kUnavailable);
  EXPECT_EQ(e->reason, "unloaded");
  e = ModelStateFromIndex(index, "absent", "");
  EXPECT_EQ(e->state, IndexState::kAbsent);
  auto moving = nlohmann::json::parse(R"([{"name": "m", "version": "1", "state": "UNLOADING"}])");
  EXPECT_EQ(ModelStateFromIndex(moving, "m", "")->state, IndexState::kTransitioning);
  // Never loaded: listed without version or state.
  auto listed = nlohmann::json::parse(R"([{"name": "m"}])");
  EXPECT_EQ(ModelStateFromIndex(listed, "m", "")->state, IndexState::kUnavailable);
  EXPECT_FALSE(ModelStateFromIndex(nlohmann::json::object(), "m", "").ok());
}

GpuSnapshot Snap(uint64_t used, std::map<pid_t, uint64_t> procs) {
  GpuSnapshot s;
  s.available = true;
  s.used_bytes = used;
  s.process_bytes = std::move(procs);
  return s;
}

constexpr uint64_t kMiB = 1 << 20;

TEST(GpuCheckTest, ReleasedMemoryPasses) {
  auto before = Snap(500 * kMiB, {{10, 300 * kMiB}});
  auto ready = Snap(2548 * kMiB, {{10, 300 * kMiB}, {42, 2048 * kMiB}});
  auto after = Snap(510 * kMiB, {{10, 300 * kMiB}});
  GpuRelease r = EvaluateGpuRelease(before, ready, after, 64 * kMiB);
  EXPECT_EQ(r.verdict, Verdict::kPass) << r.detail;
  EXPECT_EQ(r.held_while_ready_bytes, static_cast<int64_t>(2048 * kMiB));
  EXPECT_EQ(r.model_pids, std::vector<pid_t>{42});
  EXPECT_TRUE(r.lingering_pids.empty());
  EXPECT_NE(r.detail.find("2048.0 MiB"), std::string::npos) << r.detail;
}

TEST(GpuCheckTest, LingeringStubOrLeftoverMemoryFails) {
  auto before = Snap(500 * kMiB, {});
  auto ready = Snap(2548 * kMiB, {{42, 2048 * kMiB}});
  // The stub still holds its memory (Triton 24.07's bug).
  GpuRelease stuck = EvaluateGpuRelease(before, ready, ready, 64 * kMiB);
  EXPECT_EQ(stuck.verdict, Verdict::kFail);
  EXPECT_EQ(stuck.lingering_pids, std::vector<pid_t>{42});
  // The pid is gone but the memory is not back (a leak elsewhere).
  GpuRelease leak = EvaluateGpuRelease(before, ready, Snap(1000 * kMiB, {}), 64 * kMiB);
  EXPECT_EQ(leak.verdict, Verdict::kFail);
  EXPECT_TRUE(leak.lingering_pids.empty());
  // Within tolerance passes.
  EXPECT_EQ(EvaluateGpuRelease(before, ready, Snap(550 * kMiB, {}), 64 * kMiB).verdict,
            Verdict::kPass);
}

TEST(GpuCheckTest, NoGpuIsSkipped) {
  GpuSnapshot none;
  GpuRelease r = EvaluateGpuRelease(none, none, none, 0);
  EXPECT_EQ(r.verdict, Verdict::kSkip);
  EXPECT_EQ(r.detail, "skipped: no GPU");
  auto s = TakeGpuSnapshot(nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->available);
}

TEST(NvmlTest, LoadIsNullWithoutAGpuOrWorksWithOne) {
  auto nvml = nvml::Nvml::Load();
  if (!nvml) GTEST_SKIP() << "no NVML on this machine";
  auto gpus = nvml->Gpus();
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_FALSE(gpus->empty());
  EXPECT_GT((*gpus)[0].memory_total_bytes, 0u);
  EXPECT_FALSE((*gpus)[0].uuid.empty());
  ASSERT_TRUE(nvml->ComputeProcesses(0).ok());
  EXPECT_EQ(nvml->ProcessMemoryBytes(getpid()), 0u);  // this test holds no device memory
}

TEST(ReportTest, FailureMakesTheReportFail) {
  LifecycleReport r;
  r.model = "m";
  r.server = "127.0.0.1:8000";
  r.Add("load", Verdict::kPass, 12.5, "READY");
  r.Add("gpu memory released", Verdict::kSkip, 0, "skipped: no GPU");
  EXPECT_TRUE(r.ok());
  r.Add("unload", Verdict::kFail, 60000, "still UNLOADING");
  EXPECT_FALSE(r.ok());
  nlohmann::json j = ReportJson(r);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["steps"].size(), 3u);
  EXPECT_EQ(j["steps"][2]["verdict"], "FAIL");
  EXPECT_EQ(j["steps"][0]["ms"], 12.5);
  std::string text = FormatReport(r);
  EXPECT_NE(text.find("SKIP"), std::string::npos);
  EXPECT_NE(text.find("RESULT: FAIL"), std::string::npos);
}

TEST(PresetTest, PresetsFillEveryBody) {
  for (const char* p : {"repeat", "llm"}) {
    CheckerConfig c;
    ASSERT_TRUE(ApplyPreset(p, &c).ok());
    EXPECT_TRUE(c.stream_body.is_object()) << p;
    EXPECT_TRUE(c.grpc_body["inputs"].is_array()) << p;
    EXPECT_TRUE(c.infer_body.is_object()) << p;
  }
  CheckerConfig c;
  EXPECT_FALSE(ApplyPreset("bert", &c).ok());
}

// A fake Triton: load is synchronous, unload returns at once and the index shows UNLOADING
// for a few polls (or forever when `stuck`), generate_stream sends twenty events 30 ms
// apart (long enough that a disconnect is seen mid-stream even on a loaded machine).
class FakeTriton {
 public:
  explicit FakeTriton(bool stuck) : stuck_(stuck), server_([this](const Req& r, tcp::socket& s) {
                                      return Handle(r, s);
                                    }) {}
  client::Endpoint endpoint() const { return server_.endpoint(); }
  int disconnects() const { return disconnects_; }

 private:
  static void Reply(tcp::socket& s, int status, const std::string& body) {
    WriteRaw(s, "HTTP/1.1 " + std::to_string(status) +
                    " X\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  bool Handle(const Req& req, tcp::socket& s) {
    std::string target(req.target());
    std::unique_lock<std::mutex> lock(mu_);
    if (target == "/v2/repository/models/m/load") {
      state_ = "READY";
      reason_.clear();
      Reply(s, 200, "{}");
    } else if (target == "/v2/repository/models/m/unload") {
      state_ = "UNLOADING";
      polls_left_ = 3;
      Reply(s, 200, "{}");
    } else if (target == "/v2/repository/index") {
      if (state_ == "UNLOADING" && !stuck_ && polls_left_-- <= 0) {
        state_ = "UNAVAILABLE";
        reason_ = "unloaded";
      }
      nlohmann::json e = {{"name", "m"}, {"version", "1"}, {"state", state_}};
      if (!reason_.empty()) e["reason"] = reason_;
      Reply(s, 200, nlohmann::json::array({e}).dump());
    } else if (target == "/v2/models/m/generate") {
      if (state_ != "READY") {
        Reply(s, 400, R"({"error":"model 'm' is not ready"})");
      } else {
        Reply(s, 200, R"({"model_name":"m","text_output":"hi"})");
      }
    } else if (target == "/v2/models/m/generate_stream") {
      lock.unlock();
      WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 20; ++i) {
        boost::beast::error_code ec;
        std::string chunk = Chunk("data: {\"text_output\":\"t" + std::to_string(i) + "\"}\n\n");
        boost::asio::write(s, boost::asio::buffer(chunk), ec);
        if (ec) {
          disconnects_++;
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      }
      WriteRaw(s, "0\r\n\r\n");
    } else {
      Reply(s, 404, R"({"error":"not found"})");
    }
    return true;
  }

  const bool stuck_;
  std::mutex mu_;
  std::string state_ = "UNAVAILABLE";
  std::string reason_;
  int polls_left_ = 0;
  std::atomic<int> disconnects_{0};
  TestServer server_;  // last: its threads stop before the members above go away
};

CheckerConfig FakeConfig(const client::Endpoint& ep) {
  CheckerConfig c;
  EXPECT_TRUE(ApplyPreset("llm", &c).ok());
  c.http = ep;
  c.grpc_target = "";  // HTTP only
  c.model = "m";
  c.streams = 2;
  c.requests = 2;
  c.unload_timeout = std::chrono::milliseconds(1500);
  c.poll_interval = std::chrono::milliseconds(20);
  return c;
}

const StepResult* Step(const LifecycleReport& r, const std::string& name) {
  for (const auto& s : r.steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(LifecycleTest, WellBehavedServerPassesEveryStep) {
  FakeTriton triton(/*stuck=*/false);
  LifecycleReport r = RunLifecycle(FakeConfig(triton.endpoint()), nullptr);
  std::string text = FormatReport(r);
  EXPECT_TRUE(r.ok()) << text;
  for (const char* name : {"load", "streams (generate_stream)", "disconnect mid-stream (http)",
                           "requests (generate)", "unload", "reload", "request after reload"}) {
    const StepResult* s = Step(r, name);
    ASSERT_NE(s, nullptr) << name << "\n" << text;
    EXPECT_EQ(s->verdict, Verdict::kPass) << name << "\n" << text;
  }
  EXPECT_EQ(Step(r, "gpu memory released")->verdict, Verdict::kSkip);
  EXPECT_EQ(Step(r, "cancel mid-stream (grpc)")->verdict, Verdict::kSkip);
  EXPECT_NE(Step(r, "unload")->detail.find("unloaded"), std::string::npos);
  EXPECT_EQ(Step(r, "streams (generate_stream)")->detail.substr(0, 13), "2/2 completed");
  // The server saw the disconnected stream go away before its last event.
  for (int i = 0; i < 300 && triton.disconnects() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(triton.disconnects(), 1);
}

TEST(LifecycleTest, ModelStuckUnloadingFails) {
  FakeTriton triton(/*stuck=*/true);
  auto start = std::chrono::steady_clock::now();
  LifecycleReport r = RunLifecycle(FakeConfig(triton.endpoint()), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(r.ok());
  const StepResult* unload = Step(r, "unload");
  ASSERT_NE(unload, nullptr);
  EXPECT_EQ(unload->verdict, Verdict::kFail);
  EXPECT_NE(unload->detail.find("still UNLOADING"), std::string::npos) << unload->detail;
  EXPECT_GE(unload->ms, 1500);
}

TEST(LifecycleTest, UnreachableServerFailsAtLoad) {
  CheckerConfig c = FakeConfig({"127.0.0.1", 1});
  LifecycleReport r = RunLifecycle(c, nullptr);
  EXPECT_FALSE(r.ok());
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps[0].name, "load");
  EXPECT_EQ(r.steps[0].verdict, Verdict::kFail);
}

}  // namespace
}  // namespace sluice::lifecycle
