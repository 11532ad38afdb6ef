#pragma once
// Test helper shared by the engine's structured-output tests: the CPU demo model
// (examples/sluice-demo, a 4 M Qwen2 that knows nothing of JSON) in an EngineCore that takes
// grammars, with its tokenizer and its vocabulary of token bytes; what a request produced.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/llm/engine/engine_core.h"
#include "backends/llm/model/model_runner.h"
#include "backends/llm/structured/vocabulary.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "common/status.h"

namespace sluice::llm::testing {

inline const std::filesystem::path kDemoModel =
    std::filesystem::path(SLUICE_SOURCE_DIR) / "examples/sluice-demo/1/model";

struct DemoEngine {
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> eos;  // the model's EOS ids
  std::shared_ptr<const structured::Vocabulary> vocab;
  std::unique_ptr<EngineCore> core;
};

// Hooks between loading and EngineCore::Create: `options` adjusts the engine's options (the
// EOS ids and vocabulary are set), `runner` may wrap the model (a device double, say).
struct DemoEngineHooks {
  std::function<void(EngineOptions&, const Tokenizer&)> options;
  std::function<std::unique_ptr<ModelRunner>(std::unique_ptr<ModelRunner>)> runner;
};

// One CPU thread, 64 KV blocks, 512 tokens of context.
Result<DemoEngine> MakeDemoEngine(const DemoEngineHooks& hooks = {});

// What a request produced: its tokens and text, how it finished, its error.
struct Generated {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  std::optional<int32_t> stop_token;
  Status error;
};

// An on_output callback that appends to `g`, which must outlive the request.
OutputCallback CollectInto(Generated& g);

// Steps the engine until it has no work (at most `max_steps`); a test failure if work is left.
void RunToCompletion(EngineCore& core, int max_steps);

}  // namespace sluice::llm::testing
