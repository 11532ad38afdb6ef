// ChatTemplate: the real Qwen2/2.5/3, Llama 3/3.1 and Mistral templates render every
// conversation exactly as Hugging Face transformers' apply_chat_template does, tools included
// (reference outputs from tests/tools/chat_template_reference.py, checked live by
// tests/python/test_reference_fixtures.py), and the sandbox limits hold.

#include "backends/llm/chat_template/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "backends/llm/tokenizer/tokenizer.h"
#include "support/tokenizer_test_util.h"

namespace sluice::llm {
namespace {

using json = nlohmann::ordered_json;
using testing::FixturePath;
using testing::ReadAll;

json ReadOrdered(const std::string& path) {
  return json::parse(ReadAll(path));
}

TEST(ChatTemplateReference, RealTemplatesMatchHuggingFaceJinjaByteForByte) {
  const json cases = ReadOrdered(FixturePath("chat_templates/reference.json"));
  const json conversations = ReadOrdered(FixturePath("chat_templates/conversations.json"));
  std::map<std::string, json> by_name;
  for (const auto& c : conversations) by_name[c["name"].get<std::string>()] = c;
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  ASSERT_GE(cases.size(), 90u);
  int outputs = 0;
  std::map<std::string, int> tool_outputs;  // template -> outputs of its tools branch
  for (const auto& c : cases) {
    const std::string name = c["template"];
    SCOPED_TRACE(name + " / " + c["conversation"].get<std::string>() +
                 (c["add_generation_prompt"].get<bool>() ? " / generation prompt" : ""));
    if (!templates.count(name)) {
      auto t = ChatTemplate::Parse(ReadAll(FixturePath("chat_templates/" + name + ".jinja")));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      templates[name] = std::move(t).value();
    }
    const json& conv = by_name.at(c["conversation"].get<std::string>());
    auto out = templates[name]->Render(conv["messages"], c["add_generation_prompt"].get<bool>(),
                                       c["extra"]);
    if (c.contains("output")) {
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, c["output"].get<std::string>());
      ++outputs;
      if (c["extra"].contains("tools") &&
          c["output"].get<std::string>().find("<tools>") != std::string::npos) {
        ++tool_outputs[name];
      }
    } else {
      ASSERT_FALSE(out.ok()) << "rendered, but the reference failed with " << c["error_type"]
                             << ": " << c["error"];
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
      // raise_exception(message) is the template's own error: the same message. Any other
      // error (jinja2's UndefinedError, ...) only has to be an error.
      if (c["error_type"] == "TemplateError") {
        EXPECT_EQ(out.status().message(), c["error"].get<std::string>());
      }
    }
  }
  EXPECT_GE(outputs, 80);
  // The Qwen tools branch (tool list, tool calls, tool responses) is covered.
  EXPECT_GE(tool_outputs["qwen2_5"], 8);
  EXPECT_GE(tool_outputs["qwen3"], 8);
}

TEST(ChatTemplateReference, QwenTokenizerConfigTemplateIsTheFixture) {
  REQUIRE_QWEN_TOKENIZER();
  const std::string dir = testing::QwenDir();
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->chat_template(), ReadAll(FixturePath("chat_templates/qwen3.jinja")));
  auto t = ChatTemplate::Parse((*tok)->chat_template());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto out = (*t)->Render(json::parse(R"([{"role":"user","content":"hi"}])"), true,
                          {{"eos_token", (*tok)->eos_token()}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

// Regression: a client's "tool_calls": null reached Llama 3.1's template as none ("length of
// none") and a "reasoning" field was not rendered; transformers drops null keys and aliases
// the reasoning fields before rendering (expected output from apply_chat_template).
TEST(ChatTemplateMessages, NullKeysDroppedAndReasoningAliasedLikeTransformers) {
  auto t = ChatTemplate::Parse("{% for m in messages %}{{ m | tojson }}\n{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto out = (*t)->Render(json::parse(R"([
      {"role": "user", "content": "hi", "name": null},
      {"role": "assistant", "content": "x", "tool_calls": null, "reasoning": "r"},
      {"role": "assistant", "thinking": "t", "content": "y", "reasoning_content": "rc"}])"),
                          false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out,
            "{\"role\": \"user\", \"content\": \"hi\"}\n"
            "{\"thinking\": \"r\", \"role\": \"assistant\", \"content\": \"x\", \"reasoning\": "
            "\"r\", \"reasoning_content\": \"r\"}\n"
            "{\"thinking\": \"t\", \"role\": \"assistant\", \"content\": \"y\", "
            "\"reasoning_content\": \"rc\"}\n");
}

std::string RenderSource(const std::string& src, const json& extra = json::object(),
                         ChatTemplateLimits limits = {}) {
  auto t = ChatTemplate::Parse(src, limits);
  if (!t.ok()) return "PARSE ERROR: " + t.status().ToString();
  auto out = (*t)->Render(json::array(), false, extra);
  if (!out.ok()) return "ERROR: " + out.status().ToString();
  return *out;
}

TEST(ChatTemplateLanguage, ExpressionsFiltersAndLoops) {
  EXPECT_EQ(RenderSource("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 'a' ~ 1 }}|{{ 'ab' * 2 }}"),
            "7|3|2|a1|abab");
  // Powers as Python's, -1 to an odd power included (a loop once stopped at 1 on the way).
  EXPECT_EQ(RenderSource("{{ 2 ** 10 }}|{{ (-1) ** 3 }}|{{ (-1) ** 4 }}|{{ 0 ** 0 }}|{{ 0 ** 5 }}|"
                         "{{ 1 ** 99 }}|{{ (-2) ** 3 }}|{{ 2 ** -1 }}"),
            "1024|-1|1|1|0|1|-8|0.5");
  EXPECT_EQ(RenderSource("{{ [1,2,3][::-1] }}|{{ 'hello'[1:3] }}|{{ [1,2,3][-1] }}"),
            "[3, 2, 1]|el|3");
  EXPECT_EQ(
      RenderSource(
          "{% for x in [1,2,3] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
          "{{ loop.length }};{% endfor %}"),
      "01TrueFalse3;12FalseFalse3;23FalseTrue3;");
  EXPECT_EQ(RenderSource("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(RenderSource("{% for x in range(10) if x is odd %}{% if x > 6 %}{% break %}{% endif "
                         "%}{{ x }}{% endfor %}"),
            "135");
  EXPECT_EQ(
      RenderSource("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
                   "{% set local = i %}{% endfor %}{{ ns.n }}{{ local is defined }}"),
      "3False");
  EXPECT_EQ(
      RenderSource(
          "{{ '  x  ' | trim }}|{{ 'AbC' | lower }}{{ 'abc' | upper }}|{{ [1,2] | length }}|"
          "{{ none | default('d') }}{{ '' | default('e', true) }}|{{ ['a','b'] | join(', ') }}|"
          "{{ 'a-b' | replace('-', '+') }}|{{ {'k': 1} | items | list }}|{{ '12' | int + 1 }}"),
      "x|abcABC|2|Nonee|a, b|a+b|[['k', 1]]|13");
  EXPECT_EQ(
      RenderSource(
          "{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | join }}",
          {{"ms",
            json::parse(
                R"([{"role":"user","c":"1"},{"role":"bot","c":"2"},{"role":"user","c":"3"}])")}}),
      "13");
  EXPECT_EQ(RenderSource("{{ 'a,b,,c'.split(',') }}|{{ ' x y '.split() }}|{{ 'xax'.strip('x') }}|"
                         "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('z','c')) }}|{{ "
                         "d.get('k') }}{{ d.get('z', 5) }}",
                         {{"d", {{"k", 1}}}}),
            "['a', 'b', '', 'c']|['x', 'y']|a|TrueTrue|15");
  EXPECT_EQ(RenderSource("{{ x | tojson }}|{{ x | tojson(indent=2) }}",
                         {{"x", json::parse(R"({"b":[1,"é\n"],"a":null})")}}),
            "{\"b\": [1, \"é\\n\"], \"a\": null}|{\n  \"b\": [\n    1,\n    \"é\\n\"\n  ],\n  "
            "\"a\": null\n}");
  EXPECT_EQ(RenderSource("{% macro greet(n, p='Hi') %}{{ p }} {{ n }}{% endmacro %}{{ greet('A') "
                         "}}/{{ greet('B', p='Yo') }}"),
            "Hi A/Yo B");
  EXPECT_EQ(
      RenderSource(
          "{% set x %}in{{ 1 }}{% endset %}{{ x }}|{{ 'y' if false else 'n' }}|{{ 2 in [1,2] }}"
          "{{ 'a' not in 'bcd' }}{{ 'k' in {'k': 1} }}"),
      "in1|n|TrueTrueTrue");
}

TEST(ChatTemplateLanguage, LiteralsTuplesListsAndDicts) {
  EXPECT_EQ(RenderSource("{{ () | length }}{{ (1,) | length }}{{ (1, 2,) | length }}|{{ (3) }}|"
                         "{{ [1, 'a',] }}{{ [] }}|{{ {'k': [1], 'j': 'v'} }}{{ {} }}|"
                         "{{ None }}{{ True }}{{ false }}{{ 'a' 'b' }}{{ 1.5 }}{{ x }}.",
                         {{"x", "n"}}),
            "012|3|[1, 'a'][]|{'k': [1], 'j': 'v'}{}|NoneTrueFalseab1.5n.");
  EXPECT_NE(RenderSource("{{ (1 ] }}").find("expected ')'"), std::string::npos);
  EXPECT_NE(RenderSource("{{ {1 2} }}").find("expected ':'"), std::string::npos);
  EXPECT_NE(RenderSource("{{ [1 2] }}").find("expected ']'"), std::string::npos);
  EXPECT_NE(RenderSource("{{ * }}").find("unexpected '*'"), std::string::npos);
  EXPECT_NE(RenderSource("{{ }}").find("expected an expression"), std::string::npos);
}

// Each name of ApplyFilter's table reaches its filter (the aliases and the names that share one).
TEST(ChatTemplateLanguage, EveryFilterByEachOfItsNames) {
  EXPECT_EQ(RenderSource("{{ x | d('u') }}{{ 0 | d('z', boolean=true) }}|{{ '<b>' | safe }}|"
                         "{{ 'hé' | count }}|{{ 3 | string }}{{ 'ab' | list }}"),
            "uz|<b>|2|3['a', 'b']");
  EXPECT_EQ(RenderSource("{{ [4,5,6] | first }}{{ [4,5,6] | last }}{{ [] | first }}|"
                         "{{ [1,2] | reverse }}{{ 'aé' | reverse }}"),
            "46|[2, 1]éa");
  EXPECT_EQ(RenderSource("{{ [1,2,3,4] | select('odd') }}{{ [1,2,3,4] | reject('odd') }}|"
                         "{{ [0,1,''] | select }}|{{ ms | rejectattr('r', 'eq', 'u') | list }}",
                         {{"ms", json::parse(R"([{"r":"u"},{"r":"b"}])")}}),
            "[1, 3][2, 4]|[1]|[{'r': 'b'}]");
  EXPECT_EQ(RenderSource("{{ ['1', '2'] | map('int') | list }}|{{ '2.5' | float }}{{ 'x' | float }}"
                         "|{{ ' 3.9 ' | int }}{{ true | int }}{{ 'q' | int(7) }}|{{ (-3) | abs }}"
                         "{{ (-2.5) | abs }}"),
            "[1, 2]|2.50.0|317|32.5");
  EXPECT_EQ(RenderSource("{{ 'hello world' | capitalize }}|{{ 'hello world' | title }}|"
                         "{{ 'xxyx' | trim('x') }}|{{ 'aaa' | replace('a', 'b', 2) }}"),
            "Hello world|Hello World|y|bba");
  EXPECT_NE(RenderSource("{{ 1 | title }}").find("filter 'title' needs a string, got"),
            std::string::npos);
  EXPECT_NE(RenderSource("{{ 'a' | abs }}").find("abs of"), std::string::npos);
  EXPECT_NE(RenderSource("{{ [1] | map }}").find("map needs attribute= or a filter name"),
            std::string::npos);
}

TEST(ChatTemplateLanguage, WhitespaceControlLikeHuggingFace) {
  // trim_blocks + lstrip_blocks; "-" strips; one trailing newline dropped.
  EXPECT_EQ(RenderSource("a\n  {% if true %}\n  b\n  {% endif %}\nc\n"), "a\n  b\nc");
  EXPECT_EQ(RenderSource("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(RenderSource("x {# note #}\ny"), "x y");
  EXPECT_EQ(RenderSource("{%- for i in [1, 2] %}\n  {{- i }}\n{%- endfor %}"), "12");
}

TEST(ChatTemplateSandbox, NoAttributeEscape) {
  // Python-style escapes reach nothing: attributes exist on dicts only.
  EXPECT_EQ(RenderSource("{{ ''.__class__ }}{{ messages.__class__ }}{{ x.__globals__ }}",
                         {{"x", json::object()}}),
            "");
  EXPECT_NE(RenderSource("{{ ''.__class__.__mro__[1].__subclasses__() }}").find("ERROR"),
            std::string::npos);
  EXPECT_NE(RenderSource("{{ cycler.__init__.__globals__.os.popen('id').read() }}").find("ERROR"),
            std::string::npos);
  EXPECT_NE(RenderSource("{% include 'x.jinja' %}").find("is not allowed in a chat template"),
            std::string::npos);
  EXPECT_NE(RenderSource("{% import 'os' as os %}").find("is not allowed in a chat template"),
            std::string::npos);
}

TEST(ChatTemplateSandbox, LimitsTurnRunawayTemplatesIntoErrors) {
  ChatTemplateLimits small;
  small.render.max_steps = 10000;
  const std::string loops = RenderSource(
      "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}",
      json::object(), small);
  EXPECT_NE(loops.find("step limit of 10000"), std::string::npos) << loops;
  small.render.max_output_bytes = 1000;
  small.render.max_steps = 1'000'000;
  const std::string big =
      RenderSource("{% for a in range(10000) %}xxxxxxxxxx{% endfor %}", json::object(), small);
  EXPECT_NE(big.find("output exceeds 1000 bytes"), std::string::npos) << big;
  const std::string rec = RenderSource("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(rec.find("nest deeper than 32"), std::string::npos) << rec;
  const std::string deep =
      RenderSource("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
  EXPECT_NE(deep.find("nests too deeply"), std::string::npos) << deep.substr(0, 200);
  small.max_source_bytes = 10;
  EXPECT_NE(
      RenderSource("{{ 'more than ten bytes' }}", json::object(), small).find("exceeds the limit"),
      std::string::npos);
  EXPECT_NE(RenderSource("{{ 'x' * 100000000000 }}").find("too large"), std::string::npos);
}

TEST(ChatTemplateSandbox, RandomTemplatesNeverCrashOrHang) {
  const char* parts[] = {
      "{{",       "}}", "{%", "%}",   "{#", "#}",        "-",   " ",        "x",  "'s'",   "1",
      "(",        ")",  "[",  "]",    "{",  "}",         "for", "in",       "if", "endif", "endfor",
      "set",      "=",  "|",  "trim", "is", "defined",   "not", "messages", ".",  "loop",  "macro",
      "endmacro", ",",  ":",  "+",    "*",  "range(99)", "~",   "\n"};
  ChatTemplateLimits limits;
  limits.render.max_steps = 20000;
  limits.render.max_output_bytes = 1 << 16;
  std::mt19937 rng(7);
  int rendered = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string src;
    const int n = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) src += parts[rng() % std::size(parts)];
    auto t = ChatTemplate::Parse(src, limits);
    if (!t.ok()) continue;
    auto out = (*t)->Render(json::parse(R"([{"role":"user","content":"hi"}])"), true);
    rendered += out.ok();
  }
  EXPECT_GT(rendered, 0);
}

TEST(ChatTemplateSandbox, ErrorsAreValuesNamingTheLine) {
  auto t = ChatTemplate::Parse("ok\n{% if x %}\nunclosed");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("missing endif"), std::string::npos) << t.status().message();
  auto t2 = ChatTemplate::Parse("line1\n{{ 1 + }}");
  ASSERT_FALSE(t2.ok());
  EXPECT_NE(t2.status().message().find("line 2"), std::string::npos) << t2.status().message();
  const std::string raised =
      RenderSource("{{ raise_exception('Only user and assistant roles are supported!') }}");
  EXPECT_EQ(raised, "ERROR: INVALID_ARGUMENT: Only user and assistant roles are supported!");
  EXPECT_NE(RenderSource("{{ 1 + 'a' }}").find("ERROR"), std::string::npos);
  EXPECT_NE(RenderSource("{{ x | nosuchfilter }}").find("unknown filter 'nosuchfilter'"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::llm
