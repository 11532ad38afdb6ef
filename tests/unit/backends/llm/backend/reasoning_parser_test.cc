// The reasoning parsers (backends/llm/backend/reasoning_parser.h), vLLM's deepseek_r1 and
// qwen3: the whole-output split of each form of output, the same split however the text is
// cut into deltas (every byte position, one byte at a time), where a request's output starts
// (the prompt's last think tag, Qwen3's enable_thinking), and the typed output's fields.

#include "backends/llm/backend/reasoning_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::llm {
namespace {

using nlohmann::ordered_json;

struct Split {
  std::string reasoning, content;
  bool operator==(const Split&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Split& s) {
  return os << "{reasoning \"" << s.reasoning << "\", content \"" << s.content << "\"}";
}

// `pieces` fed in order, then Finish.
Split Stream(ReasoningStream stream, const std::vector<std::string>& pieces) {
  Split out;
  for (const std::string& piece : pieces) {
    ReasoningStream::Delta d = stream.Feed(piece);
    out.reasoning += d.reasoning;
    out.content += d.content;
  }
  ReasoningStream::Delta d = stream.Finish();
  out.reasoning += d.reasoning;
  out.content += d.content;
  return out;
}

struct Case {
  std::string output;
  Split in_reasoning;  // the split of a stream that starts in the reasoning
};

// vLLM's extract_reasoning for these outputs (qwen3 with thinking on, deepseek_r1).
const std::vector<Case> kCases = {
    {"<think>\nI add.\n</think>\n\n4", {"\nI add.\n", "\n\n4"}},  // Qwen3 writes <think>
    {"I add.\n</think>\n\n4", {"I add.\n", "\n\n4"}},             // the template opened it
    {"I add, and add", {"I add, and add", ""}},                   // cut before </think>
    {"\n <think>a</think>b", {"a", "b"}},                         // whitespace before <think>
    {"</think>", {"", ""}},
    {"<think></think>", {"", ""}},
    {"<thi", {"<thi", ""}},  // a tag's start at the end is text
    {"a</thin", {"a</thin", ""}},
    {"a<</think>b", {"a<", "b"}},                // a '<' before the tag
    {"a</think></think>b", {"a", "</think>b"}},  // only the first </think> ends it
    {"a</think>b<think>c", {"a", "b<think>c"}},
    {"x<think>y</think>z", {"x<think>y", "z"}},  // <think> past the start stays in the text
    {"\xc3\xa9t\xc3\xa9</think>\xe2\x82\xac", {"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"}},
    {"", {"", ""}},
};

TEST(ReasoningStreamTest, WholeOutputsSplitAsVllm) {
  for (const Case& c : kCases) {
    EXPECT_EQ(Stream(ReasoningStream::InReasoning(), {c.output}), c.in_reasoning) << c.output;
    EXPECT_EQ(Stream(ReasoningStream::ContentOnly(), {c.output}), (Split{"", c.output}))
        << c.output;
  }
}

// Tags split across deltas (a tokenizer without <think> tokens) split the same way: two
// deltas cut at every byte, three cut at every pair, and one byte at a time.
TEST(ReasoningStreamTest, EveryCutOfTheStreamGivesTheSameSplit) {
  for (const Case& c : kCases) {
    const std::string& s = c.output;
    for (size_t i = 0; i <= s.size(); ++i) {
      EXPECT_EQ(Stream(ReasoningStream::InReasoning(), {s.substr(0, i), s.substr(i)}),
                c.in_reasoning)
          << s << " cut at " << i;
      for (size_t j = i; j <= s.size(); ++j) {
        EXPECT_EQ(Stream(ReasoningStream::InReasoning(),
                         {s.substr(0, i), s.substr(i, j - i), s.substr(j)}),
                  c.in_reasoning)
            << s << " cut at " << i << " and " << j;
      }
    }
    std::vector<std::string> bytes;
    for (char ch : s) bytes.emplace_back(1, ch);
    EXPECT_EQ(Stream(ReasoningStream::InReasoning(), bytes), c.in_reasoning) << s;
    EXPECT_EQ(Stream(ReasoningStream::ContentOnly(), bytes), (Split{"", s})) << s;
  }
}

// A stream gives out text as soon as it cannot be the start of a tag: reasoning is not held
// back for the whole output, only a possible tag's first bytes are.
TEST(ReasoningStreamTest, OnlyAPossibleTagIsHeldBack) {
  ReasoningStream s = ReasoningStream::InReasoning();
  EXPECT_EQ(s.Feed("  ").reasoning, "");  // may precede <think>
  EXPECT_EQ(s.Feed("<thi").reasoning, "");
  EXPECT_EQ(s.Feed("nk>Step one").reasoning, "Step one");
  EXPECT_EQ(s.Feed(" and two</").reasoning, " and two");
  ReasoningStream::Delta d = s.Feed("think>Done");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Done");
  EXPECT_EQ(s.Feed("</think> stays").content, "</think> stays");
  EXPECT_TRUE(s.has_reasoning());
  ReasoningStream c = ReasoningStream::ContentOnly();
  EXPECT_EQ(c.Feed("<think").content, "<think");
  EXPECT_FALSE(c.has_reasoning());
}

TEST(ReasoningParserTest, OnlyVllmsParserNamesAreAccepted) {
  ASSERT_TRUE(ReasoningParser::Create("deepseek_r1").ok());
  ASSERT_TRUE(ReasoningParser::Create("qwen3").ok());
  EXPECT_EQ(ReasoningParser::Create("qwen3")->name(), "qwen3");
  EXPECT_EQ(ReasoningParser::Create("deepseek_r1")->end_tag(), "</think>");
  for (const char* bad : {"", "granite", "Qwen3", "deepseek-r1"}) {
    auto p = ReasoningParser::Create(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(p.status().message(),
              "reasoning parser '" + std::string(bad) + "' is not supported (deepseek_r1, qwen3)");
  }
}

TEST(ReasoningParserTest, ThePromptsLastThinkTagDecides) {
  EXPECT_FALSE(PromptEndsReasoning("<|im_start|>assistant\n"));
  EXPECT_FALSE(PromptEndsReasoning("<｜Assistant｜><think>\n"));
  EXPECT_TRUE(PromptEndsReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_TRUE(PromptEndsReasoning("user wrote </think> once"));
  EXPECT_FALSE(PromptEndsReasoning("</think> then <think>"));
}

// Where a request's output starts: the prompt closed the reasoning (content only), Qwen3 told
// not to think (content only), else inside the reasoning.
TEST(ReasoningParserTest, StartFollowsThePromptAndEnableThinking) {
  const ReasoningParser qwen = *ReasoningParser::Create("qwen3");
  const ReasoningParser r1 = *ReasoningParser::Create("deepseek_r1");
  const ordered_json none = ordered_json::object();
  const std::string open = "<|im_start|>assistant\n";
  const std::string closed = open + "<think>\n\n</think>\n\n";
  auto has_reasoning = [](const ReasoningParser& p, const std::string& prompt,
                          const ordered_json& kwargs) {
    return p.Start(prompt, kwargs).has_reasoning();
  };
  for (const ReasoningParser* p : {&qwen, &r1}) {
    EXPECT_TRUE(has_reasoning(*p, open, none)) << p->name();
    EXPECT_FALSE(has_reasoning(*p, closed, none)) << p->name();
    EXPECT_TRUE(has_reasoning(*p, open, {{"enable_thinking", true}})) << p->name();
  }
  // Python's truthiness, as vLLM's Qwen3 parser reads chat_template_kwargs["enable_thinking"].
  for (const ordered_json& off : {ordered_json(false), ordered_json(0), ordered_json(nullptr),
                                  ordered_json(""), ordered_json::array()}) {
    EXPECT_FALSE(has_reasoning(qwen, open, {{"enable_thinking", off}})) << off.dump();
    EXPECT_TRUE(has_reasoning(r1, open, {{"enable_thinking", off}})) << off.dump();
  }
  EXPECT_TRUE(has_reasoning(qwen, open, {{"enable_thinking", "no"}}));  // a non-empty string
  EXPECT_EQ(Stream(qwen.Start(closed, none), {"<think>a</think>b"}),
            (Split{"", "<think>a</think>b"}));
}

// One typed output of `text` through `stream`.
llm_contract::LlmOutput Typed(
    ReasoningStream& stream, std::string text,
    llm_contract::FinishReason finish = llm_contract::FinishReason::kNone) {
  llm_contract::LlmOutput out;
  out.text = std::move(text);
  out.finish_reason = finish;
  SplitReasoning(stream, out);
  return out;
}

// The typed output: reasoning and content apart, the held-back text with the finish.
TEST(ReasoningParserTest, SplitReasoningFillsTheTypedOutput) {
  ReasoningStream s = ReasoningStream::InReasoning();
  const llm_contract::LlmOutput a = Typed(s, "<think>Let me see</thi");
  EXPECT_EQ(a.reasoning, "Let me see");
  EXPECT_EQ(a.text, "");
  EXPECT_TRUE(a.has_reasoning);
  // Cut inside a would-be tag: the held-back bytes were reasoning.
  const llm_contract::LlmOutput b = Typed(s, "nk", llm_contract::FinishReason::kLength);
  EXPECT_EQ(b.reasoning, "</think");
  EXPECT_EQ(b.text, "");
  ReasoningStream c = ReasoningStream::ContentOnly();
  const llm_contract::LlmOutput d = Typed(c, "Hi");
  EXPECT_EQ(d.text, "Hi");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_FALSE(d.has_reasoning);
}

}  // namespace
}  // namespace sluice::llm
