// Issue 21: the llm backend parses, templates and tokenizes prompts on workers of its own, not on
// the stub's IPC thread, the one that answers heartbeats and cancels. The real sluice-stub with
// the llm backend (the tiny Qwen2 fixture) gets a burst of the longest prompts it accepts and
// must meanwhile answer a cancel of a running stream and the heartbeats; a prompt still waiting
// for a worker is cancelled at once; the burst's prompts still end with their usual 400.
//
// The bounds are relative to the burst's own length (on the old code a cancel and a heartbeat
// waited for the whole burst), with a floor of a second, so a slow or loaded machine only makes
// the burst longer.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/llm_contract.h"
#include "common/llm_protocol.h"
#include "common/tensor.h"
#include "common/thread_annotations.h"
#include "core/stub_process.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::core {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kStubPath = SLUICE_BINARY_DIR "/src/stub/sluice-stub";
constexpr const char* kFixture = SLUICE_SOURCE_DIR "/tests/fixtures/models/qwen2_fp32";
// A context of 128 Ki tokens (64 MiB of fp32 KV cache for the fixture): a tokenize request
// (vLLM's /tokenize) may then hold 8 contexts, 1 Mi tokens, the most work one prompt can ask.
constexpr int kMaxModelLen = 128 << 10;
constexpr uint64_t kBurst = 20;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Records the final event of every request and when it came.
class Finals {
 public:
  StubCallbacks Callbacks() {
    StubCallbacks cb;
    cb.on_response = [this](uint64_t id, ResponseEvent ev) {
      MutexLock lock(mu_);
      ++responses_[id];
      if (ev.final) finals_[id] = {ev.status, Clock::now()};
      cv_.NotifyAll();
    };
    cb.on_exit = [this](const std::string& reason, bool) {
      MutexLock lock(mu_);
      exit_reason_ = reason;
      cv_.NotifyAll();
    };
    return cb;
  }
  bool WaitResponse(uint64_t id, std::chrono::milliseconds timeout) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return cv_.WaitFor(mu_, timeout, [&]() SLUICE_REQUIRES(mu_) { return responses_[id] > 0; });
  }
  bool WaitFinal(uint64_t id, std::chrono::milliseconds timeout) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return cv_.WaitFor(mu_, timeout, [&]() SLUICE_REQUIRES(mu_) { return finals_.contains(id); });
  }
  std::pair<Status, Clock::time_point> Final(uint64_t id) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return finals_.at(id);
  }
  std::string exit_reason() SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return exit_reason_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::map<uint64_t, int> responses_ SLUICE_GUARDED_BY(mu_);
  std::map<uint64_t, std::pair<Status, Clock::time_point>> finals_ SLUICE_GUARDED_BY(mu_);
  std::string exit_reason_ SLUICE_GUARDED_BY(mu_);
};

Tensor BytesInput(std::string name, const std::string& value) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kBytes;
  t.shape = {1};
  AppendBytesElement(t.data, value);
  return t;
}

// <dir>/1/model.json names <dir>/1/weights: the fixture with room for a long context.
void WriteModel(const fs::path& dir) {
  const fs::path weights = dir / "1" / "weights";
  fs::create_directories(weights);
  for (const char* f :
       {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(fs::path(kFixture) / f, weights / f);
  std::ifstream in(fs::path(kFixture) / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["max_position_embeddings"] = kMaxModelLen;
  std::ofstream(weights / "config.json") << config.dump();
  nlohmann::json args = {{"model", "weights"},
                         {"max_model_len", kMaxModelLen},
                         {"cpu_kv_cache_bytes", int64_t{64} << 20},
                         {"disable_log_stats", true}};
  std::ofstream(dir / "1" / "model.json") << args.dump();
}

// Words of random letters: about one token a byte with the fixture's tokenizer, and no word
// is in its cache twice.
std::string LongPrompt(size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string text;
  text.reserve(bytes);
  while (text.size() < bytes) text += rng() % 6 == 0 ? ' ' : static_cast<char>('a' + rng() % 26);
  return text;
}

class StubPromptBurstTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    ASSERT_EQ(stat(kStubPath, &st), 0) << "build the sluice-stub target first";
    char tmpl[] = "/tmp/sluice_burst_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    WriteModel(dir_ / "burst");
  }
  void TearDown() override {
    // A graceful stop: Finalize joins the prompt workers, then the engine.
    if (stub_) {
      EXPECT_EQ(stub_->Stop(10s, 5s), "exited with status 0");
    }
    stub_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartStub() {
    StubLaunchSpec spec;
    spec.stub_path = kStubPath;
    spec.instance.model_name = "burst";
    spec.instance.model_version = 1;
    spec.instance.model_dir = (dir_ / "burst").string();
    spec.instance.version_dir = (dir_ / "burst" / "1").string();
    spec.instance.config.set_name("burst");
    spec.instance.config.set_backend("vllm");
    spec.instance.config.mutable_model_transaction_policy()->set_decoupled(true);
    spec.heartbeat_interval = 100ms;
    // Long enough that the old code's stub lived through the burst: the test measures the
    // heartbeats' gaps itself.
    spec.heartbeat_timeout = 120s;
    auto spawned = StubProcess::Spawn(spec, finals_.Callbacks());
    ASSERT_TRUE(spawned.ok()) << spawned.status().ToString();
    stub_ = std::move(spawned).value();
    Status ready = stub_->WaitReady(60s);
    ASSERT_TRUE(ready.ok()) << ready.ToString();
  }

  // A stream running in the engine, to be cancelled during the burst.
  void StartStream(uint64_t id) {
    InferRequest stream;
    stream.model_name = "burst";
    stream.inputs.push_back(BytesInput("text_input", "hello"));
    stream.inputs.push_back(
        BytesInput("sampling_parameters", R"({"max_tokens": 100000, "ignore_eos": true})"));
    stream.parameters["stream"] = true;
    ASSERT_TRUE(stub_->SendRequest(id, stream).ok());
    ASSERT_TRUE(finals_.WaitResponse(id, 30s)) << "the stream never started";
  }

  // The burst, requests kFirst..kFirst+kBurst-1: tokenize requests past 8 contexts (each
  // tokenized up to 1 Mi tokens, then refused with the tokenizer's 400). 1.4 MB of text is
  // ~1.25 Mi tokens; the burst fits in the link's 32 MiB of shared memory.
  void SendBurst() {
    std::vector<InferRequest> burst(kBurst);
    for (uint64_t i = 0; i < kBurst; ++i) {
      // vLLM's /tokenize as the OpenAI frontend sends it: the typed contract, task tokenize.
      llm_contract::LlmRequest tokenize;
      tokenize.task = llm_contract::Task::kTokenize;
      tokenize.prompt.text = LongPrompt(1400u << 10, static_cast<uint32_t>(i + 1));
      auto encoded = ipc::EncodeLlmRequest(tokenize);
      ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
      burst[i].model_name = "burst";
      burst[i].inputs.push_back(BytesInput("text_input", ""));
      burst[i].parameters[std::string(llm_protocol::kLlmRequestParameter)] = std::move(*encoded);
    }
    start_ = Clock::now();
    for (uint64_t i = 0; i < kBurst; ++i)
      ASSERT_TRUE(stub_->SendRequest(kFirst + i, burst[i]).ok()) << i;
  }

  // Waits for the finals of the burst's requests before `last`; returns the heartbeats'
  // longest silence meanwhile.
  double WaitForBurst(uint64_t last) {
    double longest_gap = 0;
    for (uint64_t i = kFirst; i < last; ++i) {
      while (!finals_.WaitFinal(i, 20ms)) {
        longest_gap = std::max(longest_gap, Seconds(Clock::now() - stub_->last_heartbeat_ack()));
        if (Clock::now() - start_ > 300s) {
          ADD_FAILURE() << "the burst did not end";
          return longest_gap;
        }
      }
    }
    return longest_gap;
  }

  double Since(Clock::time_point t) const { return Seconds(t - start_); }

  static constexpr uint64_t kFirst = 100;
  fs::path dir_;
  Finals finals_;
  std::unique_ptr<StubProcess> stub_;
  Clock::time_point start_;
};

TEST_F(StubPromptBurstTest, Issue21CancelAndHeartbeatsAreAnsweredDuringABurstOfLongPrompts) {
  ASSERT_NO_FATAL_FAILURE(StartStub());
  constexpr uint64_t kStream = 1;
  ASSERT_NO_FATAL_FAILURE(StartStream(kStream));
  ASSERT_NO_FATAL_FAILURE(SendBurst());
  const uint64_t last = kFirst + kBurst - 1;  // still waiting for a prompt worker
  ASSERT_TRUE(stub_->SendCancel(kStream).ok());
  ASSERT_TRUE(stub_->SendCancel(last).ok());
  const double longest_gap = WaitForBurst(last);
  const double burst_s = Since(Clock::now());
  const double bound = std::max(1.0, burst_s / 4);
  ASSERT_EQ(finals_.exit_reason(), "") << "the stub died during the burst";

  for (uint64_t id : {kStream, last}) {
    ASSERT_TRUE(finals_.WaitFinal(id, 1s)) << id;
    auto [status, when] = finals_.Final(id);
    EXPECT_EQ(status.code(), StatusCode::kCancelled) << id << ": " << status.ToString();
    EXPECT_EQ(status.message(), "Request was cancelled") << id;
    EXPECT_LT(Since(when), bound) << "request " << id << " cancelled after the burst of " << burst_s
                                  << " s";
  }
  EXPECT_LT(longest_gap, bound) << "a heartbeat waited " << longest_gap << " s in a burst of "
                                << burst_s << " s";
  // The burst's prompts end with their usual 400, in order of arrival.
  for (uint64_t i = kFirst; i < last; ++i) {
    auto [status, when] = finals_.Final(i);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << i << ": " << status.ToString();
    EXPECT_EQ(status.message(),
              "prompt has more than " + std::to_string(8 * kMaxModelLen) + " tokens")
        << i;
    if (i > kFirst) {
      EXPECT_LE(finals_.Final(i - 1).second, when) << i;
    }
  }
  std::printf(
      "burst of %d prompts: %.2f s; cancels answered after %.3f / %.3f s; longest heartbeat gap "
      "%.3f s\n",
      static_cast<int>(kBurst) - 1, burst_s, Since(finals_.Final(kStream).second),
      Since(finals_.Final(last).second), longest_gap);
}

}  // namespace
}  // namespace sluice::core
