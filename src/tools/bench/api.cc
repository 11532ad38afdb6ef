#include "tools/bench/api.h"

namespace sluice::bench {

Result<Api> ParseApi(std::string_view name) {
  if (name == "chat" || name == "openai-chat") return Api::kChat;
  if (name == "completions" || name == "openai") return Api::kCompletions;
  if (name == "generate") return Api::kGenerate;
  if (name == "generate_stream" || name == "generate-stream") return Api::kGenerateStream;
  if (name == "grpc" || name == "grpc-stream") return Api::kGrpcStream;
  return InvalidArgument("api '" + std::string(name) +
                         "': expected chat, completions, generate, generate_stream or grpc");
}

std::string_view ApiName(Api api) {
  switch (api) {
    case Api::kChat: return "chat";
    case Api::kCompletions: return "completions";
    case Api::kGenerate: return "generate";
    case Api::kGenerateStream: return "generate_stream";
    case Api::kGrpcStream: return "grpc";
  }
  return "?";
}

bool IsStreaming(Api api, bool openai_stream) {
  switch (api) {
    case Api::kChat:
    case Api::kCompletions: return openai_stream;
    case Api::kGenerate: return false;
    case Api::kGenerateStream:
    case Api::kGrpcStream: return true;
  }
  return false;
}

std::string RequestPath(Api api, std::string_view model) {
  switch (api) {
    case Api::kChat: return "/v1/chat/completions";
    case Api::kCompletions: return "/v1/completions";
    case Api::kGenerate: return "/v2/models/" + std::string(model) + "/generate";
    case Api::kGenerateStream: return "/v2/models/" + std::string(model) + "/generate_stream";
    case Api::kGrpcStream: return "";
  }
  return "";
}

nlohmann::json SamplingParameters(const BenchRequest& request, const SamplingOptions& options) {
  nlohmann::json p = nlohmann::json::object();
  p["max_tokens"] = request.max_tokens;
  if (options.send_min_tokens) p["min_tokens"] = request.max_tokens;
  if (options.ignore_eos) p["ignore_eos"] = true;
  p["temperature"] = options.temperature;
  if (options.seed) p["seed"] = *options.seed;
  return p;
}

std::string BuildRequestBody(Api api, std::string_view model, const BenchRequest& request,
                             const SamplingOptions& options) {
  if (options.raw_body.has_value()) return options.raw_body->dump();
  nlohmann::json body = nlohmann::json::object();
  switch (api) {
    case Api::kChat:
    case Api::kCompletions: {
      body = SamplingParameters(request, options);
      body["model"] = std::string(model);
      if (api == Api::kChat) {
        body["messages"] = nlohmann::json::array(
            {{{"role", "user"}, {"content", request.prompt}}});
      } else {
        body["prompt"] = request.prompt;
      }
      body["stream"] = options.stream;
      if (options.stream) body["stream_options"] = {{"include_usage", true}};
      body.update(options.extra);
      break;
    }
    case Api::kGenerate:
    case Api::kGenerateStream: {
      nlohmann::json params = SamplingParameters(request, options);
      params["stream"] = api == Api::kGenerateStream;
      params.update(options.extra);
      body["text_input"] = request.prompt;
      body["parameters"] = std::move(params);
      break;
    }
    case Api::kGrpcStream:
      break;
  }
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

std::optional<int64_t> IntField(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::string ErrorText(const nlohmann::json& error) {
  if (error.is_string()) return error.get<std::string>();
  if (error.is_object()) {
    if (auto m = error.find("message"); m != error.end() && m->is_string()) {
      return m->get<std::string>();
    }
  }
  return error.dump();
}

void ReadUsage(const nlohmann::json& obj, ChunkInfo* info) {
  auto usage = obj.find("usage");
  if (usage == obj.end() || !usage->is_object()) return;
  info->prompt_tokens = IntField(*usage, "prompt_tokens");
  info->completion_tokens = IntField(*usage, "completion_tokens");
}

}  // namespace

ChunkInfo ParseChunk(Api api, std::string_view data) {
  ChunkInfo info;
  if (data == "[DONE]") {
    info.kind = ChunkInfo::Kind::kDone;
    return info;
  }
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    info.kind = ChunkInfo::Kind::kError;
    info.error = "malformed chunk: " + std::string(data.substr(0, 200));
    return info;
  }
  if (auto err = j.find("error"); err != j.end() && !err->is_null()) {
    info.kind = ChunkInfo::Kind::kError;
    info.error = ErrorText(*err);
    return info;
  }
  switch (api) {
    case Api::kChat:
    case Api::kCompletions: {
      ReadUsage(j, &info);
      auto choices = j.find("choices");
      if (choices == j.end() || !choices->is_array() || choices->empty()) break;
      const nlohmann::json& c = (*choices)[0];
      if (!c.is_object()) break;
      const nlohmann::json* holder = &c;
      if (api == Api::kChat) {
        auto delta = c.find("delta");
        if (delta == c.end()) delta = c.find("message");  // non-streamed reply
        if (delta == c.end() || !delta->is_object()) break;
        holder = &*delta;
        auto content = holder->find("content");
        if (content != holder->end() && content->is_string()) info.text = *content;
      } else {
        auto text = c.find("text");
        if (text != c.end() && text->is_string()) info.text = *text;
      }
      break;
    }
    case Api::kGenerate:
    case Api::kGenerateStream:
    case Api::kGrpcStream: {
      auto text = j.find("text_output");
      if (text != j.end()) {
        if (text->is_string()) {
          info.text = *text;
        } else if (text->is_array() && !text->empty() && (*text)[0].is_string()) {
          info.text = (*text)[0];
        }
      }
      info.prompt_tokens = IntField(j, "num_input_tokens");
      info.completion_tokens = IntField(j, "num_output_tokens");
      break;
    }
  }
  return info;
}

}  // namespace sluice::bench
