// The bundled demo model through the real server: transformers' greedy reference and the
// model card's seeded samples reproduce through the OpenAI API and Triton's generate API;
// unloading it during streams ends every stream. (The real OpenAI SDK against it:
// tests/python/test_openai_sdk.py.)

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

nlohmann::json Fixture() {
  std::ifstream in(SourceDir() + "/tests/fixtures/demo_greedy.json");
  return nlohmann::json::parse(in);
}

std::vector<std::string> DemoArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--model-repository", SourceDir() + "/examples", "--model-control-mode",
                                   "explicit", "--load-model", "sluice-demo", "--cpu-threads", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class DemoModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(DemoArgs()); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override { ASSERT_TRUE(server_->started()); }
  static ServerProcess* server_;
};
ServerProcess* DemoModelTest::server_ = nullptr;

TEST_F(DemoModelTest, GreedyCompletionEqualsTransformers) {
  auto fx = Fixture();
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", fx["prompt"]}, {"max_tokens", fx["max_new_tokens"]},
                         {"temperature", 0}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["text"], fx["output_text"]);
  EXPECT_EQ(j["usage"]["prompt_tokens"], fx["prompt_ids"].size());
  EXPECT_EQ(j["usage"]["completion_tokens"], fx["output_ids"].size());
}

TEST_F(DemoModelTest, GreedyChatEqualsTransformers) {
  auto fx = Fixture()["chat"];
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"model", "sluice-demo"}, {"messages", fx["messages"]}, {"max_tokens", fx["output_ids"].size()},
                         {"temperature", 0}};
  auto r = http->Post("/v1/chat/completions", body.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], fx["output_text"]);
}

TEST_F(DemoModelTest, ModelCardSeededSampleReproduces) {
  auto samples = Fixture()["openai_seeded_samples"]["completions"];
  ASSERT_FALSE(samples.empty());
  auto s = samples[0];
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", s["prompt"]}, {"max_tokens", s["max_tokens"]},
                         {"temperature", s["temperature"]}, {"seed", s["seed"]}};
  for (int i = 0; i < 2; ++i) {
    auto r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(nlohmann::json::parse(r->body)["choices"][0]["text"], s["text"]);
  }
}

TEST_F(DemoModelTest, GenerateStreamSendsDeltasThatJoinToTheGreedyText) {
  auto fx = Fixture();
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"text_input", fx["prompt"]}, {"stream", true},
                         {"sampling_parameters", nlohmann::json{{"temperature", 0}, {"max_tokens", 32}}.dump()}};
  auto sse = http->PostSse("/v2/models/sluice-demo/generate_stream", body.dump());
  ASSERT_TRUE(sse.ok()) << sse.status().ToString();
  ASSERT_EQ((*sse)->status(), 200);
  std::string text;
  int events = 0;
  for (;;) {
    auto ev = (*sse)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    if (!*ev) break;
    auto j = nlohmann::json::parse((*ev)->data);
    ASSERT_FALSE(j.contains("error")) << j.dump();
    text += j.value("text_output", "");
    ++events;
  }
  EXPECT_GT(events, 5);
  EXPECT_EQ(text, fx["output_text"]);
}

// Triton's finish_reason output (return_finish_reason), as vLLM's backend names it: "length" at
// max_tokens, "stop" at a stop token, whole or streamed (there "" until the last response).
TEST_F(DemoModelTest, GenerateFinishReasonIsLengthOrStop) {
  auto fx = Fixture();
  auto http = Http(server_->http_port());
  auto request = [&](nlohmann::json sampling) {
    sampling["temperature"] = 0;
    return nlohmann::json{{"text_input", fx["prompt"]},
                          {"return_finish_reason", true},
                          {"sampling_parameters", sampling.dump()}};
  };
  // A BYTES output of shape [1] may come back as a string or a one-element list.
  auto reason = [](const nlohmann::json& j) {
    const auto& r = j.at("finish_reason");
    return r.is_array() ? r.at(0).get<std::string>() : r.get<std::string>();
  };
  auto r = http->Post("/v2/models/sluice-demo/generate", request({{"max_tokens", 4}}).dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(reason(nlohmann::json::parse(r->body)), "length") << r->body;
  const int32_t stop = fx["output_ids"][1];
  r = http->Post("/v2/models/sluice-demo/generate",
                 request({{"max_tokens", 16}, {"stop_token_ids", {stop}}}).dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(reason(nlohmann::json::parse(r->body)), "stop") << r->body;

  auto streamed = request({{"max_tokens", 4}});
  streamed["stream"] = true;
  auto sse = http->PostSse("/v2/models/sluice-demo/generate_stream", streamed.dump());
  ASSERT_TRUE(sse.ok()) << sse.status().ToString();
  ASSERT_EQ((*sse)->status(), 200);
  std::vector<std::string> reasons;
  for (;;) {
    auto ev = (*sse)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    if (!*ev) break;
    reasons.push_back(reason(nlohmann::json::parse((*ev)->data)));
  }
  ASSERT_EQ(reasons.size(), 4u);
  EXPECT_EQ(reasons, (std::vector<std::string>{"", "", "", "length"}));
}

// vLLM's stop_token_ids through the OpenAI API: greedy decoding ends at the first output
// token that is one of them (counted, its text not emitted), as with EOS.
TEST_F(DemoModelTest, StopTokenIdsEndTheGreedyCompletionAtThatToken) {
  auto fx = Fixture();
  const auto& ids = fx["output_ids"];
  ASSERT_GT(ids.size(), 6u);
  const int32_t stop = ids[5];
  size_t first = 0;
  while (ids[first] != stop) ++first;
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", fx["prompt"]}, {"max_tokens", fx["max_new_tokens"]},
                         {"temperature", 0}, {"stop_token_ids", {stop}}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], first + 1);
  const std::string text = j["choices"][0]["text"];
  const std::string full = fx["output_text"];
  EXPECT_LT(text.size(), full.size());
  EXPECT_EQ(full.compare(0, text.size(), text), 0) << text;
}

// A batch of prompts with n samples each, greedy: choice i is prompt i / n's greedy text
// (the first prompt's is the transformers fixture's), indices 0..3 in order, usage counts
// each prompt once; echo prepends each choice's own prompt; streamed, the chunks of each
// index join to the same texts.
TEST_F(DemoModelTest, BatchOfPromptsGivesNChoicesPerPromptInOrder) {
  auto fx = Fixture();
  auto http = Http(server_->http_port());
  const std::string a = fx["prompt"], b = "The meaning of life";
  const int max_tokens = fx["max_new_tokens"];
  auto one = http->Post("/v1/completions", nlohmann::json{{"model", "sluice-demo"}, {"prompt", b},
                                                          {"max_tokens", max_tokens}, {"temperature", 0}}
                                                .dump());
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->status, 200) << one->body;
  const auto b_alone = nlohmann::json::parse(one->body);
  const std::string b_text = b_alone["choices"][0]["text"];
  nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", {a, b}}, {"n", 2}, {"echo", true},
                         {"max_tokens", max_tokens}, {"temperature", 0}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  ASSERT_EQ(j["choices"].size(), 4u) << r->body;
  const std::string want[] = {a + fx["output_text"].get<std::string>(), a + fx["output_text"].get<std::string>(),
                              b + b_text, b + b_text};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    EXPECT_EQ(j["choices"][i]["text"], want[i]) << "choice " << i;
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], fx["prompt_ids"].size() + b_alone["usage"]["prompt_tokens"].get<size_t>());
  body["stream"] = true;
  body["echo"] = false;
  auto sse = http->PostSse("/v1/completions", body.dump());
  ASSERT_TRUE(sse.ok()) << sse.status().ToString();
  std::string texts[4];
  for (;;) {
    auto ev = (*sse)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    if (!*ev || (*ev)->data == "[DONE]") break;
    auto chunk = nlohmann::json::parse((*ev)->data);
    ASSERT_FALSE(chunk.contains("error")) << chunk.dump();
    for (const auto& c : chunk["choices"]) texts[c["index"].get<int>()] += c["text"].get<std::string>();
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ((i < 2 ? a : b) + texts[i], want[i]) << "streamed choice " << i;
}

// Token-id prompts (as lm-eval-harness sends them): the fixture's prompt ids give the
// fixture's greedy text, one prompt or a batch; an id outside the vocabulary is a 400.
TEST_F(DemoModelTest, TokenIdPromptsGiveTheGreedyTextOfTheirText) {
  auto fx = Fixture();
  auto http = Http(server_->http_port());
  for (const nlohmann::json& prompt : {fx["prompt_ids"], nlohmann::json::array({fx["prompt_ids"], fx["prompt_ids"]})}) {
    nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", prompt}, {"max_tokens", fx["max_new_tokens"]},
                           {"temperature", 0}};
    auto r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = nlohmann::json::parse(r->body);
    const size_t prompts = prompt[0].is_array() ? prompt.size() : 1;
    ASSERT_EQ(j["choices"].size(), prompts);
    for (const auto& c : j["choices"]) EXPECT_EQ(c["text"], fx["output_text"]);
    EXPECT_EQ(j["usage"]["prompt_tokens"], prompts * fx["prompt_ids"].size());
  }
  auto r = http->Post("/v1/completions", R"({"model":"sluice-demo","prompt":[1,2,99999]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("99999"), std::string::npos) << r->body;
}

// logit_bias through both APIs: -100 bans the greedy first token, +100 forces a token at
// every step (greedy and sampled); an id outside the vocabulary is a 400 naming it.
TEST_F(DemoModelTest, LogitBiasBansAndForcesTokens) {
  auto fx = Fixture();
  const int32_t first = fx["output_ids"][0];
  auto http = Http(server_->http_port());
  nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", fx["prompt"]}, {"max_tokens", 4},
                         {"temperature", 0}, {"logprobs", 0},
                         {"logit_bias", {{std::to_string(first), -100}}}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  const std::string full = fx["output_text"];
  EXPECT_NE(full.rfind(j["choices"][0]["text"].get<std::string>(), 0), 0u)
      << "the banned greedy token still came first: " << r->body;
  for (double temperature : {0.0, 0.9}) {
    body = {{"model", "sluice-demo"}, {"prompt", "Hello"}, {"max_tokens", 3}, {"temperature", temperature},
            {"logprobs", 0}, {"logit_bias", {{"300", 100}}}};
    r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    auto tokens = nlohmann::json::parse(r->body)["choices"][0]["logprobs"]["tokens"];
    ASSERT_EQ(tokens.size(), 3u) << r->body;
    EXPECT_EQ(tokens[0], tokens[1]);
    EXPECT_EQ(tokens[1], tokens[2]);
  }
  r = http->Post("/v2/models/sluice-demo/generate",
                 R"({"text_input":"Hello","sampling_parameters":"{\"max_tokens\": 3, \"logit_bias\": {\"300\": 100}}"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string text = nlohmann::json::parse(r->body)["text_output"];
  ASSERT_EQ(text.size() % 3, 2u) << text;  // "Hello" + three copies of the forced token
  const std::string piece = text.substr(5, (text.size() - 5) / 3);
  EXPECT_EQ(text, "Hello" + piece + piece + piece);
  r = http->Post("/v1/completions", R"({"model":"sluice-demo","prompt":"x","logit_bias":{"99999":1}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("logit_bias"), std::string::npos) << r->body;
}

// skip_special_tokens (vLLM's; default true) through both APIs: a special token forced at
// every step is left out of the text by default and written with false; a non-boolean is a
// 400 naming it. best_of above n is refused on Triton's generate too.
TEST_F(DemoModelTest, SkipSpecialTokensFalseWritesSpecialTokens) {
  auto http = Http(server_->http_port());
  const std::string special = "<|im_start|>";  // id 1 in the demo tokenizer
  for (const bool skip : {true, false}) {
    nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", "Hello"}, {"max_tokens", 3},
                           {"temperature", 0}, {"logit_bias", {{"1", 100}}}};
    if (!skip) body["skip_special_tokens"] = false;
    auto r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["usage"]["completion_tokens"], 3) << r->body;
    EXPECT_EQ(j["choices"][0]["text"], skip ? "" : special + special + special) << r->body;

    nlohmann::json params = {{"max_tokens", 3}, {"logit_bias", {{"1", 100}}}};
    if (!skip) params["skip_special_tokens"] = "False";  // Triton clients send strings too
    body = {{"text_input", "Hello"}, {"exclude_input_in_output", true},
            {"sampling_parameters", params.dump()}};
    r = http->Post("/v2/models/sluice-demo/generate", body.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(nlohmann::json::parse(r->body)["text_output"], skip ? "" : special + special + special)
        << r->body;
  }
  auto r = http->Post("/v1/completions",
                      R"({"model":"sluice-demo","prompt":"x","skip_special_tokens":"no"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("skip_special_tokens"), std::string::npos) << r->body;
  r = http->Post("/v2/models/sluice-demo/generate",
                 R"({"text_input":"x","sampling_parameters":"{\"n\": 1, \"best_of\": 2}"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 501) << r->body;
  EXPECT_NE(r->body.find("best_of"), std::string::npos) << r->body;
  // The server still answers.
  r = http->Post("/v1/completions", R"({"model":"sluice-demo","prompt":"x","max_tokens":1})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

// The OpenAI endpoints refuse a prompt plus max_tokens over the context, with vLLM's OpenAI
// server's message; Triton's generate keeps the vLLM engine's behaviour (stops at the end of
// the context).
TEST_F(DemoModelTest, MaxTokensPastTheContextIsA400OnTheOpenAiApiOnly) {
  auto http = Http(server_->http_port());
  for (const char* body :
       {R"({"model":"sluice-demo","prompt":"Hello","max_tokens":100000})",
        R"({"model":"sluice-demo","messages":[{"role":"user","content":"Hello"}],"max_tokens":100000})"}) {
    const bool chat = std::string(body).find("messages") != std::string::npos;
    auto r = http->Post(chat ? "/v1/chat/completions" : "/v1/completions", body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << r->body;
    const std::string message = nlohmann::json::parse(r->body)["error"]["message"];
    EXPECT_EQ(message.rfind("This model's maximum context length is 512 tokens. However, you requested ", 0), 0u)
        << message;
    EXPECT_NE(message.find(" in the messages, 100000 in the completion). Please reduce the length"),
              std::string::npos)
        << message;
  }
  // The boundary: prompt + max_tokens equal to the context is allowed, one more is not.
  auto r = http->Post("/v1/completions", R"({"model":"sluice-demo","prompt":"Hello","max_tokens":1})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  const int prompt_tokens = nlohmann::json::parse(r->body)["usage"]["prompt_tokens"];
  for (int extra : {0, 1}) {
    nlohmann::json body = {{"model", "sluice-demo"}, {"prompt", "Hello"}, {"temperature", 0},
                           {"max_tokens", 512 - prompt_tokens + extra}};
    r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, extra == 0 ? 200 : 400) << r->body;
  }
  r = http->Post("/v2/models/sluice-demo/generate",
                 R"({"text_input":"Hello","sampling_parameters":"{\"max_tokens\": 100000, \"temperature\": 0}"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(DemoModelTest, BadSamplingParametersAreClear400s) {
  auto http = Http(server_->http_port());
  for (const char* bad : {R"({"model":"sluice-demo","prompt":"x","temperature":-1})",
                          R"({"model":"sluice-demo","prompt":"x","top_p":0})",
                          R"({"model":"sluice-demo","prompt":"x","n":99})",
                          R"({"model":"sluice-demo"})"}) {
    auto r = http->Post("/v1/completions", bad);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
    EXPECT_TRUE(nlohmann::json::parse(r->body)["error"].contains("message"));
  }
  auto r = http->Post("/v1/completions", R"({"model":"nope","prompt":"x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  // Asking for what Sluice cannot do (a structural tag here) is a 501 naming it, not plain
  // text; a schema the engine cannot compile is a 400 naming the keyword.
  r = http->Post(
      "/v1/chat/completions",
      R"({"model":"sluice-demo","messages":[{"role":"user","content":"x"}],"response_format":{"type":"structural_tag"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 501) << r->body;
  EXPECT_NE(r->body.find("response_format"), std::string::npos) << r->body;
  r = http->Post(
      "/v1/chat/completions",
      R"({"model":"sluice-demo","messages":[{"role":"user","content":"x"}],"guided_json":{"type":"integer","multipleOf":0.5}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("'multipleOf' 0.5 is not supported"), std::string::npos) << r->body;
  // A token id outside the vocabulary reaches the model, which refuses it by name.
  r = http->Post("/v1/completions", R"({"model":"sluice-demo","prompt":"x","stop_token_ids":[99999999]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("stop_token_ids"), std::string::npos) << r->body;
  r = http->Post("/v2/models/sluice-demo/generate",
                 R"({"text_input":"x","stream":true,"exclude_input_in_output":false})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("exclude_input_in_output"), std::string::npos) << r->body;
  r = http->Post("/v2/models/sluice-demo/generate", R"({"text_input":"x","sampling_parameters":"{\"temperature\": NaN}"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  // Sluice's own encoded contract, written by a client as a generate parameter: garbage is a
  // 400 naming it, and the model keeps serving.
  r = http->Post("/v2/models/sluice-demo/generate",
                 R"({"text_input":"x","sluice_llm_request":"SLRQ garbage"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("sluice_llm_request"), std::string::npos) << r->body;
  r = http->Get("/v1/models");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(nlohmann::json::parse(r->body)["data"][0]["id"], "sluice-demo");
}

TEST_F(DemoModelTest, PrefixCacheHitsAndVllmMetricsReachTheMetricsPort) {
  auto http = Http(server_->http_port());
  const std::string prompt =
      "A long prompt shared by two requests, so that its full KV blocks are reused by the "
      "second one through the prefix cache, as vLLM's automatic prefix caching does. ";
  for (int i = 0; i < 2; ++i) {
    auto r = http->Post("/v1/completions", nlohmann::json{{"model", "sluice-demo"}, {"prompt", prompt}, {"max_tokens", 4}}.dump());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  auto value = [](const std::string& text, const std::string& series) {
    auto pos = text.find("\n" + series + "{");
    if (pos == std::string::npos) return -1.0;
    auto space = text.find("} ", pos);
    return std::stod(text.substr(space + 2, text.find('\n', space) - space - 2));
  };
  double hits = -1;
  std::string text;
  // The stub reports its metrics with each heartbeat: wait for the next one.
  for (int i = 0; i < 50 && hits <= 0; ++i) {
    std::this_thread::sleep_for(100ms);
    auto m = Http(server_->metrics_port())->Get("/metrics");
    ASSERT_TRUE(m.ok());
    text = m->body;
    hits = value(text, "vllm:prefix_cache_hits_total");
  }
  EXPECT_GT(hits, 0) << text;
  EXPECT_GT(value(text, "vllm:prompt_tokens_total"), 0);
  EXPECT_NE(text.find("vllm:time_to_first_token_seconds_bucket{"), std::string::npos);
  // The KV cache's size (blocks of 16 tokens), as vLLM's cache_config_info exports it.
  EXPECT_NE(text.find("vllm:cache_config_info{model_name=\"sluice-demo\",engine=\"0\","
                      "block_size=\"16\",num_gpu_blocks=\""), std::string::npos) << text;
  EXPECT_NE(text.find("nv_inference_request_success{model=\"sluice-demo\",version=\"1\"}"), std::string::npos);
}

// sluice-bench against the live server, every API, small and bounded: the JSON report has
// every field `vllm bench serve` reports.
TEST_F(DemoModelTest, SluiceBenchReportsEveryFieldForEveryApi) {
  for (const std::string api : {"completions", "chat", "generate_stream", "grpc"}) {
    TempDir dir;
    const std::string report = dir.path() + "/report.json";
    const std::string cmd = std::string(SLUICE_BINARY_DIR) + "/src/tools/sluice-bench --url http://127.0.0.1:" +
                            std::to_string(server_->http_port()) + " --grpc-url 127.0.0.1:" +
                            std::to_string(server_->grpc_port()) + " -m sluice-demo --api " + api +
                            " -n 6 -c 3 --warmup 1 --input-len 12 --output-len 8 --no-progress --json " + report +
                            " > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << api;
    std::ifstream in(report);
    auto j = nlohmann::json::parse(in, nullptr, false);
    ASSERT_TRUE(j.is_object()) << api;
    EXPECT_EQ(j["completed"], 6) << api;
    EXPECT_EQ(j["failed"], 0) << api;
    EXPECT_EQ(j["total_output_tokens"], 6 * 8) << api << ": ignore_eos + min_tokens honour the output length";
    for (const char* key : {"duration", "request_throughput", "output_throughput", "total_token_throughput"})
      EXPECT_TRUE(j.contains(key)) << api << " " << key;
    for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
      for (const char* stat : {"mean", "median", "p90", "p99"})
        EXPECT_TRUE(j.contains(std::string(stat) + "_" + metric + "_ms")) << api << " " << stat << "_" << metric;
    EXPECT_GT(j["mean_ttft_ms"].get<double>(), 0) << api;
    EXPECT_GT(j["output_throughput"].get<double>(), 0) << api;
  }
}

TEST(LlmLifecycleTest, UnloadDuringEightStreamsEndsEveryStreamAndTheStub) {
  ServerProcess server(DemoArgs({"--model-unload-grace-secs", "1", "--model-kill-timeout-secs", "2"}));
  ASSERT_TRUE(server.started());
  auto stubs = server.Children();
  ASSERT_EQ(stubs.size(), 1u);
  std::vector<std::thread> clients;
  std::atomic<int> ended{0}, started{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      auto http = Http(server.http_port());
      nlohmann::json body = {{"text_input", "Stream number " + std::to_string(i)}, {"stream", true},
                             {"sampling_parameters", nlohmann::json{{"max_tokens", 400}, {"ignore_eos", true}}.dump()}};
      auto sse = http->PostSse("/v2/models/sluice-demo/generate_stream", body.dump());
      if (!sse.ok() || (*sse)->status() != 200) return;
      started++;
      for (;;) {
        auto ev = (*sse)->Next();
        if (!ev.ok()) return;  // no final event: counted as not ended
        if (!*ev) break;       // the stream ended (its last event was final)
      }
      ended++;
    });
  }
  std::this_thread::sleep_for(1500ms);
  auto http = Http(server.http_port());
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Unload(*http, "sluice-demo"), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s + 2s + 1s);
  for (auto& t : clients) t.join();
  EXPECT_EQ(started.load(), 8);
  EXPECT_EQ(ended.load(), started.load()) << "every stream gets a final event";
  EXPECT_EQ(StateOf(*http, "sluice-demo"), "UNAVAILABLE");
  for (pid_t pid : stubs) EXPECT_FALSE(ProcessAlive(pid));
}

// KIND_GPU makes the stub run the engine on the CUDA device of `gpus`; on a machine without
// a usable GPU (CI) the load fails with a 400 that says why, the model is UNAVAILABLE with
// that reason, no stub is left, and the server carries on.
TEST(LlmGpuTest, KindGpuWithoutAGpuIsAClearLoadError) {
  if (std::filesystem::exists("/dev/nvidia0")) GTEST_SKIP() << "this machine has a GPU";
  TestRepository repo;
  repo.Add("gpu_llm",
           "name: \"gpu_llm\"\nbackend: \"vllm\"\n"
           "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]\n"
           "model_transaction_policy { decoupled: true }\n");
  std::filesystem::copy(SourceDir() + "/tests/fixtures/models/qwen2_gpu",
                        repo.path() + "/gpu_llm/1/model");
  repo.Write("gpu_llm/1/model.json", R"({"model": "model", "gpu_memory_utilization": 0.5})");
  ServerProcess server({"--model-repository", repo.path(), "--model-control-mode", "explicit"});
  ASSERT_TRUE(server.started());
  auto http = Http(server.http_port());
  auto r = http->Post("/v2/repository/models/gpu_llm/load", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("KIND_GPU asked, but no GPU is usable"), std::string::npos) << r->body;
  auto row = IndexRow(*http, "gpu_llm");
  EXPECT_EQ(row.value("state", ""), "UNAVAILABLE") << row.dump();
  EXPECT_NE(row.value("reason", "").find("no GPU is usable"), std::string::npos) << row.dump();
  EXPECT_TRUE(server.Children().empty());
  auto live = http->Get("/v2/health/live");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->status, 200);
}

}  // namespace
}  // namespace sluice::testing
