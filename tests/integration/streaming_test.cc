// Issue 3 through the real server, for gRPC streams (a client generated from the repo's
// proto), SSE (generate_stream) and non-streaming requests: streams complete in order with
// exactly one final flag, unload with open streams ends every stream, a backend that hangs
// in finalize cannot pin the model, a disconnect cancels promptly, a killed stub ends its
// streams, and 100 load/stream/unload cycles leak nothing.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <sys/wait.h>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"
#include "tools/client/grpc/stream_infer_client.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

json RepeatInputs(int count, int delay_ms) {
  json in = json::array(), delay = json::array();
  for (int i = 0; i < count; ++i) {
    in.push_back(i);
    delay.push_back(delay_ms);
  }
  return json{{"inputs",
               {{{"name", "IN"}, {"datatype", "INT32"}, {"shape", {count}}, {"data", in}},
                {{"name", "DELAY"}, {"datatype", "UINT32"}, {"shape", {count}}, {"data", delay}},
                {{"name", "WAIT"}, {"datatype", "UINT32"}, {"shape", {1}}, {"data", {0}}}}},
              {"parameters", {{"triton_enable_empty_final_response", true}}}};
}

// What one stream saw.
struct StreamResult {
  std::vector<int> idx;  // IDX of each response, in arrival order
  int finals = 0;
  bool error = false;    // an error event / error_message
  bool ended = false;    // the stream ended (a final event or the stream closed cleanly)
};

StreamResult RunGrpcStream(int port, const std::string& model, int count, int delay_ms) {
  StreamResult r;
  auto client = client::StreamInferClient::Open(client::MakeChannel("127.0.0.1:" + std::to_string(port)));
  if (!client.ok()) return r;
  auto req = client::RequestFromJson(model, RepeatInputs(count, delay_ms));
  if (!req.ok() || !(*client)->Write(*req).ok()) return r;
  for (;;) {
    auto resp = (*client)->Read();
    if (!resp.ok() || !*resp) break;
    if (!(*resp)->error_message().empty()) {
      r.error = true;
      r.ended = true;
      break;
    }
    const auto& infer = (*resp)->infer_response();
    auto outputs = client::OutputsToJson(infer);
    if (outputs.ok() && outputs->contains("IDX")) r.idx.push_back((*outputs)["IDX"].is_array() ? (*outputs)["IDX"][0].get<int>() : (*outputs)["IDX"].get<int>());
    if (client::IsFinalResponse(infer)) {
      r.finals++;
      r.ended = true;
      break;
    }
  }
  (*client)->WritesDone();
  (*client)->Cancel();
  (*client)->Finish();
  return r;
}

StreamResult RunSseStream(int port, const std::string& model, int count, int delay_ms) {
  StreamResult r;
  auto http = Http(port);
  auto sse = http->PostSse("/v2/models/" + model + "/generate_stream", RepeatBody(count, delay_ms));
  if (!sse.ok()) return r;
  if ((*sse)->status() != 200) {
    r.error = r.ended = true;
    return r;
  }
  for (;;) {
    auto ev = (*sse)->Next();
    if (!ev.ok()) return r;  // broken without a final event
    if (!*ev) {
      r.ended = true;  // the chunked reply ended: the final event was sent
      r.finals++;
      return r;
    }
    auto j = json::parse((*ev)->data, nullptr, false);
    if (j.contains("error")) r.error = true;
    if (j.contains("IDX")) r.idx.push_back(j["IDX"].is_array() ? j["IDX"][0].get<int>() : j["IDX"].get<int>());
  }
}

std::vector<std::string> Args(const TestRepository& repo, int grace = 1, int kill = 2) {
  return {"--model-repository", repo.path(), "--model-control-mode", "explicit", "--load-model", "repeat",
          "--model-unload-grace-secs", std::to_string(grace), "--model-kill-timeout-secs", std::to_string(kill)};
}

bool WaitGone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    bool any = false;
    for (pid_t p : pids) any = any || ProcessAlive(p);
    if (!any) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

TEST(StreamingTest, StreamsCompleteInOrderWithOneFinalThenUnloadEndsTheStub) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Args(repo));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  std::vector<std::thread> threads;
  std::vector<StreamResult> results(6);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { results[i] = RunGrpcStream(server.grpc_port(), "repeat", 5 + i, 10); });
    threads.emplace_back([&, i] { results[3 + i] = RunSseStream(server.http_port(), "repeat", 5 + i, 10); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; ++i) {
    const int n = 5 + (i % 3);
    std::vector<int> expected(n);
    for (int k = 0; k < n; ++k) expected[k] = k;
    EXPECT_EQ(results[i].idx, expected) << "stream " << i;
    EXPECT_EQ(results[i].finals, 1) << "stream " << i;
    EXPECT_FALSE(results[i].error);
  }
  auto http = Http(server.http_port());
  auto r = http->Post("/v2/models/repeat/generate", RepeatBody(1, 0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  r = http->Post("/v2/models/repeat/infer", RepeatInputs(1, 0).dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 501) << "infer on a decoupled model: " << r->body;
  ASSERT_EQ(Unload(*http, "repeat"), 200);
  EXPECT_EQ(StateOf(*http, "repeat"), "UNAVAILABLE");
  EXPECT_TRUE(WaitGone(stubs, 2s));
}

TEST(StreamingTest, UnloadWithTenOpenStreamsGivesEveryStreamAFinalEvent) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Args(repo, 1, 2));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  std::vector<std::thread> threads;
  std::vector<StreamResult> results(10);
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] { results[i] = RunGrpcStream(server.grpc_port(), "repeat", 200, 100); });
    threads.emplace_back([&, i] { results[5 + i] = RunSseStream(server.http_port(), "repeat", 200, 100); });
  }
  std::this_thread::sleep_for(500ms);
  auto http = Http(server.http_port());
  auto start = Clock::now();
  ASSERT_EQ(Unload(*http, "repeat"), 200);
  EXPECT_LT(Clock::now() - start, 1s + 2s + 500ms);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(results[i].ended) << "stream " << i << " got no final event";
    EXPECT_TRUE(results[i].error) << "stream " << i << " was cancelled by the unload: an error event";
    EXPECT_GT(results[i].idx.size(), 0u);
  }
  EXPECT_EQ(StateOf(*http, "repeat"), "UNAVAILABLE");
  EXPECT_TRUE(WaitGone(stubs, 1s));
}

TEST(StreamingTest, HangInFinalizeCannotPinTheModel) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat", Param("hang_in_finalize", "true")));
  ServerProcess server(Args(repo, 1, 2));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  StreamResult s = RunGrpcStream(server.grpc_port(), "repeat", 3, 10);
  EXPECT_EQ(s.finals, 1);
  auto http = Http(server.http_port());
  auto start = Clock::now();
  ASSERT_EQ(Unload(*http, "repeat"), 200);
  EXPECT_LT(Clock::now() - start, 1s + 2s + 500ms);
  EXPECT_EQ(StateOf(*http, "repeat"), "UNAVAILABLE");
  EXPECT_TRUE(WaitGone(stubs, 500ms));
}

TEST(StreamingTest, ClientDisconnectIsSeenByTheBackendWithin100ms) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Args(repo));
  ASSERT_TRUE(server.started());
  auto cancels = [&] {
    auto r = Http(server.http_port())->Get("/v2/models/repeat/stats");
    if (!r.ok() || r->status != 200) return -1;
    auto j = json::parse(r->body);
    return j["model_stats"][0]["inference_stats"]["cancel"].value("count", 0);
  };
  ASSERT_EQ(cancels(), 0);
  auto http = Http(server.http_port());
  auto sse = http->PostSse("/v2/models/repeat/generate_stream", RepeatBody(100, 50));
  ASSERT_TRUE(sse.ok());
  auto first = (*sse)->Next();
  ASSERT_TRUE(first.ok() && *first);
  auto start = Clock::now();
  (*sse)->Close();
  while (cancels() < 1 && Clock::now() - start < 2s) std::this_thread::sleep_for(2ms);
  auto took = Clock::now() - start;
  EXPECT_EQ(cancels(), 1);
  EXPECT_LT(took, 100ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

TEST(StreamingTest, KilledStubEndsEveryOpenStreamWithAnErrorWithinASecond) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Args(repo));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  std::vector<std::thread> threads;
  std::vector<StreamResult> results(4);
  std::vector<Clock::time_point> ended(4);
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      results[i] = RunGrpcStream(server.grpc_port(), "repeat", 200, 50);
      ended[i] = Clock::now();
    });
    threads.emplace_back([&, i] {
      results[2 + i] = RunSseStream(server.http_port(), "repeat", 200, 50);
      ended[2 + i] = Clock::now();
    });
  }
  std::this_thread::sleep_for(400ms);
  auto killed = Clock::now();
  kill(stubs[0], SIGKILL);
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(results[i].ended && results[i].error) << "stream " << i;
    EXPECT_LT(ended[i] - killed, 1s) << "stream " << i;
  }
  auto http = Http(server.http_port());
  EXPECT_TRUE(WaitForState(*http, "repeat", "UNAVAILABLE", 1s));
  EXPECT_NE(IndexRow(*http, "repeat").value("reason", "").find("signal 9"), std::string::npos);
}

TEST(StreamingTest, HundredLoadStreamUnloadCyclesLeakNothing) {
  auto shm_before = DevShmEntries();
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server({"--model-repository", repo.path(), "--model-control-mode", "explicit"});
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  int fds_after_warmup = 0;
  for (int cycle = 0; cycle < 100; ++cycle) {
    ASSERT_EQ(Load(*http, "repeat"), 200) << "cycle " << cycle;
    StreamResult g = RunGrpcStream(server.grpc_port(), "repeat", 2, 0);
    StreamResult s = RunSseStream(server.http_port(), "repeat", 2, 0);
    EXPECT_EQ(g.finals, 1);
    EXPECT_EQ(s.finals, 1);
    ASSERT_EQ(Unload(*http, "repeat"), 200);
    if (cycle == 9) fds_after_warmup = OpenFdCount(server.pid());
  }
  EXPECT_TRUE(server.Children().empty());
  EXPECT_EQ(DevShmEntries(), shm_before);
  EXPECT_LE(OpenFdCount(server.pid()), fds_after_warmup + 4) << "descriptors grow with cycles";
}

// sluice-bench's --raw-body drives the repeat model (the streaming-overhead benchmark):
// every response of every stream is counted, through SSE and through gRPC.
TEST(StreamingTest, SluiceBenchRawBodyCountsEveryRepeatResponse) {
  TestRepository repo;
  repo.Add("repeat", RepeatConfig("repeat"));
  ServerProcess server(Args(repo));
  ASSERT_TRUE(server.started());
  const std::string http_body = R"({"IN":[1,2,3,4,5],"DELAY":[0,0,0,0,0],"WAIT":[0]})";
  const std::string grpc_body =
      R"({"inputs":[{"name":"IN","datatype":"INT32","shape":[5],"data":[1,2,3,4,5]},)"
      R"({"name":"DELAY","datatype":"UINT32","shape":[5],"data":[0,0,0,0,0]},)"
      R"({"name":"WAIT","datatype":"UINT32","shape":[1],"data":[0]}]})";
  for (const auto& [api, body] : {std::pair<std::string, std::string>{"generate_stream", http_body},
                                  {"grpc", grpc_body}}) {
    TempDir dir;
    const std::string report = dir.path() + "/report.json";
    const std::string cmd = std::string(SLUICE_BINARY_DIR) + "/src/tools/sluice-bench --url http://127.0.0.1:" +
                            std::to_string(server.http_port()) + " --grpc-url 127.0.0.1:" +
                            std::to_string(server.grpc_port()) + " -m repeat --api " + api +
                            " -n 8 -c 4 --no-progress --json " + report + " --raw-body '" + body +
                            "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << api;
    std::ifstream in(report);
    auto j = nlohmann::json::parse(in, nullptr, false);
    ASSERT_TRUE(j.is_object()) << api;
    EXPECT_EQ(j["completed"], 8) << api;
    EXPECT_EQ(j["failed"], 0) << api;
    EXPECT_EQ(j["total_output_tokens"], 8 * 5) << api;
  }
  // A raw body that is not JSON is a usage error (exit status 2), not a run.
  const std::string bad = std::string(SLUICE_BINARY_DIR) + "/src/tools/sluice-bench -m repeat --raw-body '{' > /dev/null 2>&1";
  const int status = std::system(bad.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

}  // namespace
}  // namespace sluice::testing
