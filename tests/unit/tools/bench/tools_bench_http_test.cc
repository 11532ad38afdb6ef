// The bench's HTTP transport against the in-test server: OpenAI SSE with usage and [DONE],
// generate_stream deltas, in-band errors, a stream without [DONE], an error status.
#include <gtest/gtest.h>

#include <thread>

#include "support/tools_test_server.h"
#include "tools/bench/http_transport.h"

namespace sluice::bench {
namespace {

using namespace sluice::client::testing;
using tcp = boost::asio::ip::tcp;

std::string SseHead() {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
}

void Event(tcp::socket& s, const std::string& data, int sleep_ms = 3) {
  WriteRaw(s, Chunk("data: " + data + "\n\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
}

RequestResult SendOne(const client::Endpoint& ep, Api api) {
  HttpTransportConfig cfg;
  cfg.api = api;
  cfg.endpoint = ep;
  cfg.model = "m";
  cfg.keep_text = true;
  auto transport = MakeHttpTransport(cfg);
  return transport->Send({"a b c", 3, 4}, Clock::now());
}

TEST(BenchHttpTest, ChatStreamWithUsageAndDone) {
  TestServer server([](const Req& req, tcp::socket& s) {
    auto body = nlohmann::json::parse(req.body());
    EXPECT_EQ(std::string(req.target()), "/v1/chat/completions");
    EXPECT_EQ(body["max_tokens"], 4);
    WriteRaw(s, SseHead());
    Event(s, R"({"choices":[{"delta":{"role":"assistant","content":""}}]})");
    for (const char* t : {"A", "B", "C"}) {
      Event(s, std::string(R"({"choices":[{"delta":{"content":")") + t + R"("}}]})", 10);
    }
    Event(s, R"({"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":4}})");
    Event(s, "[DONE]");
    WriteRaw(s, "0\r\n\r\n");
    return true;
  });
  RequestResult r = SendOne(server.endpoint(), Api::kChat);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.generated_text, "ABC");
  EXPECT_EQ(r.output_tokens, 4);  // usage wins over the 3 chunks
  EXPECT_EQ(r.prompt_tokens, 11);
  ASSERT_EQ(r.itl_s.size(), 2u);
  // No lower bound from the server's 10 ms pauses: a starved client may read events late
  // and together.
  EXPECT_GT(r.itl_s[0], 0.0);
  EXPECT_GT(r.latency_s, r.ttft_s);
}

TEST(BenchHttpTest, GenerateStreamCountsChunks) {
  TestServer server([](const Req& req, tcp::socket& s) {
    EXPECT_EQ(std::string(req.target()), "/v2/models/m/generate_stream");
    WriteRaw(s, SseHead());
    for (int i = 0; i < 4; ++i) Event(s, R"({"model_name":"m","text_output":"x"})");
    WriteRaw(s, "0\r\n\r\n");
    return true;
  });
  RequestResult r = SendOne(server.endpoint(), Api::kGenerateStream);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output_tokens, 4);
  EXPECT_FALSE(r.tokens_from_usage);
  EXPECT_EQ(r.itl_s.size(), 3u);
}

// --raw-body: the body goes out verbatim (no prompt, no sampling parameters) and every
// streamed response counts as one token, text or not (the repeat model's IN/DELAY/WAIT).
TEST(BenchHttpTest, RawBodyIsSentVerbatimAndEachResponseCounts) {
  const std::string raw = R"({"DELAY":[0,0,0],"IN":[1,2,3],"WAIT":[0]})";
  TestServer server([&](const Req& req, tcp::socket& s) {
    EXPECT_EQ(std::string(req.target()), "/v2/models/repeat/generate_stream");
    EXPECT_EQ(nlohmann::json::parse(req.body()), nlohmann::json::parse(raw));
    WriteRaw(s, SseHead());
    for (int i = 0; i < 3; ++i) Event(s, R"({"model_name":"repeat","OUT":[)" + std::to_string(i) + "]}");
    WriteRaw(s, "0\r\n\r\n");
    return true;
  });
  HttpTransportConfig cfg;
  cfg.api = Api::kGenerateStream;
  cfg.endpoint = server.endpoint();
  cfg.model = "repeat";
  cfg.sampling.raw_body = nlohmann::json::parse(raw);
  RequestResult r = MakeHttpTransport(cfg)->Send({"unused prompt", 2, 4}, Clock::now());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.itl_s.size(), 2u);
}

TEST(BenchHttpTest, InBandErrorFailsTheRequest) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, SseHead());
    Event(s, R"({"text_output":"x"})");
    Event(s, R"({"error":"model 'm' is unloading"})");
    WriteRaw(s, "0\r\n\r\n");
    return true;
  });
  RequestResult r = SendOne(server.endpoint(), Api::kGenerateStream);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "model 'm' is unloading");
}

TEST(BenchHttpTest, OpenAiStreamWithoutDoneFails) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, SseHead());
    Event(s, R"({"choices":[{"text":"x"}]})");
    WriteRaw(s, "0\r\n\r\n");
    return true;
  });
  RequestResult r = SendOne(server.endpoint(), Api::kCompletions);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("[DONE]"), std::string::npos) << r.error;
}

TEST(BenchHttpTest, ErrorStatusCarriesTheServerMessage) {
  TestServer server([](const Req&, tcp::socket& s) {
    std::string body = R"({"error":"unknown model 'm'"})";
    WriteRaw(s, "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body);
    return true;
  });
  RequestResult r = SendOne(server.endpoint(), Api::kChat);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "HTTP 404: unknown model 'm'");
}

}  // namespace
}  // namespace sluice::bench
