#include "backends/llm/structured/json_schema_compiler.h"

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "backends/llm/structured/regex_compiler.h"

namespace sluice::llm::structured {
namespace {

using json = nlohmann::ordered_json;

// Nesting depth of a JSON text, counted before nlohmann (a recursive parser) sees it.
size_t JsonDepth(std::string_view text) {
  size_t depth = 0, most = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      most = std::max(most, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return most;
}

const std::set<std::string>& IgnoredKeywords() {
  static const std::set<std::string> k = {"title",    "description", "default",  "examples",
                                          "$schema",  "$id",         "$comment", "deprecated",
                                          "readOnly", "writeOnly",   "$defs",    "definitions"};
  return k;
}

const std::set<std::string>& KnownKeywords() {
  static const std::set<std::string> k = {
      "type",     "properties", "required",  "additionalProperties",
      "enum",     "const",      "items",     "prefixItems",
      "minItems", "maxItems",   "$ref",      "anyOf",
      "oneOf",    "allOf",      "minLength", "maxLength",
      "pattern",  "format",     "minimum",   "nullable"};
  return k;
}

// RFC 3339's full-date, only real dates: each month its days, February 29 in leap years only
// (divisible by 4, centuries by 400), and no year 0000, which no calendar (Python's date, that
// jsonschema checks "date" with) has. Issue 22's random schemas found "3603-02-31".
constexpr std::string_view kFullDate =
    "(([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-((0[13578]|1[02])-(0[1-9]|[12][0-9]|"
    "3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468]["
    "048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)";
constexpr std::string_view kPartialTime = "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?";
constexpr std::string_view kTimeOffset = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";

// Well-known string formats as regular expressions over the string's characters; empty for
// a format not known.
std::string FormatRegex(const std::string& f) {
  if (f == "date") return std::string(kFullDate);
  if (f == "time") return std::string(kPartialTime) + std::string(kTimeOffset);
  if (f == "date-time")
    return std::string(kFullDate) + "T" + std::string(kPartialTime) + std::string(kTimeOffset);
  if (f == "uuid") {
    return "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
  }
  if (f == "email") {
    return "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-zA-Z0-9!#$%&'*+/"
           "=?^_`{|}~-]+)*@[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-"
           "zA-Z0-9])?)+";
  }
  return "";
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const json& root) : root_(root) {}

  Result<Grammar> Compile() {
    DefineBasics();
    const int32_t start = g_.AddRule("root");
    ref_rules_["#"] = start;
    ASSIGN_OR_RETURN(int32_t body, Schema(root_, "#", 0));
    g_.SetRule(start, body);
    // Referenced definitions, compiled as they are discovered.
    while (!pending_.empty()) {
      auto [ref, rule] = pending_.back();
      pending_.pop_back();
      ASSIGN_OR_RETURN(const json* target, Resolve(ref));
      ASSIGN_OR_RETURN(int32_t def, Schema(*target, ref, 0));
      g_.SetRule(rule, def);
    }
    g_.set_root(start);
    Status st = g_.Validate();
    if (!st.ok()) return InvalidArgument("JSON schema: " + st.message());
    return std::move(g_);
  }

  // The any-JSON-value grammar's object rule, for json_object mode.
  Grammar AnyObject() {
    DefineBasics();
    g_.set_root(object_rule_);
    return std::move(g_);
  }

 private:
  static Status Bad(const std::string& path, const std::string& what) {
    return InvalidArgument("JSON schema at " + path + ": " + what);
  }

  // Shared rules: string, number, integer and any value.
  void DefineBasics() {
    // A character of a JSON string (json_schema_compiler.h: the escape policy): unescaped
    // (no '"', '\\', control characters or DEL), a short escape, or \u for a control character.
    plain_chars_ = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}, {0x80, kMaxCodepoint}};
    const int32_t hex = g_.Codepoints({{'0', '9'}, {'A', 'F'}, {'a', 'f'}});
    const int32_t control_escape =
        g_.Seq({g_.Literal("u00"),
                g_.Alt({g_.Seq({g_.ByteRange('0', '1'), hex}),
                        g_.Seq({g_.Literal("7"), g_.Codepoints({{'F', 'F'}, {'f', 'f'}})})})});
    const int32_t escape = g_.Seq({g_.Literal("\\"), g_.Alt({g_.Codepoints({{'"', '"'},
                                                                            {'\\', '\\'},
                                                                            {'b', 'b'},
                                                                            {'f', 'f'},
                                                                            {'n', 'n'},
                                                                            {'r', 'r'},
                                                                            {'t', 't'}}),
                                                             control_escape})});
    char_ = g_.Alt({g_.Codepoints(plain_chars_), escape});
    string_rule_ = g_.AddRule("json_string");
    g_.SetRule(string_rule_, g_.Seq({g_.Literal("\""), g_.Star(char_), g_.Literal("\"")}));
    const int32_t digit = g_.ByteRange('0', '9');
    const int32_t nat = g_.Alt({g_.Literal("0"), g_.Seq({g_.ByteRange('1', '9'), g_.Star(digit)})});
    integer_rule_ = g_.AddRule("json_integer");
    g_.SetRule(integer_rule_, g_.Seq({g_.Optional(g_.Literal("-")), nat}));
    nonneg_integer_rule_ = g_.AddRule("json_nonnegative_integer");
    g_.SetRule(nonneg_integer_rule_, nat);
    const int32_t frac = g_.Optional(g_.Seq({g_.Literal("."), g_.Plus(digit)}));
    const int32_t exp = g_.Optional(
        g_.Seq({g_.Alt({g_.Literal("e"), g_.Literal("E")}),
                g_.Optional(g_.Alt({g_.Literal("+"), g_.Literal("-")})), g_.Plus(digit)}));
    number_rule_ = g_.AddRule("json_number");
    g_.SetRule(number_rule_, g_.Seq({g_.Optional(g_.Literal("-")), nat, frac, exp}));
    nonneg_number_rule_ = g_.AddRule("json_nonnegative_number");
    g_.SetRule(nonneg_number_rule_, g_.Seq({nat, frac, exp}));
    value_rule_ = g_.AddRule("json_value");
    object_rule_ = g_.AddRule("json_object");
    array_rule_ = g_.AddRule("json_array");
    const int32_t value = g_.Ref(value_rule_);
    const int32_t member = g_.Seq({g_.Ref(string_rule_), g_.Literal(":"), value});
    g_.SetRule(object_rule_,
               g_.Seq({g_.Literal("{"),
                       g_.Optional(g_.Seq({member, g_.Star(g_.Seq({g_.Literal(","), member}))})),
                       g_.Literal("}")}));
    g_.SetRule(array_rule_,
               g_.Seq({g_.Literal("["),
                       g_.Optional(g_.Seq({value, g_.Star(g_.Seq({g_.Literal(","), value}))})),
                       g_.Literal("]")}));
    g_.SetRule(value_rule_, g_.Alt({g_.Ref(object_rule_), g_.Ref(array_rule_), g_.Ref(string_rule_),
                                    g_.Ref(number_rule_), g_.Literal("true"), g_.Literal("false"),
                                    g_.Literal("null")}));
  }

  Result<const json*> Resolve(const std::string& ref) {
    if (ref == "#") return &root_;
    std::string pointer = ref.substr(1);
    try {
      const json::json_pointer p(pointer);
      if (!root_.contains(p))
        return InvalidArgument("JSON schema: $ref '" + ref + "' points to nothing");
      return &root_.at(p);
    } catch (const json::exception&) {
      return InvalidArgument("JSON schema: $ref '" + ref + "' is not a JSON pointer");
    }
  }

  Result<int32_t> Ref(const std::string& ref, const std::string& path) {
    if (ref != "#" && !ref.starts_with("#/$defs/") && !ref.starts_with("#/definitions/")) {
      return Bad(path, "$ref '" + ref +
                           "' is not supported (only '#', '#/$defs/...' and '#/definitions/...')");
    }
    auto it = ref_rules_.find(ref);
    if (it == ref_rules_.end()) {
      RETURN_IF_ERROR(Resolve(ref).status());
      const int32_t rule = g_.NewRule("def_" + ref.substr(ref.rfind('/') + 1));
      it = ref_rules_.emplace(ref, rule).first;
      pending_.emplace_back(ref, rule);
    }
    return g_.Ref(it->second);
  }

  Result<int32_t> Literal(const json& v) { return g_.Literal(v.dump()); }

  Result<int32_t> Schema(const json& s, const std::string& path, int depth) {
    if (depth > kMaxJsonSchemaDepth) {
      return Bad(path, "nested deeper than " + std::to_string(kMaxJsonSchemaDepth));
    }
    if (s.is_boolean()) return s.get<bool>() ? g_.Ref(value_rule_) : g_.Nothing();
    if (!s.is_object()) return Bad(path, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      if (IgnoredKeywords().count(k) != 0) continue;
      if (KnownKeywords().count(k) == 0) return Bad(path, "keyword '" + k + "' is not supported");
    }
    int32_t e = -1;
    if (s.contains("$ref")) {
      for (const auto& [k, v] : s.items()) {
        if (k != "$ref" && IgnoredKeywords().count(k) == 0) {
          return Bad(path, "keyword '" + k + "' beside '$ref' is not supported");
        }
      }
      if (!s["$ref"].is_string()) return Bad(path, "'$ref' must be a string");
      return Ref(s["$ref"].get<std::string>(), path);
    }
    if (s.contains("const")) {
      ASSIGN_OR_RETURN(e, Literal(s["const"]));
    } else if (s.contains("enum")) {
      const json& en = s["enum"];
      if (!en.is_array()) return Bad(path, "'enum' must be an array");
      std::vector<int32_t> alts;
      for (const json& v : en) {
        ASSIGN_OR_RETURN(int32_t lit, Literal(v));
        alts.push_back(lit);
      }
      e = g_.Alt(std::move(alts));
    } else if (s.contains("anyOf") || s.contains("oneOf") || s.contains("allOf")) {
      const char* key = s.contains("anyOf") ? "anyOf" : s.contains("oneOf") ? "oneOf" : "allOf";
      const json& list = s[key];
      if (!list.is_array() || list.empty())
        return Bad(path, std::string("'") + key + "' must be a non-empty array");
      if (std::string(key) == "allOf" && list.size() != 1) {
        return Bad(path, "'allOf' of more than one schema is not supported");
      }
      for (const auto& [k, v] : s.items()) {
        if (k != key && k != "nullable" && IgnoredKeywords().count(k) == 0) {
          return Bad(path, "keyword '" + k + "' beside '" + key + "' is not supported");
        }
      }
      std::vector<int32_t> alts;
      for (size_t i = 0; i < list.size(); ++i) {
        ASSIGN_OR_RETURN(int32_t a,
                         Schema(list[i], path + "/" + key + "/" + std::to_string(i), depth + 1));
        alts.push_back(a);
      }
      e = g_.Alt(std::move(alts));
    } else {
      std::vector<std::string> types;
      if (s.contains("type")) {
        const json& t = s["type"];
        if (t.is_string()) {
          types.push_back(t.get<std::string>());
        } else if (t.is_array() && !t.empty()) {
          for (const json& x : t) {
            if (!x.is_string()) return Bad(path, "'type' entries must be strings");
            types.push_back(x.get<std::string>());
          }
        } else {
          return Bad(path, "'type' must be a string or a non-empty array of strings");
        }
      } else {
        types = InferTypes(s);
      }
      std::vector<int32_t> alts;
      for (const std::string& t : types) {
        ASSIGN_OR_RETURN(int32_t a, Typed(s, t, path, depth));
        alts.push_back(a);
      }
      e = g_.Alt(std::move(alts));
    }
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) return Bad(path, "'nullable' must be a boolean");
      if (s["nullable"].get<bool>()) e = g_.Alt({e, g_.Literal("null")});
    }
    return e;
  }

  static std::vector<std::string> InferTypes(const json& s) {
    for (const char* k : {"properties", "required", "additionalProperties"}) {
      if (s.contains(k)) return {"object"};
    }
    for (const char* k : {"items", "prefixItems", "minItems", "maxItems"}) {
      if (s.contains(k)) return {"array"};
    }
    for (const char* k : {"minLength", "maxLength", "pattern", "format"}) {
      if (s.contains(k)) return {"string"};
    }
    if (s.contains("minimum")) return {"number"};
    return {"object", "array", "string", "number", "boolean", "null"};
  }

  Result<int32_t> Count(const json& s, const char* key, const std::string& path, int32_t fallback) {
    if (!s.contains(key)) return fallback;
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return Bad(path, std::string("'") + key + "' must be a non-negative integer");
    if (v.get<int64_t>() > kMaxJsonSchemaCount) {
      return Bad(path, std::string("'") + key + "' above " + std::to_string(kMaxJsonSchemaCount) +
                           " is not supported");
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }

  // Keywords that only apply to other types are refused rather than silently dropped.
  Status OnlyFor(const json& s, const std::string& type, const std::string& path,
                 std::initializer_list<const char*> allowed) {
    static const std::set<std::string> kTyped = {
        "properties", "required",    "additionalProperties",
        "items",      "prefixItems", "minItems",
        "maxItems",   "minLength",   "maxLength",
        "pattern",    "format",      "minimum"};
    for (const auto& [k, v] : s.items()) {
      if (kTyped.count(k) == 0) continue;
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok && type_count_ == 1)
        return Bad(path, "keyword '" + k + "' does not apply to type '" + type + "'");
    }
    return Status::Ok();
  }

  Result<int32_t> Typed(const json& s, const std::string& type, const std::string& path,
                        int depth) {
    type_count_ = s.contains("type") && s["type"].is_array() ? s["type"].size() : 1;
    if (type == "null") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {}));
      return g_.Literal("null");
    }
    if (type == "boolean") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {}));
      return g_.Alt({g_.Literal("true"), g_.Literal("false")});
    }
    if (type == "integer" || type == "number") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {"minimum"}));
      bool nonneg = false;
      if (s.contains("minimum")) {
        const json& m = s["minimum"];
        if (!m.is_number() || m.get<double>() != 0.0) {
          return Bad(path, "'minimum' other than 0 is not supported");
        }
        nonneg = true;
      }
      if (type == "integer") return g_.Ref(nonneg ? nonneg_integer_rule_ : integer_rule_);
      return g_.Ref(nonneg ? nonneg_number_rule_ : number_rule_);
    }
    if (type == "string") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {"minLength", "maxLength", "pattern", "format"}));
      return String(s, path);
    }
    if (type == "array") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {"items", "prefixItems", "minItems", "maxItems"}));
      return Array(s, path, depth);
    }
    if (type == "object") {
      RETURN_IF_ERROR(OnlyFor(s, type, path, {"properties", "required", "additionalProperties"}));
      return Object(s, path, depth);
    }
    return Bad(path, "type '" + type + "' is not supported");
  }

  Result<int32_t> String(const json& s, const std::string& path) {
    const bool has_len = s.contains("minLength") || s.contains("maxLength");
    const int n = static_cast<int>(s.contains("pattern")) + static_cast<int>(s.contains("format")) +
                  static_cast<int>(has_len);
    if (n > 1)
      return Bad(path, "'pattern', 'format' and 'minLength'/'maxLength' cannot be combined");
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return Bad(path, "'pattern' must be a string");
      // JSON Schema patterns are unanchored; generation treats them as the whole value, as
      // xgrammar and llguidance do.
      auto r = AddRegex(s["pattern"].get<std::string>(), g_, &plain_chars_);
      if (!r.ok()) return Bad(path, "'pattern': " + r.status().message());
      return g_.Seq({g_.Literal("\""), *r, g_.Literal("\"")});
    }
    if (s.contains("format")) {
      if (!s["format"].is_string()) return Bad(path, "'format' must be a string");
      const std::string f = s["format"].get<std::string>();
      const std::string re = FormatRegex(f);
      if (re.empty()) return Bad(path, "format '" + f + "' is not supported");
      auto r = AddRegex(re, g_, &plain_chars_);
      if (!r.ok()) return r.status();
      return g_.Seq({g_.Literal("\""), *r, g_.Literal("\"")});
    }
    if (has_len) {
      ASSIGN_OR_RETURN(int32_t lo, Count(s, "minLength", path, 0));
      ASSIGN_OR_RETURN(int32_t hi, Count(s, "maxLength", path, Grammar::kUnbounded));
      if (hi != Grammar::kUnbounded && hi < lo)
        return Bad(path, "'maxLength' is below 'minLength'");
      return g_.Seq({g_.Literal("\""), g_.Repeat(char_, lo, hi), g_.Literal("\"")});
    }
    return g_.Ref(string_rule_);
  }

  Result<int32_t> Array(const json& s, const std::string& path, int depth) {
    ASSIGN_OR_RETURN(int32_t lo, Count(s, "minItems", path, 0));
    ASSIGN_OR_RETURN(int32_t hi, Count(s, "maxItems", path, Grammar::kUnbounded));
    if (hi != Grammar::kUnbounded && hi < lo) return Bad(path, "'maxItems' is below 'minItems'");
    std::vector<int32_t> prefix;
    if (s.contains("prefixItems")) {
      const json& p = s["prefixItems"];
      if (!p.is_array()) return Bad(path, "'prefixItems' must be an array");
      for (size_t i = 0; i < p.size(); ++i) {
        ASSIGN_OR_RETURN(int32_t e,
                         SubSchema(p[i], path + "/prefixItems/" + std::to_string(i), depth));
        prefix.push_back(e);
      }
    }
    int32_t item = -1;  // -1: no items past the prefix
    if (!s.contains("items")) {
      item = g_.Ref(value_rule_);
    } else if (!(s["items"].is_boolean() && !s["items"].get<bool>())) {
      ASSIGN_OR_RETURN(item, SubSchema(s["items"], path + "/items", depth));
    }
    if (hi != Grammar::kUnbounded && hi < static_cast<int32_t>(prefix.size())) prefix.resize(hi);
    const int32_t nprefix = static_cast<int32_t>(prefix.size());
    if (item < 0 && lo > nprefix)
      return Bad(path, "'minItems' exceeds the items the array may hold");
    // Elements after the prefix: rest_lo..rest_hi of `item`.
    const int32_t rest_lo = std::max(0, lo - nprefix);
    const int32_t rest_hi = item < 0                    ? 0
                            : hi == Grammar::kUnbounded ? Grammar::kUnbounded
                                                        : hi - nprefix;
    const int32_t comma = g_.Literal(",");
    int32_t body;
    if (nprefix == 0) {
      if (rest_hi == 0) {
        body = g_.Empty();
      } else {
        const int32_t more_hi = rest_hi == Grammar::kUnbounded ? Grammar::kUnbounded : rest_hi - 1;
        const int32_t first =
            g_.Seq({item, g_.Repeat(g_.Seq({comma, item}), std::max(0, rest_lo - 1), more_hi)});
        body = rest_lo > 0 ? first : g_.Optional(first);
      }
    } else {
      // T_i = prefix[i] followed by the elements after it; element i+1 is optional from lo on.
      const int32_t rest =
          rest_hi == 0 ? g_.Empty() : g_.Repeat(g_.Seq({comma, item}), rest_lo, rest_hi);
      int32_t tail = -1;
      for (int32_t i = nprefix - 1; i >= 0; --i) {
        int32_t after = rest;
        if (i + 1 < nprefix) {
          after = g_.Seq({comma, tail});
          if (i + 1 >= lo) after = g_.Optional(after);
        }
        tail = g_.Seq({prefix[i], after});
      }
      body = lo > 0 ? tail : g_.Optional(tail);
    }
    return g_.Seq({g_.Literal("["), body, g_.Literal("]")});
  }

  // A sub-schema as a rule of its own (cheap to repeat), unless it is a reference already.
  Result<int32_t> SubSchema(const json& s, const std::string& path, int depth) {
    ASSIGN_OR_RETURN(int32_t e, Schema(s, path, depth + 1));
    if (g_.expr(e).kind == Expr::Kind::kRef) return e;
    const int32_t rule = g_.NewRule("schema");
    g_.SetRule(rule, e);
    return g_.Ref(rule);
  }

  Result<int32_t> Object(const json& s, const std::string& path, int depth) {
    std::vector<std::pair<std::string, int32_t>> props;  // encoded key, value
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Bad(path, "'required' must be an array");
      for (const json& r : s["required"]) {
        if (!r.is_string()) return Bad(path, "'required' entries must be strings");
        required.insert(r.get<std::string>());
      }
    }
    std::vector<bool> is_required;
    if (s.contains("properties")) {
      const json& p = s["properties"];
      if (!p.is_object()) return Bad(path, "'properties' must be an object");
      for (const auto& [k, v] : p.items()) {
        ASSIGN_OR_RETURN(int32_t e, SubSchema(v, path + "/properties/" + k, depth));
        props.emplace_back(json(k).dump(), e);
        is_required.push_back(required.count(k) != 0);
      }
    }
    for (const std::string& r : required) {
      bool found = false;
      for (const auto& [k, v] : props) found = found || k == json(r).dump();
      if (!found) return Bad(path, "required property '" + r + "' is not in 'properties'");
    }
    // Schema of additional properties' values; -1: none allowed. Absent: none beside declared
    // properties, any for an object that declares none ({"type": "object"}).
    int32_t extra = s.contains("properties") ? -1 : g_.Ref(value_rule_);
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean()) {
        extra = a.get<bool>() ? g_.Ref(value_rule_) : -1;
      } else {
        ASSIGN_OR_RETURN(extra, SubSchema(a, path + "/additionalProperties", depth));
      }
    }
    // E(i, first): properties i.. with `first` meaning no comma before the next member.
    // Each is a rule, so that optional properties do not duplicate what follows them.
    const int32_t n = static_cast<int32_t>(props.size());
    std::vector<std::array<int32_t, 2>> rules(n + 1, {-1, -1});
    const int32_t comma = g_.Literal(",");
    const int32_t extra_member =
        extra < 0 ? -1 : g_.Seq({g_.Ref(string_rule_), g_.Literal(":"), extra});
    for (int32_t first = 0; first < 2; ++first) {
      const int32_t r = g_.NewRule("object_tail");
      int32_t body = g_.Empty();
      if (extra >= 0) {
        const int32_t more = g_.Star(g_.Seq({comma, extra_member}));
        body = first ? g_.Optional(g_.Seq({extra_member, more})) : more;
      }
      g_.SetRule(r, body);
      rules[n][first] = r;
    }
    for (int32_t i = n - 1; i >= 0; --i) {
      const int32_t member = g_.Seq({g_.Literal(props[i].first + ":"), props[i].second});
      for (int32_t first = 0; first < 2; ++first) {
        const int32_t r = g_.NewRule("object_part");
        const int32_t present =
            g_.Seq({first ? g_.Empty() : comma, member, g_.Ref(rules[i + 1][0])});
        g_.SetRule(r, is_required[i] ? present : g_.Alt({present, g_.Ref(rules[i + 1][first])}));
        rules[i][first] = r;
      }
    }
    return g_.Seq({g_.Literal("{"), g_.Ref(rules[0][1]), g_.Literal("}")});
  }

  const json& root_;
  Grammar g_;
  std::map<std::string, int32_t> ref_rules_;
  std::vector<std::pair<std::string, int32_t>> pending_;
  CodepointRanges plain_chars_;
  int32_t char_ = -1;
  int32_t string_rule_ = -1, integer_rule_ = -1, nonneg_integer_rule_ = -1, number_rule_ = -1,
          nonneg_number_rule_ = -1, value_rule_ = -1, object_rule_ = -1, array_rule_ = -1;
  size_t type_count_ = 1;
};

}  // namespace

Result<Grammar> CompileJsonSchema(std::string_view schema_json) {
  if (schema_json.size() > kMaxJsonSchemaBytes) {
    return InvalidArgument("JSON schema is " + std::to_string(schema_json.size()) +
                           " bytes; the limit is " + std::to_string(kMaxJsonSchemaBytes));
  }
  if (JsonDepth(schema_json) > 2 * kMaxJsonSchemaDepth) {
    return InvalidArgument("JSON schema nests deeper than " +
                           std::to_string(2 * kMaxJsonSchemaDepth));
  }
  json schema;
  try {
    schema = json::parse(schema_json, nullptr, true, false);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("JSON schema is not valid JSON: ") + e.what());
  }
  return SchemaCompiler(schema).Compile();
}

Grammar JsonObjectGrammar() {
  static const json kNull;
  return SchemaCompiler(kNull).AnyObject();
}

}  // namespace sluice::llm::structured
