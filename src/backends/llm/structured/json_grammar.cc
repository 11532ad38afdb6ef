#include "backends/llm/structured/json_grammar.h"

namespace sluice::llm::structured {

JsonRules AddJsonRules(Grammar& g) {
  JsonRules r;
  // A character of a JSON string (json_grammar.h: the escape policy): unescaped (no '"',
  // '\\', control characters or DEL), a short escape, or \u for a control character.
  r.plain_chars = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}, {0x80, kMaxCodepoint}};
  const int32_t hex = g.Codepoints({{'0', '9'}, {'A', 'F'}, {'a', 'f'}});
  const int32_t control_escape = g.Seq(
      {g.Literal("u00"), g.Alt({g.Seq({g.ByteRange('0', '1'), hex}),
                                g.Seq({g.Literal("7"), g.Codepoints({{'F', 'F'}, {'f', 'f'}})})})});
  const int32_t escape = g.Seq({g.Literal("\\"), g.Alt({g.Codepoints({{'"', '"'},
                                                                      {'\\', '\\'},
                                                                      {'b', 'b'},
                                                                      {'f', 'f'},
                                                                      {'n', 'n'},
                                                                      {'r', 'r'},
                                                                      {'t', 't'}}),
                                                        control_escape})});
  r.string_char = g.Alt({g.Codepoints(r.plain_chars), escape});
  r.string = g.AddRule("json_string");
  g.SetRule(r.string, g.Seq({g.Literal("\""), g.Star(r.string_char), g.Literal("\"")}));
  const int32_t digit = g.ByteRange('0', '9');
  const int32_t nat = g.Alt({g.Literal("0"), g.Seq({g.ByteRange('1', '9'), g.Star(digit)})});
  r.integer = g.AddRule("json_integer");
  g.SetRule(r.integer, g.Seq({g.Optional(g.Literal("-")), nat}));
  const int32_t frac = g.Optional(g.Seq({g.Literal("."), g.Plus(digit)}));
  const int32_t exp =
      g.Optional(g.Seq({g.Alt({g.Literal("e"), g.Literal("E")}),
                        g.Optional(g.Alt({g.Literal("+"), g.Literal("-")})), g.Plus(digit)}));
  r.number = g.AddRule("json_number");
  g.SetRule(r.number, g.Seq({g.Optional(g.Literal("-")), nat, frac, exp}));
  r.value = g.AddRule("json_value");
  r.object = g.AddRule("json_object");
  r.array = g.AddRule("json_array");
  const int32_t value = g.Ref(r.value);
  const int32_t member = g.Seq({g.Ref(r.string), g.Literal(":"), value});
  g.SetRule(r.object, g.Seq({g.Literal("{"),
                             g.Optional(g.Seq({member, g.Star(g.Seq({g.Literal(","), member}))})),
                             g.Literal("}")}));
  g.SetRule(r.array, g.Seq({g.Literal("["),
                            g.Optional(g.Seq({value, g.Star(g.Seq({g.Literal(","), value}))})),
                            g.Literal("]")}));
  g.SetRule(r.value, g.Alt({g.Ref(r.object), g.Ref(r.array), g.Ref(r.string), g.Ref(r.number),
                            g.Literal("true"), g.Literal("false"), g.Literal("null")}));
  return r;
}

int32_t CommaList(Grammar& g, int32_t item, int32_t rest_lo, int32_t rest_hi, bool optional) {
  const int32_t list = g.Seq({item, g.Repeat(g.Seq({g.Literal(","), item}), rest_lo, rest_hi)});
  return optional ? g.Optional(list) : list;
}

}  // namespace sluice::llm::structured
