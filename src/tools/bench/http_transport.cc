#include "tools/bench/http_transport.h"

namespace sluice::bench {

namespace {

class HttpTransport : public Transport {
 public:
  explicit HttpTransport(const HttpTransportConfig& config)
      : config_(config),
        path_(RequestPath(config.api, config.model)),
        streamed_(IsStreaming(config.api, config.sampling.stream)),
        client_(client::HttpClient::Create(config.endpoint, config.http)) {}

  RequestResult Send(const BenchRequest& request, Clock::time_point bench_start) override {
    std::string body = BuildRequestBody(config_.api, config_.model, request, config_.sampling);
    Clock::time_point start = Clock::now();
    RequestTimeline timeline(start, streamed_, request.prompt_tokens, config_.keep_text);
    auto fail = [&](std::string error) {
      return timeline.Fail(Clock::now(), bench_start, std::move(error));
    };
    if (!streamed_) {
      auto res = client_->Post(path_, body);
      if (!res.ok()) return fail(res.status().ToString());
      if (res->status != 200) return fail(ErrorFromBody(res->status, res->body));
      Clock::time_point end = Clock::now();
      ChunkInfo info = ParseChunk(config_.api, res->body);
      if (info.kind == ChunkInfo::Kind::kError) return fail(info.error);
      if (config_.sampling.raw_body.has_value()) {
        timeline.OnResponse(end);
      } else {
        timeline.OnChunk(end, info.text);
      }
      timeline.OnUsage(info.prompt_tokens, info.completion_tokens);
      return timeline.Finish(end, bench_start);
    }
    auto stream = client_->PostSse(path_, body);
    if (!stream.ok()) return fail(stream.status().ToString());
    client::SseStream& sse = **stream;
    if (sse.status() != 200) {
      auto err_body = sse.ReadBody();
      return fail(ErrorFromBody(sse.status(), err_body.ok() ? *err_body : ""));
    }
    const bool openai = config_.api == Api::kChat || config_.api == Api::kCompletions;
    bool done = false;
    while (true) {
      auto ev = sse.Next();
      if (!ev.ok()) return fail(ev.status().ToString());
      if (!ev->has_value()) break;
      Clock::time_point t = Clock::now();
      ChunkInfo info = ParseChunk(config_.api, (*ev)->data);
      switch (info.kind) {
        case ChunkInfo::Kind::kDone:
          done = true;
          break;
        case ChunkInfo::Kind::kError:
          return fail(info.error);
        case ChunkInfo::Kind::kData:
          if (config_.sampling.raw_body.has_value()) {
            timeline.OnResponse(t);
          } else {
            timeline.OnChunk(t, info.text);
          }
          if (openai) {
            timeline.OnUsage(info.prompt_tokens, info.completion_tokens);  // the usage chunk's totals
          } else {
            timeline.OnUsage(info.prompt_tokens, std::nullopt);
            timeline.AddCompletionTokens(info.completion_tokens);  // this event's own tokens
          }
          break;
      }
    }
    if (openai && !done) return fail("stream ended without data: [DONE]");
    return timeline.Finish(Clock::now(), bench_start);
  }

 private:
  static std::string ErrorFromBody(int status, const std::string& body) {
    ChunkInfo info = ParseChunk(Api::kGenerate, body);
    std::string msg = info.kind == ChunkInfo::Kind::kError ? info.error : body.substr(0, 200);
    return "HTTP " + std::to_string(status) + ": " + msg;
  }

  HttpTransportConfig config_;
  std::string path_;
  bool streamed_;
  std::unique_ptr<client::HttpClient> client_;
};

}  // namespace

std::unique_ptr<Transport> MakeHttpTransport(const HttpTransportConfig& config) {
  return std::make_unique<HttpTransport>(config);
}

}  // namespace sluice::bench
