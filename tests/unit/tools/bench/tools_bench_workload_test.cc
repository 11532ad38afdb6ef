// The bench's inputs and plumbing: synthetic and JSONL workloads, request bodies and chunk
// parsing per API, and the runner's concurrency bound and warm-up, with a fake transport.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "tools/bench/api.h"
#include "tools/bench/progress.h"
#include "tools/bench/runner.h"
#include "tools/bench/workload.h"

namespace sluice::bench {
namespace {

TEST(WorkloadTest, SharedPrefixStartsEveryPromptAndTheRestDiffers) {
  SyntheticSpec spec;
  spec.input_len = 12;
  spec.output_len = 4;
  spec.shared_prefix_len = 40;
  auto r = MakeSyntheticRequests(spec, 10);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string& first = (*r)[0].prompt;
  size_t cut = 0;
  for (int w = 0; w < 40; ++w) cut = first.find(' ', cut) + 1;
  const std::string prefix = first.substr(0, cut);
  std::set<std::string> rest;
  for (const auto& q : *r) {
    EXPECT_EQ(q.prompt_tokens, 52);
    EXPECT_EQ(CountWords(q.prompt), 52);
    EXPECT_EQ(q.prompt.compare(0, prefix.size(), prefix), 0) << q.prompt;
    rest.insert(q.prompt.substr(prefix.size()));
  }
  EXPECT_EQ(rest.size(), 10u);
  spec.shared_prefix_len = -1;
  EXPECT_FALSE(MakeSyntheticRequests(spec, 1).ok());
}

TEST(WorkloadTest, FixedLengthsGiveExactWordCounts) {
  SyntheticSpec spec;
  spec.input_len = 17;
  spec.output_len = 9;
  auto r = MakeSyntheticRequests(spec, 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 20u);
  std::set<std::string> distinct;
  for (const auto& q : *r) {
    EXPECT_EQ(q.prompt_tokens, 17);
    EXPECT_EQ(CountWords(q.prompt), 17);
    EXPECT_EQ(q.max_tokens, 9);
    distinct.insert(q.prompt);
  }
  EXPECT_GT(distinct.size(), 15u);
}

TEST(WorkloadTest, UniformAndNormalStayInRangeAndCentre) {
  SyntheticSpec spec;
  spec.input_len = 100;
  spec.output_len = 50;
  spec.distribution = LengthDistribution::kUniform;
  spec.range_ratio = 0.5;
  auto r = MakeSyntheticRequests(spec, 2000);
  ASSERT_TRUE(r.ok());
  double sum = 0;
  int64_t lo = 1 << 30, hi = 0;
  for (const auto& q : *r) {
    lo = std::min(lo, q.prompt_tokens);
    hi = std::max(hi, q.prompt_tokens);
    sum += static_cast<double>(q.prompt_tokens);
    ASSERT_GE(q.max_tokens, 25);
    ASSERT_LE(q.max_tokens, 75);
  }
  EXPECT_GE(lo, 50);
  EXPECT_LE(hi, 150);
  EXPECT_LT(lo, 55);   // the range is actually used
  EXPECT_GT(hi, 145);
  EXPECT_NEAR(sum / 2000, 100, 3);

  spec.distribution = LengthDistribution::kNormal;
  spec.stddev_ratio = 0.1;
  auto n = MakeSyntheticRequests(spec, 2000);
  ASSERT_TRUE(n.ok());
  double s = 0, sq = 0;
  for (const auto& q : *n) s += static_cast<double>(q.prompt_tokens);
  double mean = s / 2000;
  for (const auto& q : *n) sq += (q.prompt_tokens - mean) * (q.prompt_tokens - mean);
  EXPECT_NEAR(mean, 100, 1.5);
  EXPECT_NEAR(std::sqrt(sq / 2000), 10, 1.5);
}

TEST(WorkloadTest, BadSpecsAreRefused) {
  SyntheticSpec spec;
  spec.input_len = 0;
  EXPECT_FALSE(MakeSyntheticRequests(spec, 1).ok());
  spec.input_len = 10;
  spec.range_ratio = 1.5;
  EXPECT_FALSE(MakeSyntheticRequests(spec, 1).ok());
  EXPECT_FALSE(ParseLengthDistribution("zipf").ok());
}

TEST(WorkloadTest, JsonlPromptsParseAndErrorsNameTheLine) {
  auto r = ParseJsonlRequests(
      "{\"prompt\": \"hello there world\", \"max_tokens\": 7}\n\n"
      "{\"prompt\": \"one\"}\r\n",
      32);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].max_tokens, 7);
  EXPECT_EQ((*r)[0].prompt_tokens, 3);
  EXPECT_EQ((*r)[1].max_tokens, 32);
  auto bad = ParseJsonlRequests("{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n", 8);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseJsonlRequests("{\"prompt\": \"a\", \"max_tokens\": -1}", 8).ok());
  EXPECT_FALSE(ParseJsonlRequests("not json", 8).ok());
  EXPECT_FALSE(ParseJsonlRequests("", 8).ok());
  EXPECT_FALSE(ParseJsonlRequests("{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}", 8, 1).ok());
}

TEST(ApiTest, BodiesCarryOslControls) {
  BenchRequest req{"a b c", 3, 16};
  SamplingOptions opt;
  auto chat = nlohmann::json::parse(BuildRequestBody(Api::kChat, "qwen", req, opt));
  EXPECT_EQ(chat["model"], "qwen");
  EXPECT_EQ(chat["messages"][0]["content"], "a b c");
  EXPECT_EQ(chat["max_tokens"], 16);
  EXPECT_EQ(chat["min_tokens"], 16);
  EXPECT_EQ(chat["ignore_eos"], true);
  EXPECT_EQ(chat["stream"], true);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
  auto comp = nlohmann::json::parse(BuildRequestBody(Api::kCompletions, "qwen", req, opt));
  EXPECT_EQ(comp["prompt"], "a b c");
  auto gen = nlohmann::json::parse(BuildRequestBody(Api::kGenerateStream, "qwen", req, opt));
  EXPECT_EQ(gen["text_input"], "a b c");
  EXPECT_EQ(gen["parameters"]["max_tokens"], 16);
  EXPECT_EQ(gen["parameters"]["stream"], true);
  EXPECT_EQ(RequestPath(Api::kGenerateStream, "qwen"), "/v2/models/qwen/generate_stream");
  opt.ignore_eos = false;
  opt.send_min_tokens = false;
  opt.stream = false;
  opt.extra = {{"top_k", 5}};
  auto plain = nlohmann::json::parse(BuildRequestBody(Api::kCompletions, "m", req, opt));
  EXPECT_FALSE(plain.contains("ignore_eos"));
  EXPECT_FALSE(plain.contains("min_tokens"));
  EXPECT_FALSE(plain.contains("stream_options"));
  EXPECT_EQ(plain["top_k"], 5);
  EXPECT_FALSE(IsStreaming(Api::kCompletions, false));
  EXPECT_TRUE(IsStreaming(Api::kGrpcStream, false));
}

TEST(ApiTest, ChunksParseTextUsageDoneAndErrors) {
  ChunkInfo c = ParseChunk(Api::kChat, R"({"choices":[{"delta":{"content":"Hi"}}]})");
  EXPECT_EQ(c.kind, ChunkInfo::Kind::kData);
  EXPECT_EQ(c.text, "Hi");
  c = ParseChunk(Api::kChat, R"({"choices":[{"delta":{"role":"assistant"}}]})");
  EXPECT_EQ(c.text, "");
  c = ParseChunk(Api::kChat,
                 R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}})");
  EXPECT_EQ(c.prompt_tokens, 5);
  EXPECT_EQ(c.completion_tokens, 9);
  c = ParseChunk(Api::kCompletions, R"({"choices":[{"text":" there","index":0}]})");
  EXPECT_EQ(c.text, " there");
  EXPECT_EQ(ParseChunk(Api::kCompletions, "[DONE]").kind, ChunkInfo::Kind::kDone);
  c = ParseChunk(Api::kGenerateStream, R"({"model_name":"m","text_output":"tok"})");
  EXPECT_EQ(c.text, "tok");
  c = ParseChunk(Api::kGenerateStream, R"({"error":"model 'm' is unloading"})");
  EXPECT_EQ(c.kind, ChunkInfo::Kind::kError);
  EXPECT_EQ(c.error, "model 'm' is unloading");
  c = ParseChunk(Api::kChat, R"({"error":{"message":"bad","type":"x"}})");
  EXPECT_EQ(c.kind, ChunkInfo::Kind::kError);
  EXPECT_EQ(c.error, "bad");
  EXPECT_EQ(ParseChunk(Api::kChat, "{truncated").kind, ChunkInfo::Kind::kError);
  c = ParseChunk(Api::kChat, R"({"choices":[{"message":{"content":"whole"}}],
                               "usage":{"completion_tokens":3}})");
  EXPECT_EQ(c.text, "whole");
  EXPECT_EQ(c.completion_tokens, 3);
}

// Sleeps, records the peak number of concurrent calls and which prompts it saw.
class FakeTransport : public Transport {
 public:
  struct Shared {
    std::atomic<int> in_flight{0};
    std::atomic<int> peak{0};
    std::mutex mu;
    std::vector<std::string> prompts;
  };
  explicit FakeTransport(Shared* s) : s_(s) {}
  RequestResult Send(const BenchRequest& request, Clock::time_point bench_start) override {
    int now = ++s_->in_flight;
    int peak = s_->peak.load();
    while (now > peak && !s_->peak.compare_exchange_weak(peak, now)) {
    }
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      s_->prompts.push_back(request.prompt);
    }
    Clock::time_point start = Clock::now();
    RequestTimeline t(start, true, request.prompt_tokens);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    t.OnChunk(Clock::now(), "x");
    --s_->in_flight;
    if (request.prompt == "fail") return t.Fail(Clock::now(), bench_start, "boom");
    return t.Finish(Clock::now(), bench_start);
  }

 private:
  Shared* s_;
};

std::vector<BenchRequest> Prompts(int n) {
  std::vector<BenchRequest> v;
  for (int i = 0; i < n; ++i) v.push_back({"p" + std::to_string(i), 1, 1});
  return v;
}

TEST(RunnerTest, ConcurrencyIsBoundedAndWarmupExcluded) {
  FakeTransport::Shared shared;
  TransportFactory factory = [&]() -> Result<std::unique_ptr<Transport>> {
    return std::unique_ptr<Transport>(new FakeTransport(&shared));
  };
  RunSpec spec;
  spec.num_requests = 24;
  spec.max_concurrency = 3;
  spec.warmup_requests = 4;
  RunProgress progress;
  auto out = RunBenchmark(spec, Prompts(28), factory, &progress);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->results.size(), 24u);
  EXPECT_EQ(progress.done.load(), 24u);
  EXPECT_LE(shared.peak.load(), 3);
  EXPECT_EQ(shared.peak.load(), 3);
  EXPECT_EQ(shared.prompts.size(), 28u);
  // The measured phase starts after the warm-up prompts: p4..p27 measured.
  std::set<std::string> seen(shared.prompts.begin(), shared.prompts.end());
  EXPECT_EQ(seen.size(), 28u);
  // 24 requests of >= 5 ms, 3 at a time: at least 8 rounds.
  EXPECT_GE(out->duration_s, 0.035);
}

TEST(RunnerTest, RateLimitPacesArrivals) {
  FakeTransport::Shared shared;
  TransportFactory factory = [&]() -> Result<std::unique_ptr<Transport>> {
    return std::unique_ptr<Transport>(new FakeTransport(&shared));
  };
  RunSpec spec;
  spec.num_requests = 30;
  spec.request_rate = 200;  // ~150 ms for 30 arrivals
  spec.seed = 3;
  auto out = RunBenchmark(spec, Prompts(30), factory, nullptr);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->results.size(), 30u);
  double last_start = 0;
  for (const auto& r : out->results) last_start = std::max(last_start, r.start_s);
  EXPECT_GT(last_start, 0.06);
  EXPECT_LT(last_start, 3.0);  // generous: CI machines are shared
}

TEST(RunnerTest, DurationModeStopsAndCountsFailures) {
  FakeTransport::Shared shared;
  TransportFactory factory = [&]() -> Result<std::unique_ptr<Transport>> {
    return std::unique_ptr<Transport>(new FakeTransport(&shared));
  };
  RunSpec spec;
  spec.duration_s = 0.1;
  spec.max_concurrency = 2;
  std::vector<BenchRequest> reqs = {{"ok", 1, 1}, {"fail", 1, 1}};
  auto start = Clock::now();
  auto out = RunBenchmark(spec, reqs, factory, nullptr);
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(out.ok());
  EXPECT_LT(took, 5.0);
  EXPECT_GE(out->results.size(), 4u);
  size_t failed = 0;
  for (const auto& r : out->results) failed += r.ok ? 0 : 1;
  EXPECT_GT(failed, 0u);
  EXPECT_LT(failed, out->results.size());
  EXPECT_FALSE(RunBenchmark(RunSpec{}, reqs, factory, nullptr).ok());
}

TEST(ProgressTest, LineShowsCountsAndBar) {
  RunProgress p;
  p.done = 5;
  p.failed = 1;
  p.output_tokens = 100;
  std::string bar = FormatProgress(p, 10, 2.0, 0, true);
  EXPECT_NE(bar.find("[###############               ]"), std::string::npos) << bar;
  EXPECT_NE(bar.find("5/10"), std::string::npos);
  EXPECT_NE(bar.find("1 failed"), std::string::npos);
  EXPECT_NE(bar.find("50.0 tok/s"), std::string::npos);
  std::string plain = FormatProgress(p, 0, 5.0, 10.0, false);
  EXPECT_EQ(plain.find('['), std::string::npos);
  EXPECT_NE(plain.find(" 50%"), std::string::npos) << plain;
}

}  // namespace
}  // namespace sluice::bench
