// Writes the binary seeds of the fuzz corpus from Sluice's own encoders, so that they stay
// valid when the formats change: IPC frames of every message type (corpus/ipc_message/),
// gRPC ModelInferRequests (corpus/grpc_infer/) and the binary LLM contract
// (corpus/llm_contract/: a selector byte, 0 request / 1 output, then the encoding). Usage:
// fuzz_write_seeds <fuzz/corpus dir>.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "grpc_service.pb.h"
#include "ipc/llm_contract_codec.h"
#include "ipc/message.h"

namespace {

using namespace sluice;

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

Tensor BytesTensor(std::string name, std::vector<std::string> elements) {
  Tensor t{std::move(name), DataType::kBytes, {static_cast<int64_t>(elements.size())}, ""};
  for (const auto& e : elements) AppendBytesElement(t.data, e);
  return t;
}

void WriteIpcSeeds(const std::string& dir) {
  InferRequest request;
  request.model_name = "sluice-demo";
  request.model_version = 1;
  request.id = "req-1";
  request.parameters = {{"max_tokens", int64_t{8}}, {"temperature", 0.5}, {"stream", true}, {"note", std::string("x")}};
  request.inputs.push_back(BytesTensor("text_input", {"Once upon a time"}));
  request.inputs.push_back(Tensor{"INPUT0", DataType::kFp32, {2, 2}, std::string(16, '\x01')});
  request.requested_outputs = {"text_output"};

  ResponseEvent event;
  event.has_response = true;
  event.final = true;
  event.response.model_name = "sluice-demo";
  event.response.model_version = 1;
  event.response.id = "req-1";
  event.response.outputs.push_back(BytesTensor("text_output", {"there was", ""}));
  ResponseEvent failed;
  failed.status = InvalidArgument("input 'x': bad");
  failed.final = true;

  ipc::InitMessage init;
  init.instance.model_name = "identity";
  init.instance.model_version = 1;
  init.instance.config.set_name("identity");
  init.instance.model_dir = "identity";
  init.instance.version_dir = "identity/1";
  init.instance.cpu_threads = 2;

  const std::vector<std::pair<std::string, ipc::Message>> messages = {
      {"init", {0, init}},
      {"init_result", {0, ipc::InitResultMessage{Unavailable("no GPU")}}},
      {"request", {7, ipc::RequestMessage{request}}},
      {"cancel", {7, ipc::CancelMessage{}}},
      {"response", {7, ipc::ResponseMessage{event}}},
      {"response_error", {7, ipc::ResponseMessage{failed}}},
      {"heartbeat", {0, ipc::HeartbeatMessage{42}}},
      {"heartbeat_ack", {0, ipc::HeartbeatAckMessage{42, {{"vllm:kv_cache_usage_perc", MetricType::kGauge, "KV usage", {{{{"model_name", "m"}}, 0.5, {}}}}}, {}}}},
      {"shutdown", {0, ipc::ShutdownMessage{}}},
      {"shm_release", {0, ipc::ShmReleaseMessage{{{0, 4096}, {65536, 128}}}}},
  };
  for (const auto& [name, message] : messages) {
    auto frame = ipc::EncodeMessage(message, nullptr);
    if (!frame.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), frame.status().message().c_str());
      std::exit(1);
    }
    Write(dir + "/" + name + ".bin", *frame);
  }

  // A tensor in shared memory: over the inline limit, in an area of the fuzzer's size.
  std::vector<char> area(1u << 20);
  ipc::ShmAllocator allocator(area.size());
  ipc::ShmOut shm{area, &allocator};
  InferRequest big = request;
  big.inputs = {Tensor{"INPUT0", DataType::kUint8, {static_cast<int64_t>(ipc::kInlineTensorLimit + 1)},
                       std::string(ipc::kInlineTensorLimit + 1, 'x')}};
  auto frame = ipc::EncodeMessage(ipc::Message{9, ipc::RequestMessage{big}}, &shm);
  if (!frame.ok()) std::exit(1);
  Write(dir + "/request_shm.bin", *frame);
}

void WriteGrpcSeeds(const std::string& dir) {
  inference::ModelInferRequest raw;
  raw.set_model_name("identity");
  raw.set_model_version("1");
  raw.set_id("r1");
  auto* in = raw.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(2);
  raw.add_raw_input_contents(std::string(8, '\0'));
  auto* out = raw.add_outputs();
  out->set_name("OUTPUT0");
  (*raw.mutable_parameters())["sequence_id"].set_int64_param(3);
  (*raw.mutable_parameters())["flag"].set_bool_param(true);
  Write(dir + "/raw_fp32.bin", raw.SerializeAsString());

  inference::ModelInferRequest typed;
  typed.set_model_name("m");
  auto add = [&](const char* name, const char* dt) {
    auto* t = typed.add_inputs();
    t->set_name(name);
    t->set_datatype(dt);
    t->add_shape(1);
    return t->mutable_contents();
  };
  add("b", "BOOL")->add_bool_contents(true);
  add("i8", "INT8")->add_int_contents(-5);
  add("u16", "UINT16")->add_uint_contents(7);
  add("i64", "INT64")->add_int64_contents(-9);
  add("u64", "UINT64")->add_uint64_contents(11);
  add("f32", "FP32")->add_fp32_contents(1.5f);
  add("f64", "FP64")->add_fp64_contents(2.5);
  add("s", "BYTES")->add_bytes_contents("text");
  (*typed.mutable_parameters())["x"].set_string_param("y");
  (*typed.mutable_parameters())["d"].set_double_param(0.25);
  (*typed.mutable_parameters())["u"].set_uint64_param(5);
  Write(dir + "/typed.bin", typed.SerializeAsString());

  inference::ModelInferRequest text;
  text.set_model_name("sluice-demo");
  auto* t = text.add_inputs();
  t->set_name("text_input");
  t->set_datatype("BYTES");
  t->add_shape(1);
  std::string bytes;
  AppendBytesElement(bytes, "Once upon a time");
  text.add_raw_input_contents(bytes);
  Write(dir + "/raw_bytes.bin", text.SerializeAsString());
}

void WriteLlmContractSeeds(const std::string& dir) {
  using namespace llm_contract;
  LlmRequest chat;
  chat.prompt.kind = Prompt::Kind::kChat;
  chat.prompt.messages = {{.role = "system", .content = "Be brief."},
                          {.role = "user", .content = "Tell me a fortune.", .name = "ann"}};
  chat.sampling.temperature = 0.7;
  chat.sampling.seed = 1234;
  chat.sampling.stop = {"\n\n"};
  chat.sampling.stop_token_ids = {2, 151645};
  chat.sampling.logit_bias = {{5, -100}};
  chat.sampling.logprobs = 2;
  chat.sampling.structured_output =
      StructuredOutput{StructuredOutput::Kind::kJsonSchema,
                       R"({"type":"object","properties":{"a":{"type":"integer"}}})"};
  chat.prompt.chat_template_kwargs = R"({"enable_thinking":false})";
  chat.output.stream = chat.output.exclude_input_in_output = chat.output.typed_responses = true;
  LlmRequest tokens;
  tokens.prompt.kind = Prompt::Kind::kTokenIds;
  tokens.prompt.token_ids = {3281, 1317, 261, 590};
  tokens.task = Task::kDetokenize;
  LlmOutput out;
  out.text = "Once";
  out.token_ids = {3281};
  out.finish_reason = FinishReason::kLength;
  out.cumulative_logprob = -0.25;
  out.logprobs = {
      {{3281, "Once", "Once", -0.25f}, {{3281, "Once", "Once", -0.25f}, {11, ",", ",", -2.5f}}}};
  out.num_prompt_tokens = 4;
  out.num_output_tokens = 1;
  out.reasoning = "Hm.";
  out.has_reasoning = true;
  Write(dir + "/request_chat.bin", std::string(1, '\0') + *ipc::EncodeLlmRequest(chat));
  LlmRequest choice;
  choice.prompt.text = "Yes or no?";
  choice.sampling.structured_output =
      StructuredOutput{StructuredOutput::Kind::kChoice, R"(["yes","no"])"};
  Write(dir + "/request_choice.bin", std::string(1, '\0') + *ipc::EncodeLlmRequest(choice));
  Write(dir + "/request_token_ids.bin", std::string(1, '\0') + *ipc::EncodeLlmRequest(tokens));
  Write(dir + "/output_logprobs.bin", std::string(1, '\1') + *ipc::EncodeLlmOutput(out));
  // Tool calling: a conversation with a call and its result, and the pieces of a parsed call.
  LlmRequest tools;
  tools.prompt.kind = Prompt::Kind::kChat;
  tools.prompt.messages = {
      {.role = "user", .content = "Weather in Paris?"},
      {.role = "assistant", .tool_calls = {{"call_1", "get_weather", R"({"city": "Paris"})"}}},
      {.role = "tool", .content = "18C", .tool_call_id = "call_1"}};
  tools.tools = {{"get_weather", "The weather of a city.",
                  R"({"type":"object","properties":{"city":{"type":"string"}}})", true}};
  tools.tool_choice = {ToolChoice::Kind::kFunction, "get_weather"};
  Write(dir + "/request_tools.bin", std::string(1, '\0') + *ipc::EncodeLlmRequest(tools));
  LlmOutput calls;
  calls.finish_reason = FinishReason::kToolCalls;
  calls.tool_calls = {{0, "get_weather", "", "aB3dE6gH9"}, {0, "", R"({"city":)"}};
  Write(dir + "/output_tool_calls.bin", std::string(1, '\1') + *ipc::EncodeLlmOutput(calls));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <fuzz/corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  WriteIpcSeeds(root + "/ipc_message");
  WriteGrpcSeeds(root + "/grpc_infer");
  WriteLlmContractSeeds(root + "/llm_contract");
  return 0;
}
