// The engine over a deterministic fake ModelRunner. The fake stores each token it is given
// in the KV slot its block table names, and computes the next-token logits from what it
// reads back through the block table (every token of the context, with its position), so
// any block-table, prefix-cache, chunking or preemption bookkeeping error changes the
// generated tokens.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/engine.h"
#include "backends/llm/engine/engine_core.h"

namespace sluice::llm {
namespace {

using namespace std::chrono_literals;

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class FakeRunner : public ModelRunner {
 public:
  FakeRunner(int32_t vocab, int32_t num_blocks, int32_t block_size, int32_t max_pos = 4096)
      : bs_(block_size), nb_(num_blocks), kv_(static_cast<size_t>(num_blocks) * block_size) {
    shape_.vocab_size = vocab;
    shape_.num_layers = 1;
    shape_.num_kv_heads = 1;
    shape_.head_dim = 1;
    shape_.max_position_embeddings = max_pos;
  }
  const ModelShape& shape() const override { return shape_; }
  int32_t block_size() const override { return bs_; }
  int32_t num_blocks() const override { return nb_; }

  Status Forward(const ForwardBatch& batch, std::vector<float>& logits) override {
    if (++steps_ == fail_on_step_) return Internal("device lost");
    {
      bool decode = false;
      for (const SequenceStep& s : batch.seqs) decode = decode || s.num_new_tokens == 1;
      std::lock_guard<std::mutex> lock(log_mu_);
      step_log_.push_back({static_cast<int32_t>(batch.tokens.size()), decode});
    }
    size_t offset = 0;
    for (const SequenceStep& s : batch.seqs) {
      const int32_t len = s.num_cached_tokens + s.num_new_tokens;
      if (static_cast<int64_t>(s.block_table.size()) * bs_ < len) {
        return Internal("block table too short");
      }
      for (int32_t j = 0; j < s.num_new_tokens; ++j) {
        const int32_t pos = s.num_cached_tokens + j;
        Slot(s.block_table, pos) = {batch.tokens[offset + j], pos};
      }
      offset += s.num_new_tokens;
      max_batch_ = std::max<int32_t>(max_batch_, static_cast<int32_t>(batch.seqs.size()));
      if (!s.needs_logits) continue;
      uint64_t h = 12345;
      for (int32_t pos = 0; pos < len; ++pos) {
        const auto [tok, stored_pos] = Slot(s.block_table, pos);
        h = Mix(h ^ static_cast<uint64_t>(tok + 1));
        if (stored_pos != pos) h = Mix(h ^ 0xbad);  // a wrong block table: garbage
      }
      for (int32_t v = 0; v < shape_.vocab_size; ++v) {
        logits.push_back(static_cast<float>(Mix(h ^ static_cast<uint64_t>(v)) % 1000) / 100.0f);
      }
    }
    if (offset != batch.tokens.size()) return Internal("token count mismatch");
    return Status::Ok();
  }

  std::atomic<int64_t>& steps() { return steps_; }
  void FailOnStep(int64_t step) { fail_on_step_ = step; }
  int32_t max_batch() const { return max_batch_; }
  // Each step's new tokens and whether a sequence decoded in it (one new token).
  std::vector<std::pair<int32_t, bool>> step_log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return step_log_;
  }

 private:
  std::pair<int32_t, int32_t>& Slot(const std::vector<int32_t>& table, int32_t pos) {
    return kv_[static_cast<size_t>(table[pos / bs_]) * bs_ + pos % bs_];
  }
  ModelShape shape_;
  int32_t bs_, nb_;
  std::vector<std::pair<int32_t, int32_t>> kv_;
  std::atomic<int64_t> steps_{0};
  int64_t fail_on_step_ = -1;
  int32_t max_batch_ = 0;
  std::mutex log_mu_;
  std::vector<std::pair<int32_t, bool>> step_log_;
};

// One character per token: 'a' + token % 26.
class LetterDetokenizer : public Detokenizer {
 public:
  std::string Feed(int32_t token) override { return std::string(1, static_cast<char>('a' + token % 26)); }
};

DetokenizerFactory Letters() {
  return [](std::span<const int32_t>, bool) { return std::make_unique<LetterDetokenizer>(); };
}

// Gathers the outputs of many requests.
class Collector {
 public:
  struct Seq {
    std::vector<int32_t> tokens;
    std::string text;
    FinishReason finish = FinishReason::kNone;
    std::vector<float> logprobs;
    double cumulative = 0;
    std::string stop_string;
  };
  struct Req {
    std::map<int32_t, Seq> seqs;
    bool finished = false;
    Status error;
    int outputs = 0;
  };

  OutputCallback Callback() {
    return [this](RequestOutput out) {
      std::lock_guard<std::mutex> lock(mu_);
      Req& r = reqs_[out.request_id];
      ++r.outputs;
      EXPECT_FALSE(r.finished) << "output after the final one";
      for (const SequenceOutput& so : out.seqs) {
        Seq& s = r.seqs[so.index];
        s.tokens.insert(s.tokens.end(), so.token_ids.begin(), so.token_ids.end());
        s.text += so.text;
        s.logprobs.insert(s.logprobs.end(), so.logprobs.begin(), so.logprobs.end());
        s.cumulative = so.cumulative_logprob;
        EXPECT_EQ(so.num_output_tokens, static_cast<int32_t>(s.tokens.size()));
        if (so.finished()) {
          s.finish = so.finish_reason;
          s.stop_string = so.stop_string;
        }
      }
      if (out.finished) {
        r.finished = true;
        r.error = out.error;
        ++finished_;
        cv_.notify_all();
      }
    };
  }
  bool WaitFinished(int n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return finished_ >= n; });
  }
  Req Get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return reqs_[id];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Req> reqs_;
  int finished_ = 0;
};

struct EngineSetup {
  int32_t vocab = 64;
  int32_t num_blocks = 256;
  int32_t block_size = 4;
  EngineOptions options;
};

std::unique_ptr<Engine> MakeEngine(const EngineSetup& s, FakeRunner** runner_out = nullptr) {
  auto runner = std::make_unique<FakeRunner>(s.vocab, s.num_blocks, s.block_size);
  if (runner_out != nullptr) *runner_out = runner.get();
  auto e = Engine::Create(std::move(runner), s.options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

std::vector<int32_t> Prompt(int seed, int len, int vocab = 64) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(Mix(seed * 1000 + i) % vocab));
  return p;
}

SamplingParams Greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Each request alone, on a fresh engine with a big cache and no prefix caching.
std::vector<int32_t> Alone(const std::vector<int32_t>& prompt, const SamplingParams& params) {
  EngineSetup s;
  s.options.enable_prefix_caching = false;
  auto engine = MakeEngine(s);
  Collector c;
  EXPECT_TRUE(engine->AddRequest({"solo", prompt, params, c.Callback()}).ok());
  EXPECT_TRUE(c.WaitFinished(1));
  return c.Get("solo").seqs[0].tokens;
}

void ExpectIdleAndClean(Engine& engine) {
  const Status st = engine.WaitIdle(10s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  const EngineMetricsSnapshot m = engine.Metrics();
  EXPECT_GT(m.leak_checks, 0u);
  EXPECT_EQ(m.leak_check_failures, 0u);
  EXPECT_EQ(m.num_requests_running, 0);
  EXPECT_EQ(m.num_requests_waiting, 0);
  EXPECT_DOUBLE_EQ(m.kv_cache_usage, 0.0);
}

TEST(EngineTest, SixteenConcurrentRequestsMatchTheirSoloRuns) {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> solo;
  for (int i = 0; i < 16; ++i) {
    prompts.push_back(Prompt(i, 5 + 3 * i));
    solo.push_back(Alone(prompts[i], Greedy(12 + i % 5)));
  }
  // Different requests do produce different outputs (the fake is not constant).
  EXPECT_NE(solo[0], solo[1]);

  EngineSetup s;
  s.options.max_num_batched_tokens = 40;  // forces chunked prefill
  s.options.max_num_seqs = 16;
  FakeRunner* runner = nullptr;
  auto engine = MakeEngine(s, &runner);
  Collector c;
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(engine->AddRequest({"r" + std::to_string(i), prompts[i], Greedy(12 + i % 5), c.Callback()}).ok());
  }
  ASSERT_TRUE(c.WaitFinished(16));
  for (int i = 0; i < 16; ++i) {
    const auto r = c.Get("r" + std::to_string(i));
    EXPECT_TRUE(r.error.ok());
    EXPECT_EQ(r.seqs.at(0).tokens, solo[i]) << "request " << i;
    EXPECT_EQ(r.seqs.at(0).finish, FinishReason::kLength);
  }
  EXPECT_GT(runner->max_batch(), 1);
  ExpectIdleAndClean(*engine);
  const auto m = engine->Metrics();
  EXPECT_EQ(m.success_length, 16u);
  EXPECT_EQ(m.time_to_first_token.count(), 16u);
  EXPECT_EQ(m.e2e_request_latency.count(), 16u);
  EXPECT_EQ(m.request_queue_time.count(), 16u);
  uint64_t gen = 0, prompt_tokens = 0;
  for (int i = 0; i < 16; ++i) {
    gen += 12 + i % 5;
    prompt_tokens += prompts[i].size();
  }
  EXPECT_EQ(m.generation_tokens, gen);
  EXPECT_EQ(m.prompt_tokens, prompt_tokens);
  EXPECT_EQ(m.inter_token_latency.count(), gen - 16);
  // The per-request histograms of vLLM's dashboard: one observation per finished request.
  EXPECT_EQ(m.request_prompt_tokens.count(), 16u);
  EXPECT_DOUBLE_EQ(m.request_prompt_tokens.sum(), static_cast<double>(prompt_tokens));
  EXPECT_EQ(m.request_generation_tokens.count(), 16u);
  EXPECT_DOUBLE_EQ(m.request_generation_tokens.sum(), static_cast<double>(gen));
  EXPECT_EQ(m.request_max_num_generation_tokens.count(), 16u);
  EXPECT_DOUBLE_EQ(m.request_max_num_generation_tokens.sum(), static_cast<double>(gen));  // n = 1
  for (const Histogram* h : {&m.request_prefill_time, &m.request_decode_time, &m.request_inference_time})
    EXPECT_EQ(h->count(), 16u);
  EXPECT_LE(m.request_prefill_time.sum(), m.request_inference_time.sum());
  EXPECT_LE(m.request_decode_time.sum(), m.request_inference_time.sum());
}

TEST(EngineTest, ReportsEachRequestStartedOnceWhenFirstScheduled) {
  EngineSetup s;
  s.options.max_num_seqs = 2;  // the third request waits for a slot
  auto engine = MakeEngine(s);
  Collector c;
  std::atomic<int> started[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    EngineRequest r{"s" + std::to_string(i), Prompt(i, 6), Greedy(8), c.Callback()};
    r.on_started = [&started, i] { started[i].fetch_add(1); };
    ASSERT_TRUE(engine->AddRequest(std::move(r)).ok());
  }
  ASSERT_TRUE(c.WaitFinished(3));
  ExpectIdleAndClean(*engine);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(started[i].load(), 1) << i;
  EXPECT_EQ(engine->Metrics().request_queue_time.count(), 3u);
}

TEST(EngineTest, PrefixCachingHitsForSharedPrompts) {
  const std::vector<int32_t> prefix = Prompt(99, 48);
  EngineSetup s;
  auto engine = MakeEngine(s);
  Collector c;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p = prefix;
    auto tail = Prompt(200 + i, 3 + i);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
    ASSERT_TRUE(engine->AddRequest({"p" + std::to_string(i), p, Greedy(6), c.Callback()}).ok());
    ASSERT_TRUE(c.WaitFinished(i + 1));  // one after the other: later ones hit
  }
  const auto m = engine->Metrics();
  EXPECT_GE(m.prefix_cache_hits, 3u * 48u);
  EXPECT_GT(m.prefix_cache_queries, m.prefix_cache_hits);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(c.Get("p" + std::to_string(i)).seqs.at(0).tokens, Alone(prompts[i], Greedy(6)));
  }
  ExpectIdleAndClean(*engine);
}

// Stepped by hand (EngineCore) so that all 8 requests are queued before the first step: on
// the engine's own thread a loaded machine could let the first requests finish before the
// last arrive, and then nothing would need preempting (seen once under ctest -j2).
TEST(EngineTest, TinyKvBudgetPreemptsAndStillCompletesEveryRequest) {
  EngineSetup s;
  s.num_blocks = 14;  // 56 token slots for 8 requests of up to ~40 tokens each
  s.options.max_num_batched_tokens = 16;
  auto runner = std::make_unique<FakeRunner>(s.vocab, s.num_blocks, s.block_size);
  auto core = std::move(EngineCore::Create(std::move(runner), s.options)).value();
  Collector c;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(Prompt(300 + i, 6 + i * 2));
    core->AddRequest({"t" + std::to_string(i), prompts[i], Greedy(20), c.Callback()},
                     EngineCore::Clock::now());
  }
  for (int step = 0; core->HasWork() && step < 10000; ++step) core->Step();
  ASSERT_FALSE(core->HasWork());
  ASSERT_TRUE(c.WaitFinished(8, 0s));
  EXPECT_GT(core->metrics().preemptions, 0u);
  for (int i = 0; i < 8; ++i) {
    const auto r = c.Get("t" + std::to_string(i));
    ASSERT_TRUE(r.error.ok()) << r.error.ToString();
    EXPECT_EQ(r.seqs.at(0).tokens, Alone(prompts[i], Greedy(20))) << "request " << i;
  }
  EXPECT_TRUE(core->CheckIdle().ok());
  EXPECT_EQ(core->blocks().num_available(), core->blocks().total());
}

TEST(EngineTest, AbortFreesBlocksWithinOneStep) {
  EngineSetup s;
  auto runner = std::make_unique<FakeRunner>(s.vocab, 64, 4);
  auto core = std::move(EngineCore::Create(std::move(runner), s.options)).value();
  Collector c;
  core->AddRequest({"long", Prompt(1, 20), Greedy(1000), c.Callback()}, EngineCore::Clock::now());
  core->AddRequest({"other", Prompt(2, 9), Greedy(1000), c.Callback()}, EngineCore::Clock::now());
  for (int i = 0; i < 5; ++i) core->Step();
  const int32_t before = core->blocks().num_available();
  EXPECT_LT(before, core->blocks().total());
  core->Abort("long");  // between two steps: no step needed to free
  EXPECT_GE(core->blocks().num_available(), before + 20 / 4);
  EXPECT_EQ(core->blocks().num_live_sequences(), 1);
  const auto r = c.Get("long");
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.seqs.at(0).finish, FinishReason::kAbort);
  core->Abort("other");
  EXPECT_FALSE(core->HasWork());
  EXPECT_TRUE(core->CheckIdle().ok());
  EXPECT_EQ(core->metrics().success_abort, 2u);
}

TEST(EngineTest, AbortThroughTheQueueEndsTheStreamPromptly) {
  EngineSetup s;
  FakeRunner* runner = nullptr;
  auto engine = MakeEngine(s, &runner);
  Engine* e = engine.get();
  std::atomic<int64_t> abort_step{-1}, final_step{-1};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  auto cb = [&](RequestOutput out) {
    if (abort_step < 0) {
      abort_step = runner->steps().load();
      e->Abort("x");  // from the callback, as a frontend on disconnect would
    }
    if (out.finished) {
      final_step = runner->steps().load();
      EXPECT_EQ(out.seqs.at(0).finish_reason, FinishReason::kAbort);
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_all();
    }
  };
  ASSERT_TRUE(engine->AddRequest({"x", Prompt(5, 10), Greedy(100000), cb}).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return done; }));
  }
  EXPECT_EQ(final_step.load(), abort_step.load());  // no forward pass in between
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, SeededSamplingIgnoresBatchComposition) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  p.max_tokens = 16;
  p.ignore_eos = true;
  const auto prompt = Prompt(7, 11);
  const auto solo = Alone(prompt, p);

  EngineSetup s;
  auto engine = MakeEngine(s);
  Collector c;
  for (int i = 0; i < 6; ++i) {
    SamplingParams noise;
    noise.max_tokens = 10 + i;
    noise.ignore_eos = true;
    ASSERT_TRUE(engine->AddRequest({"n" + std::to_string(i), Prompt(50 + i, 7), noise, c.Callback()}).ok());
  }
  ASSERT_TRUE(engine->AddRequest({"seeded", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(7));
  EXPECT_EQ(c.Get("seeded").seqs.at(0).tokens, solo);
  SamplingParams other = p;
  other.seed = 4321;
  EXPECT_NE(Alone(prompt, other), solo);
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, ParallelSamplesShareThePromptBlocks) {
  EngineSetup s;
  auto engine = MakeEngine(s);
  Collector c;
  SamplingParams p;
  p.n = 3;
  p.seed = 5;
  p.max_tokens = 8;
  p.ignore_eos = true;
  p.logprobs = 2;
  const auto prompt = Prompt(8, 33);  // 8 full blocks of 4 + 1
  ASSERT_TRUE(engine->AddRequest({"n3", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(1));
  const auto r = c.Get("n3");
  ASSERT_EQ(r.seqs.size(), 3u);
  for (const auto& [i, seq] : r.seqs) {
    EXPECT_EQ(seq.tokens.size(), 8u);
    EXPECT_EQ(seq.finish, FinishReason::kLength);
    ASSERT_EQ(seq.logprobs.size(), 8u);
    const double sum = std::accumulate(seq.logprobs.begin(), seq.logprobs.end(), 0.0);
    EXPECT_NEAR(seq.cumulative, sum, 1e-3);
  }
  EXPECT_NE(r.seqs.at(0).tokens, r.seqs.at(1).tokens);  // different seeds (5, 6)
  // Children 1 and 2 reuse the 8 full prompt blocks.
  EXPECT_EQ(engine->Metrics().prefix_cache_hits, 2u * 32u);
  // Sample i is what a single request seeded with (seed + i) produces.
  SamplingParams single = p;
  single.n = 1;
  single.seed = 6;
  EXPECT_EQ(Alone(prompt, single), r.seqs.at(1).tokens);
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, StopStringsCutTheTextAndAreNeverEmitted) {
  const auto prompt = Prompt(21, 9);
  EngineSetup s;
  s.options.detokenizer = Letters();
  auto engine = MakeEngine(s);
  Collector c;
  ASSERT_TRUE(engine->AddRequest({"free", prompt, Greedy(30), c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(1));
  const auto free = c.Get("free").seqs.at(0);
  ASSERT_EQ(free.text.size(), 30u);
  const std::string stop = free.text.substr(10, 3);
  const size_t first = free.text.find(stop);

  SamplingParams p = Greedy(30);
  p.stop = {stop};
  ASSERT_TRUE(engine->AddRequest({"stopped", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(2));
  const auto r = c.Get("stopped").seqs.at(0);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop_string, stop);
  EXPECT_EQ(r.text, free.text.substr(0, first));
  EXPECT_EQ(r.tokens.size(), first + 3);  // the tokens that completed the stop string

  p.include_stop_str_in_output = true;
  ASSERT_TRUE(engine->AddRequest({"included", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(3));
  EXPECT_EQ(c.Get("included").seqs.at(0).text, free.text.substr(0, first + 3));
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, EosStopTokensMinTokensAndLength) {
  const auto prompt = Prompt(33, 6);
  const auto free = Alone(prompt, Greedy(20));
  const int32_t eos = free[4];
  const size_t first = std::find(free.begin(), free.end(), eos) - free.begin();

  EngineSetup s;
  s.options.eos_token_ids = {eos};
  auto engine = MakeEngine(s);
  Collector c;
  SamplingParams p = Greedy(20);
  p.ignore_eos = false;
  ASSERT_TRUE(engine->AddRequest({"eos", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(1));
  auto r = c.Get("eos").seqs.at(0);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(free.begin(), free.begin() + first + 1));

  // min_tokens suppresses EOS until reached: the EOS logit is masked at step `first`.
  p.min_tokens = static_cast<int32_t>(first) + 2;
  ASSERT_TRUE(engine->AddRequest({"min", prompt, p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(2));
  r = c.Get("min").seqs.at(0);
  EXPECT_GE(r.tokens.size(), first + 2);
  for (size_t i = 0; i + 1 < static_cast<size_t>(p.min_tokens) && i < r.tokens.size(); ++i) {
    EXPECT_NE(r.tokens[i], eos) << i;
  }

  // stop_token_ids work with ignore_eos.
  SamplingParams q = Greedy(20);
  q.stop_token_ids = {free[2]};
  ASSERT_TRUE(engine->AddRequest({"stopid", prompt, q, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(3));
  r = c.Get("stopid").seqs.at(0);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.tokens.back(), free[2]);
  EXPECT_LE(r.tokens.size(), 3u);

  // max_tokens = nullopt runs to the context length.
  SamplingParams unlimited = Greedy(1);
  unlimited.max_tokens = std::nullopt;
  ASSERT_TRUE(engine->AddRequest({"ctx", prompt, unlimited, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(4));
  r = c.Get("ctx").seqs.at(0);
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(static_cast<int32_t>(r.tokens.size() + prompt.size()), engine->max_model_len());
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, RefusesInvalidRequestsUpFront) {
  EngineSetup s;
  auto engine = MakeEngine(s);
  Collector c;
  SamplingParams bad;
  bad.temperature = std::nanf("");
  Status st = engine->AddRequest({"a", {1, 2}, bad, c.Callback()});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("temperature"), std::string::npos);
  st = engine->AddRequest({"b", {1, 200}, SamplingParams{}, c.Callback()});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("200"), std::string::npos);
  st = engine->AddRequest({"c", std::vector<int32_t>(engine->max_model_len(), 1), SamplingParams{}, c.Callback()});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  SamplingParams stops;
  stops.stop = {"x"};
  st = engine->AddRequest({"d", {1}, stops, c.Callback()});  // no detokenizer
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->AddRequest({"", {1}, SamplingParams{}, c.Callback()}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->AddRequest({"e", {1}, SamplingParams{}, nullptr}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine->WaitIdle(1s).ok());
  EXPECT_EQ(engine->Metrics().leak_checks, 0u);  // nothing was ever queued
}

TEST(EngineTest, RunnerErrorFailsTheBatchAndFreesItsBlocks) {
  auto runner = std::make_unique<FakeRunner>(64, 64, 4);
  runner->FailOnStep(3);
  auto core = std::move(EngineCore::Create(std::move(runner), {})).value();
  Collector c;
  core->AddRequest({"a", Prompt(1, 9), Greedy(50), c.Callback()}, EngineCore::Clock::now());
  core->AddRequest({"b", Prompt(2, 5), Greedy(50), c.Callback()}, EngineCore::Clock::now());
  for (int i = 0; i < 3; ++i) core->Step();
  EXPECT_FALSE(core->HasWork());
  for (const char* id : {"a", "b"}) {
    const auto r = c.Get(id);
    EXPECT_TRUE(r.finished);
    EXPECT_EQ(r.error.code(), StatusCode::kInternal);
    EXPECT_NE(r.error.message().find("device lost"), std::string::npos) << r.error.message();
    EXPECT_EQ(r.seqs.at(0).finish, FinishReason::kError);
    EXPECT_EQ(r.seqs.at(0).tokens.size(), 2u);  // steps 1 and 2 produced a token each
  }
  EXPECT_TRUE(core->CheckIdle().ok());
  EXPECT_EQ(core->metrics().failed_requests, 2u);
}

TEST(EngineTest, DuplicateIdInFlightFailsOnlyTheNewRequest) {
  auto core = std::move(EngineCore::Create(std::make_unique<FakeRunner>(64, 64, 4), {})).value();
  Collector c1, c2;
  core->AddRequest({"dup", {1, 2}, Greedy(5), c1.Callback()}, EngineCore::Clock::now());
  core->AddRequest({"dup", {1, 2}, Greedy(5), c2.Callback()}, EngineCore::Clock::now());
  ASSERT_TRUE(c2.WaitFinished(1, 0s));
  EXPECT_EQ(c2.Get("dup").error.code(), StatusCode::kInvalidArgument);
  while (core->HasWork()) core->Step();
  ASSERT_TRUE(c1.WaitFinished(1, 0s));
  EXPECT_TRUE(c1.Get("dup").error.ok());
  EXPECT_EQ(c1.Get("dup").seqs.at(0).tokens.size(), 5u);
  EXPECT_TRUE(core->CheckIdle().ok());
}

// max_num_batched_tokens_with_decodes reaches the scheduler: a step with a decode holds at
// most 16 new tokens, a prompt alone takes the full 64; the tokens are each request's alone.
TEST(EngineTest, StepsWithDecodesKeepTheirOwnBudget) {
  EngineSetup s;
  s.options.max_num_seqs = 4;
  s.options.max_num_batched_tokens = 64;
  s.options.max_num_batched_tokens_with_decodes = 16;
  s.options.enable_prefix_caching = false;
  FakeRunner* runner = nullptr;
  auto engine = MakeEngine(s, &runner);
  Collector c;
  const std::vector<int32_t> a = Prompt(1, 8), b = Prompt(2, 200), alone = Prompt(3, 200);
  ASSERT_TRUE(engine->AddRequest({"a", a, Greedy(60), c.Callback()}).ok());
  ASSERT_TRUE(engine->AddRequest({"b", b, Greedy(2), c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(2));
  ASSERT_TRUE(engine->AddRequest({"alone", alone, Greedy(2), c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(3));
  int with_decodes = 0, full = 0;
  for (const auto& [tokens, decode] : runner->step_log()) {
    if (decode) {
      EXPECT_LE(tokens, 16);
      ++with_decodes;
    }
    full += tokens == 64 && !decode;
  }
  EXPECT_GT(with_decodes, 0);
  EXPECT_GE(full, 3);  // the prompt alone: 64, 64, 64, then 8
  EXPECT_EQ(c.Get("a").seqs[0].tokens, Alone(a, Greedy(60)));
  EXPECT_EQ(c.Get("b").seqs[0].tokens, Alone(b, Greedy(2)));
  EXPECT_EQ(c.Get("alone").seqs[0].tokens, Alone(alone, Greedy(2)));
  ExpectIdleAndClean(*engine);
}

TEST(EngineTest, CreateRefusesBadOptions) {
  auto make = [](EngineOptions o, int32_t blocks = 16) {
    return Engine::Create(std::make_unique<FakeRunner>(64, blocks, 4), std::move(o)).status();
  };
  EngineOptions o;
  o.max_num_seqs = 0;
  EXPECT_EQ(make(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.max_num_batched_tokens = 0;
  EXPECT_EQ(make(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.eos_token_ids = {64};
  EXPECT_EQ(make(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.enable_chunked_prefill = false;
  o.max_num_batched_tokens = 8;  // < max_model_len (64 = 16 blocks x 4)
  EXPECT_EQ(make(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.max_num_seqs = 32;
  o.max_num_batched_tokens_with_decodes = 16;  // fewer than the streams that decode at once
  const Status few = make(o);
  EXPECT_EQ(few.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(few.message().find("max_num_batched_tokens_with_decodes (16)"), std::string::npos)
      << few.message();
  o.max_num_batched_tokens_with_decodes = 32;
  EXPECT_TRUE(make(o).ok());
  EXPECT_EQ(make({}, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Engine::Create(nullptr, {}).status().code(), StatusCode::kInvalidArgument);
  // max_model_len is clamped to what the cache holds.
  auto e = Engine::Create(std::make_unique<FakeRunner>(64, 16, 4), {});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->max_model_len(), 64);
}

TEST(EngineTest, StopAbortsEverythingInFlight) {
  // A context of 2^18 tokens: no sequence can reach it (each step hashes its whole context)
  // before Stop, however late a loaded machine runs this thread (with 1,024 tokens, a few
  // milliseconds of engine work, some finished with `length` first).
  auto created = Engine::Create(std::make_unique<FakeRunner>(64, 1 << 16, 4, 1 << 20), {});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto engine = std::move(created).value();
  Collector c;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(engine->AddRequest({"s" + std::to_string(i), Prompt(i, 5), Greedy(100000), c.Callback()}).ok());
  }
  engine->Stop();
  ASSERT_TRUE(c.WaitFinished(4, 1s));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(c.Get("s" + std::to_string(i)).seqs.at(0).finish, FinishReason::kAbort);
  }
  EXPECT_EQ(engine->AddRequest({"late", {1}, SamplingParams{}, c.Callback()}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(engine->Metrics().leak_check_failures, 0u);
}

}  // namespace
}  // namespace sluice::llm

namespace sluice::llm {
namespace {

// A runner whose "device" samples: it applies what each RowSampling says (suppression,
// penalties from the engine's distinct-token entries) to the fake logits and takes the
// argmax, as the CUDA sampler does for greedy rows, and records the rows it was given.
class DeviceSamplingRunner : public FakeRunner {
 public:
  using FakeRunner::FakeRunner;
  bool samples_on_device() const override { return true; }
  Status ForwardSample(const ForwardBatch& batch, std::span<const RowSampling> rows,
                       std::vector<int32_t>& tokens, std::vector<float>& logprobs,
                       const std::function<void()>& before_sampling) override {
    std::vector<float> logits;
    RETURN_IF_ERROR(Forward(batch, logits));
    if (before_sampling) before_sampling();
    const size_t vocab = static_cast<size_t>(shape().vocab_size);
    if (logits.size() != rows.size() * vocab) return Internal("rows do not match the logits");
    tokens.clear();
    logprobs.clear();
    for (size_t r = 0; r < rows.size(); ++r) {
      std::span<float> row(logits.data() + r * vocab, vocab);
      const RowSampling& s = rows[r];
      for (const PenaltyToken& p : s.penalties) {
        float& v = row[p.token];
        if (p.suppressed) v = -std::numeric_limits<float>::infinity();
        if (p.seen && s.repetition_penalty != 1.0f) {
          v = v > 0 ? v / s.repetition_penalty : v * s.repetition_penalty;
        }
        if (p.output_count > 0) {
          v -= s.frequency_penalty * static_cast<float>(p.output_count) + s.presence_penalty;
        }
      }
      EXPECT_LT(s.temperature, SamplingParams::kGreedyEpsilon);
      tokens.push_back(static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
      logprobs.push_back(0.f);
      seen_rows.push_back(s);
    }
    return Status::Ok();
  }
  std::vector<RowSampling> seen_rows;
};

// The engine's on-device path hands the device exactly what the CPU sampler would apply:
// greedy requests with all three penalties and min_tokens suppression give the same tokens
// through a sampling runner as through the CPU sampler, and each row carries the
// sequence's seed and draw count.
TEST(EngineTest, DeviceSamplingRowsCarryWhatTheCpuSamplerApplies) {
  std::vector<SamplingParams> params(3, Greedy(24));
  params[0].repetition_penalty = 1.7f;
  params[1].frequency_penalty = 1.5f;
  params[1].presence_penalty = 0.5f;
  params[1].seed = 99;
  params[2].min_tokens = 5;
  params[2].ignore_eos = false;
  params[2].stop_token_ids = {3, 9};
  EngineSetup s;
  s.options.eos_token_ids = {7};
  // The rows the "device" was given, copied out before run() destroys the engine that owns
  // the runner (the test read them through a pointer into the destroyed runner).
  std::vector<RowSampling> seen_rows;
  // Runs the three requests together, sampling on the host (FakeRunner) or the "device".
  auto run = [&](bool on_device) {
    DeviceSamplingRunner* device = nullptr;
    std::unique_ptr<FakeRunner> runner;
    if (on_device) {
      auto d = std::make_unique<DeviceSamplingRunner>(s.vocab, s.num_blocks, s.block_size);
      device = d.get();
      runner = std::move(d);
    } else {
      runner = std::make_unique<FakeRunner>(s.vocab, s.num_blocks, s.block_size);
    }
    auto created = Engine::Create(std::move(runner), s.options);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    auto engine = std::move(created).value();
    Collector c;
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(engine->AddRequest({"r" + std::to_string(i), Prompt(20 + i, 9), params[i], c.Callback()}).ok());
    }
    EXPECT_TRUE(c.WaitFinished(3));
    std::vector<std::vector<int32_t>> tokens;
    for (int i = 0; i < 3; ++i) tokens.push_back(c.Get("r" + std::to_string(i)).seqs[0].tokens);
    ExpectIdleAndClean(*engine);
    if (device != nullptr) seen_rows = device->seen_rows;
    return tokens;
  };
  const auto host = run(false);
  const auto on_device = run(true);
  EXPECT_EQ(on_device, host);
  ASSERT_FALSE(seen_rows.empty());
  bool saw_seed = false, saw_suppressed = false, saw_repeat = false, saw_count = false;
  for (const RowSampling& row : seen_rows) {
    saw_seed |= row.seed == 99;
    for (const PenaltyToken& p : row.penalties) {
      saw_suppressed |= p.suppressed && (p.token == 3 || p.token == 9 || p.token == 7);
      saw_repeat |= p.seen;
      saw_count |= p.output_count > 0;
      EXPECT_TRUE(p.suppressed || p.seen || p.output_count > 0) << "an entry that does nothing";
    }
  }
  EXPECT_TRUE(saw_seed && saw_suppressed && saw_repeat && saw_count);
}

}  // namespace
}  // namespace sluice::llm

namespace sluice::llm {
namespace {

// The device sampler does not apply a logit bias, so a step with a biased row samples on the
// host: a +100 bias forces its token at every step even on a runner that samples on its
// "device" (which would ignore the bias), and that runner never sees the row.
TEST(EngineTest, LogitBiasRowsSampleOnTheHostEvenWhenTheDeviceCould) {
  EngineSetup s;
  auto runner = std::make_unique<DeviceSamplingRunner>(s.vocab, s.num_blocks, s.block_size);
  DeviceSamplingRunner* device = runner.get();
  auto created = Engine::Create(std::move(runner), s.options);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto engine = std::move(created).value();
  SamplingParams p = Greedy(6);
  const int32_t forced = 5;
  p.logit_bias = {{forced, 100.f}};
  Collector c;
  ASSERT_TRUE(engine->AddRequest({"biased", Prompt(8, 3), p, c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(1));
  EXPECT_EQ(c.Get("biased").seqs[0].tokens, std::vector<int32_t>(6, forced));
  EXPECT_TRUE(device->seen_rows.empty());
  // Without the bias the same runner samples on its device.
  ASSERT_TRUE(engine->AddRequest({"plain", Prompt(8, 3), Greedy(2), c.Callback()}).ok());
  ASSERT_TRUE(c.WaitFinished(2));
  EXPECT_FALSE(device->seen_rows.empty());
  ExpectIdleAndClean(*engine);
}

}  // namespace
}  // namespace sluice::llm
