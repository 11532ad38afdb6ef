#include "support/demo_engine.h"

#include <gtest/gtest.h>

#include "backends/llm/model/model_loader.h"

namespace sluice::llm::testing {

Result<DemoEngine> MakeDemoEngine(const DemoEngineHooks& hooks) {
  DemoEngine d;
  ASSIGN_OR_RETURN(d.tok, Tokenizer::FromFile((kDemoModel / "tokenizer.json").string(),
                                              (kDemoModel / "tokenizer_config.json").string()));
  ASSIGN_OR_RETURN(
      std::unique_ptr<DecoderModel> model,
      LoadModel(kDemoModel, {.cpu_threads = 1, .num_blocks = 64, .max_model_len = 512}));
  EngineOptions o;
  o.eos_token_ids = model->generation_config().eos_token_ids;
  d.eos = o.eos_token_ids;
  ASSIGN_OR_RETURN(d.vocab, structured::Vocabulary::FromTokenizer(*d.tok, o.eos_token_ids));
  o.vocabulary = d.vocab;
  if (hooks.options) hooks.options(o, *d.tok);
  std::unique_ptr<ModelRunner> runner = std::move(model);
  if (hooks.runner) runner = hooks.runner(std::move(runner));
  ASSIGN_OR_RETURN(d.core, EngineCore::Create(std::move(runner), std::move(o)));
  return d;
}

OutputCallback CollectInto(Generated& g) {
  return [&g](RequestOutput o) {
    for (const SequenceOutput& s : o.seqs) {
      g.tokens.insert(g.tokens.end(), s.token_ids.begin(), s.token_ids.end());
      g.text += s.text;
      if (s.finished()) {
        g.finish = s.finish_reason;
        g.stop_token = s.stop_token;
      }
    }
    if (o.finished) g.error = o.error;
  };
}

void RunToCompletion(EngineCore& core, int max_steps) {
  for (int i = 0; i < max_steps && core.HasWork(); ++i) core.Step();
  EXPECT_FALSE(core.HasWork()) << "work left after " << max_steps << " steps";
}

}  // namespace sluice::llm::testing
