// Issue 22: a structured output's grammar compiles on the llm backend's prompt workers, not
// where the engine waits for it. The llm backend in-process (the tiny Qwen2 fixture) streams
// one request while another brings a grammar that takes half a second to compile: the
// stream's responses keep coming meanwhile. (Before, the compile ran at admission under the
// backend's lock, which every engine output takes: the stream stopped for the whole compile.)
// The slow request still ends with its constrained output, and so does a second one with the
// same grammar, which the shared cache holds.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/llm/backend/llm_backend.h"
#include "common/llm_protocol.h"

namespace sluice::llm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const fs::path kFixture = fs::path(SLUICE_SOURCE_DIR) / "tests/fixtures/models/qwen2_fp32";

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// One request's responses: when each came, the text, the final status.
class Responses : public backends::ResponseSender {
 public:
  Status Send(InferResponse response, bool final) override {
    std::lock_guard<std::mutex> lock(mu_);
    arrivals_.push_back(Clock::now());
    for (const Tensor& t : response.outputs)
      if (t.name == llm_protocol::kTextOutput && t.data.size() > 4) text_ += t.data.substr(4);
    return Finish(final, Status::Ok());
  }
  Status SendFinal() override {
    std::lock_guard<std::mutex> lock(mu_);
    return Finish(true, Status::Ok());
  }
  Status SendError(Status error) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Finish(true, std::move(error));
  }
  bool IsCancelled() const override { return false; }

  bool Wait(std::chrono::milliseconds timeout, size_t responses = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return responses > 0 ? arrivals_.size() >= responses : final_.has_value();
    });
  }
  std::vector<Clock::time_point> arrivals() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrivals_;
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  Status final_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return final_.value_or(Internal("no final response"));
  }

 private:
  Status Finish(bool final, Status status) {
    if (final) final_ = std::move(status);
    cv_.notify_all();
    return Status::Ok();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> arrivals_;
  std::string text_;
  std::optional<Status> final_;
};

backends::BackendRequest Request(uint64_t id, const nlohmann::json& sampling, bool stream,
                                 std::shared_ptr<Responses> to) {
  backends::BackendRequest r;
  r.id = id;
  for (const auto& [name, value] : {std::pair<const char*, std::string>{"text_input", "hello"},
                                    {"sampling_parameters", sampling.dump()}}) {
    Tensor t{name, DataType::kBytes, {1}, {}};
    AppendBytesElement(t.data, value);
    r.request.inputs.push_back(std::move(t));
  }
  r.request.parameters["stream"] = stream;
  r.request.parameters["exclude_input_in_output"] = true;
  r.sender = std::move(to);
  return r;
}

// A choice among 2,500 strings of ~400 bytes (the 1 MiB cap on a constraint): a grammar that
// takes ~0.5 s to compile on one core (grammar and automaton), where a realistic schema takes a
// fraction of a millisecond (bench/RESULTS.md).
nlohmann::json SlowChoices() {
  nlohmann::json choices = nlohmann::json::array();
  for (int i = 0; i < 2500; ++i) {
    std::string s = "choice " + std::to_string(i) + ":";
    while (s.size() < 390) s += " w" + std::to_string((i * 7919 + s.size()) % 100000);
    choices.push_back(s);
  }
  return choices;
}

TEST(GrammarCompileOffEngineTest, ASlowCompileDoesNotStopAnotherRequestsSteps) {
  // <tmp>/m/1/model.json, the fixture's files in <tmp>/m/1/weights.
  const fs::path dir = fs::temp_directory_path() / ("sluice_compile_" + std::to_string(getpid()));
  const fs::path version = dir / "m" / "1";
  fs::create_directories(version / "weights");
  for (const char* f :
       {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(kFixture / f, version / "weights" / f, fs::copy_options::overwrite_existing);
  // A context the stream does not reach in the test (the tiny model writes thousands of
  // tokens a second): 128 Ki tokens, 64 MiB of KV cache.
  std::ifstream in(kFixture / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["max_position_embeddings"] = 128 << 10;
  std::ofstream(version / "weights" / "config.json") << config.dump();
  std::ofstream(version / "model.json") << R"({"model": "weights", "max_model_len": 131072,
      "cpu_kv_cache_bytes": 67108864, "disable_log_stats": true})";
  InstanceSpec spec;
  spec.model_name = "m";
  spec.model_dir = (dir / "m").string();
  spec.version_dir = version.string();
  spec.cpu_threads = 1;
  auto backend = MakeLlmBackend();
  const Status initialized = backend->Initialize(spec);
  ASSERT_TRUE(initialized.ok()) << initialized.ToString();

  auto stream = std::make_shared<Responses>();
  backend->Execute(Request(1, {{"max_tokens", 100000}, {"ignore_eos", true}}, true, stream));
  ASSERT_TRUE(stream->Wait(30s, 5)) << "the stream never started: " << stream->final_status().ToString();

  const nlohmann::json choices = SlowChoices();
  const nlohmann::json slow = {{"guided_choice", choices}, {"max_tokens", 900}, {"temperature", 0}};
  auto constrained = std::make_shared<Responses>();
  const Clock::time_point sent = Clock::now();
  backend->Execute(Request(2, slow, false, constrained));
  ASSERT_TRUE(constrained->Wait(300s)) << "the constrained request never ended";
  const Clock::time_point done = Clock::now();
  const double compile_s = Seconds(done - sent);
  ASSERT_FALSE(stream->Wait(0ms)) << "the stream ended: " << stream->final_status().ToString();
  EXPECT_TRUE(constrained->final_status().ok()) << constrained->final_status().ToString();
  const std::string text = constrained->text();
  EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;

  // The stream's longest silence while the grammar compiled.
  double longest_gap = 0;
  Clock::time_point last = sent;
  for (Clock::time_point t : stream->arrivals()) {
    if (t <= sent || t > done) continue;
    longest_gap = std::max(longest_gap, Seconds(t - last));
    last = t;
  }
  longest_gap = std::max(longest_gap, Seconds(done - last));
  // The compile must be slow for the test to mean anything; the stream must not wait for it.
  ASSERT_GT(compile_s, 0.2) << "the grammar compiled too fast to show anything";
  EXPECT_LT(longest_gap, std::max(0.1, compile_s / 4))
      << "the stream stopped for " << longest_gap << " s of a " << compile_s << " s compile";

  // The same grammar again, from the engine's shared cache (its LRU has its own test in
  // structured_matcher_test): a request's time here is mostly its 1 MB of JSON and its tokens,
  // so it is printed, not bounded.
  auto again = std::make_shared<Responses>();
  const Clock::time_point again_sent = Clock::now();
  backend->Execute(Request(3, slow, false, again));
  ASSERT_TRUE(again->Wait(60s));
  EXPECT_TRUE(again->final_status().ok()) << again->final_status().ToString();
  EXPECT_EQ(again->text(), text);  // greedy: the same choice
  const double again_s = Seconds(Clock::now() - again_sent);

  backend->Cancel(1);
  EXPECT_TRUE(stream->Wait(10s));
  backend->Finalize();
  std::printf("compile %.2f s (again %.2f s); the stream's longest gap meanwhile %.3f s\n",
              compile_s, again_s, longest_gap);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::llm
