#include "backends/llm/structured/json_schema_compiler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "backends/llm/structured/exact_decimal.h"
#include "backends/llm/structured/json_grammar.h"
#include "backends/llm/structured/json_schema_numbers.h"
#include "backends/llm/structured/json_schema_objects.h"
#include "backends/llm/structured/json_string_formats.h"
#include "backends/llm/structured/regex_compiler.h"
#include "common/json_numerals.h"

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

bool Ignored(const std::string& keyword) {
  static const std::set<std::string> k = {"title",    "description", "default",  "examples",
                                          "$schema",  "$id",         "$comment", "deprecated",
                                          "readOnly", "writeOnly",   "$defs",    "definitions"};
  return k.count(keyword) != 0;
}

bool Known(const std::string& keyword) {
  static const std::set<std::string> k = {"type",
                                          "properties",
                                          "required",
                                          "additionalProperties",
                                          "minProperties",
                                          "maxProperties",
                                          "enum",
                                          "const",
                                          "items",
                                          "prefixItems",
                                          "minItems",
                                          "maxItems",
                                          "uniqueItems",
                                          "$ref",
                                          "anyOf",
                                          "oneOf",
                                          "allOf",
                                          "minLength",
                                          "maxLength",
                                          "pattern",
                                          "format",
                                          "minimum",
                                          "maximum",
                                          "exclusiveMinimum",
                                          "exclusiveMaximum",
                                          "multipleOf",
                                          "nullable"};
  return k.count(keyword) != 0;
}

// The keywords of one type, refused beside a single other type rather than dropped.
const std::map<std::string, std::set<std::string>>& TypedKeywords() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"null", {}},
      {"boolean", {}},
      {"integer", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}},
      {"number", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}},
      {"string", {"minLength", "maxLength", "pattern", "format"}},
      {"array", {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}},
      {"object",
       {"properties", "required", "additionalProperties", "minProperties", "maxProperties"}}};
  return k;
}

bool OfType(const json& v, const std::string& type) {
  if (IsNumeral(v)) return type == "integer" || type == "number";
  if (type == "null") return v.is_null();
  if (type == "boolean") return v.is_boolean();
  if (type == "string") return v.is_string();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "number") return v.is_number();
  // JSON Schema's integers include 1.0.
  return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) &&
                                   std::floor(v.get<double>()) == v.get<double>());
}

// A value's text for JSON Schema's equality: object members in key order, numbers exactly
// as a validator reads them (an integer literal as written, one with a fraction or an
// exponent as the double it reads as), so that 1, 1.0 and 1e0 are alike.
std::string Canonical(const json& v) {
  if (v.is_object()) {
    std::map<std::string, std::string> members;
    for (const auto& [k, x] : v.items()) members[json(k).dump()] = Canonical(x);
    std::string out = "{";
    for (const auto& [k, x] : members) out += (out.size() > 1 ? "," : "") + k + ":" + x;
    return out + "}";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (const json& x : v) out += (out.size() > 1 ? "," : "") + Canonical(x);
    return out + "]";
  }
  if (IsNumeral(v)) {
    auto d = ParseDecimal(NumeralText(v));
    return d.ok() ? d->ToString() : NumeralText(v);
  }
  if (v.is_number_unsigned()) return DecimalOfUint(v.get<uint64_t>()).ToString();
  if (v.is_number_integer()) return DecimalOfInt(v.get<int64_t>()).ToString();
  if (v.is_number_float() && std::isfinite(v.get<double>()))
    return ExactDecimal(v.get<double>()).ToString();
  return v.dump();
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const json& root) : root_(root) {}

  Result<Grammar> Compile() {
    rules_ = AddJsonRules(g_);
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
    rules_ = AddJsonRules(g_);
    g_.set_root(rules_.object);
    return std::move(g_);
  }

 private:
  static Status Bad(const std::string& path, const std::string& what) {
    return InvalidArgument("JSON schema at " + path + ": " + what);
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

  Result<int32_t> Ref(const json& s, const std::string& path) {
    for (const auto& [k, v] : s.items()) {
      if (k != "$ref" && !Ignored(k)) {
        return Bad(path, "keyword '" + k + "' beside '$ref' is not supported");
      }
    }
    if (!s["$ref"].is_string()) return Bad(path, "'$ref' must be a string");
    const std::string ref = s["$ref"].get<std::string>();
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

  Result<int32_t> Schema(const json& s, const std::string& path, int depth) {
    if (depth > kMaxJsonSchemaDepth) {
      return Bad(path, "nested deeper than " + std::to_string(kMaxJsonSchemaDepth));
    }
    if (s.is_boolean()) return s.get<bool>() ? g_.Ref(rules_.value) : g_.Nothing();
    if (!s.is_object()) return Bad(path, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      if (!Ignored(k) && !Known(k)) return Bad(path, "keyword '" + k + "' is not supported");
    }
    if (s.contains("$ref")) return Ref(s, path);
    bool nullable = false;
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) return Bad(path, "'nullable' must be a boolean");
      nullable = s["nullable"].get<bool>();
    }
    const bool values = s.contains("const") || s.contains("enum");
    int32_t e = -1;
    if (values) {
      ASSIGN_OR_RETURN(e, Values(s, path, nullable));
    } else if (s.contains("anyOf") || s.contains("oneOf") || s.contains("allOf")) {
      ASSIGN_OR_RETURN(e, Combination(s, path, depth));
    } else {
      std::vector<std::string> types;
      if (s.contains("type")) {
        ASSIGN_OR_RETURN(types, Types(s, path));
      } else {
        types = InferTypes(s);
      }
      std::vector<int32_t> alts;
      for (const std::string& t : types) {
        ASSIGN_OR_RETURN(int32_t a, Typed(s, t, types.size(), path, depth));
        alts.push_back(a);
      }
      e = g_.Alt(std::move(alts));
    }
    // OpenAPI's nullable adds null to the schema's types; beside const or enum, which list the
    // values, a null only where they list it (Values).
    if (nullable && !values) e = g_.Alt({e, g_.Literal("null")});
    return e;
  }

  Result<std::vector<std::string>> Types(const json& s, const std::string& path) {
    const json& t = s["type"];
    std::vector<std::string> types;
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
    for (const std::string& type : types) {
      if (TypedKeywords().count(type) == 0)
        return Bad(path, "type '" + type + "' is not supported");
    }
    return types;
  }

  static std::vector<std::string> InferTypes(const json& s) {
    for (const auto& [type, keywords] : TypedKeywords()) {
      for (const std::string& k : keywords) {
        if (s.contains(k)) return {type == "integer" ? "number" : type};
      }
    }
    return {"object", "array", "string", "number", "boolean", "null"};
  }

  // const and enum: their values' JSON text; beside `type`, the values of that type only
  // (`nullable`: or null). OpenAPI 3.0.3 reads nullable so: it adds null to the types, and an
  // enum without null still refuses it (llguidance and xgrammar ignore nullable altogether).
  Result<int32_t> Values(const json& s, const std::string& path, bool nullable) {
    const std::string key = s.contains("const") ? "const" : "enum";
    for (const auto& [k, v] : s.items()) {
      if (k != "const" && k != "enum" && k != "type" && k != "nullable" && !Ignored(k)) {
        return Bad(path, "keyword '" + k + "' beside '" + key + "' is not supported");
      }
    }
    // The values where they are in the schema: a numeral's digits are written as they are
    // (json_numerals.h).
    std::vector<const json*> values;
    if (s.contains("enum")) {
      if (!s["enum"].is_array()) return Bad(path, "'enum' must be an array");
      const std::string only = s.contains("const") ? Canonical(s["const"]) : "";
      for (const json& v : s["enum"]) {
        if (!s.contains("const") || Canonical(v) == only) values.push_back(&v);
      }
      if (s.contains("const") && values.empty()) return Bad(path, "'const' is not in 'enum'");
    } else {
      values.push_back(&s["const"]);
    }
    if (s.contains("type")) {
      ASSIGN_OR_RETURN(std::vector<std::string> types, Types(s, path));
      if (nullable) types.push_back("null");
      std::erase_if(values, [&](const json* v) {
        return std::none_of(types.begin(), types.end(),
                            [&](const std::string& t) { return OfType(*v, t); });
      });
      if (values.empty()) return Bad(path, "no value of '" + key + "' has the schema's 'type'");
    }
    std::set<std::string> texts;
    std::vector<int32_t> alts;
    for (const json* v : values) {
      const std::string text = DumpKeepingNumerals(*v);
      if (texts.insert(text).second) alts.push_back(g_.Literal(text));
    }
    return g_.Alt(std::move(alts));
  }

  Result<int32_t> Combination(const json& s, const std::string& path, int depth) {
    const std::string key = s.contains("anyOf") ? "anyOf" : s.contains("oneOf") ? "oneOf" : "allOf";
    const json& list = s[key];
    if (!list.is_array() || list.empty())
      return Bad(path, "'" + key + "' must be a non-empty array");
    if (key == "allOf" && list.size() != 1) {
      return Bad(path, "'allOf' of more than one schema is not supported");
    }
    for (const auto& [k, v] : s.items()) {
      if (k != key && k != "nullable" && !Ignored(k)) {
        return Bad(path, "keyword '" + k + "' beside '" + key + "' is not supported");
      }
    }
    std::vector<int32_t> alts;
    for (size_t i = 0; i < list.size(); ++i) {
      ASSIGN_OR_RETURN(int32_t a,
                       Schema(list[i], path + "/" + key + "/" + std::to_string(i), depth + 1));
      alts.push_back(a);
    }
    return g_.Alt(std::move(alts));
  }

  Result<int32_t> Count(const json& s, const char* key, const std::string& path, int32_t fallback) {
    if (!s.contains(key)) return fallback;
    const json& v = s[key];
    if (IsNumeral(v) && NumeralText(v)[0] != '-') {
      return Bad(path, std::string("'") + key + "' above " + std::to_string(kMaxJsonSchemaCount) +
                           " is not supported");
    }
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return Bad(path, std::string("'") + key + "' must be a non-negative integer");
    if (v.get<int64_t>() > kMaxJsonSchemaCount) {
      return Bad(path, std::string("'") + key + "' above " + std::to_string(kMaxJsonSchemaCount) +
                           " is not supported");
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }

  Result<int32_t> Typed(const json& s, const std::string& type, size_t type_count,
                        const std::string& path, int depth) {
    // Keywords of another type: refused beside a single type rather than silently dropped.
    const std::set<std::string>& mine = TypedKeywords().at(type);
    for (const auto& [other, keywords] : TypedKeywords()) {
      for (const std::string& k : keywords) {
        if (type_count == 1 && s.contains(k) && mine.count(k) == 0)
          return Bad(path, "keyword '" + k + "' does not apply to type '" + type + "'");
      }
    }
    if (type == "null") return g_.Literal("null");
    if (type == "boolean") return g_.Alt({g_.Literal("true"), g_.Literal("false")});
    if (type == "integer" || type == "number") {
      auto range = numbers_.Add(s, type == "integer");
      if (!range.ok()) return Bad(path, range.status().message());
      if (*range >= 0) return *range;
      return g_.Ref(type == "integer" ? rules_.integer : rules_.number);
    }
    if (type == "string") return String(s, path);
    if (type == "array") return Array(s, path, depth);
    return Object(s, path, depth);
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
      auto r = AddRegex(s["pattern"].get<std::string>(), g_, &rules_.plain_chars);
      if (!r.ok()) return Bad(path, "'pattern': " + r.status().message());
      return g_.Seq({g_.Literal("\""), *r, g_.Literal("\"")});
    }
    if (s.contains("format")) {
      if (!s["format"].is_string()) return Bad(path, "'format' must be a string");
      const std::string f = s["format"].get<std::string>();
      const std::string re = FormatRegex(f);
      if (re.empty()) return Bad(path, "format '" + f + "' is not supported");
      auto r = AddRegex(re, g_, &rules_.plain_chars);
      if (!r.ok()) return r.status();
      return g_.Seq({g_.Literal("\""), *r, g_.Literal("\"")});
    }
    if (has_len) {
      ASSIGN_OR_RETURN(int32_t lo, Count(s, "minLength", path, 0));
      ASSIGN_OR_RETURN(int32_t hi, Count(s, "maxLength", path, Grammar::kUnbounded));
      if (hi != Grammar::kUnbounded && hi < lo)
        return Bad(path, "'maxLength' is below 'minLength'");
      return g_.Seq({g_.Literal("\""), g_.Repeat(rules_.string_char, lo, hi), g_.Literal("\"")});
    }
    return g_.Ref(rules_.string);
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
      item = g_.Ref(rules_.value);
    } else if (!(s["items"].is_boolean() && !s["items"].get<bool>())) {
      ASSIGN_OR_RETURN(item, SubSchema(s["items"], path + "/items", depth));
    }
    if (hi != Grammar::kUnbounded && hi < static_cast<int32_t>(prefix.size())) prefix.resize(hi);
    const int32_t nprefix = static_cast<int32_t>(prefix.size());
    if (item < 0 && lo > nprefix)
      return Bad(path, "'minItems' exceeds the items the array may hold");
    RETURN_IF_ERROR(UniqueItems(s, path, item < 0 ? nprefix : hi));
    // Elements after the prefix: rest_lo..rest_hi of `item`.
    const int32_t rest_lo = std::max(0, lo - nprefix);
    const int32_t rest_hi = item < 0                    ? 0
                            : hi == Grammar::kUnbounded ? Grammar::kUnbounded
                                                        : hi - nprefix;
    int32_t body;
    if (nprefix == 0) {
      const int32_t more_hi = rest_hi == Grammar::kUnbounded ? Grammar::kUnbounded : rest_hi - 1;
      body = rest_hi == 0 ? g_.Empty()
                          : CommaList(g_, item, std::max(0, rest_lo - 1), more_hi, rest_lo == 0);
    } else {
      // T_i = prefix[i] followed by the elements after it; element i+1 is optional from lo on.
      const int32_t comma = g_.Literal(",");
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

  // uniqueItems true holds by itself only where the array cannot hold two items: a grammar
  // cannot keep items distinct.
  static Status UniqueItems(const json& s, const std::string& path, int32_t max_items) {
    if (!s.contains("uniqueItems")) return Status::Ok();
    if (!s["uniqueItems"].is_boolean()) return Bad(path, "'uniqueItems' must be a boolean");
    if (!s["uniqueItems"].get<bool>() || (max_items != Grammar::kUnbounded && max_items <= 1)) {
      return Status::Ok();
    }
    return Bad(path,
               "'uniqueItems' true is not supported (a grammar cannot keep items distinct) unless "
               "the array holds at most one item");
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
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Bad(path, "'required' must be an array");
      for (const json& r : s["required"]) {
        if (!r.is_string()) return Bad(path, "'required' entries must be strings");
        required.insert(r.get<std::string>());
      }
    }
    ObjectMembers m;
    if (s.contains("properties")) {
      const json& p = s["properties"];
      if (!p.is_object()) return Bad(path, "'properties' must be an object");
      for (const auto& [k, v] : p.items()) {
        ASSIGN_OR_RETURN(int32_t e, SubSchema(v, path + "/properties/" + k, depth));
        m.properties.push_back({json(k).dump(), k, e, required.count(k) != 0});
      }
    }
    for (const std::string& r : required) {
      if (!s.contains("properties") || !s["properties"].contains(r))
        return Bad(path, "required property '" + r + "' is not in 'properties'");
    }
    // Additional properties' values; none beside declared properties when absent, any for
    // an object that declares none ({"type": "object"}).
    m.additional = s.contains("properties") ? -1 : g_.Ref(rules_.value);
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean()) {
        m.additional = a.get<bool>() ? g_.Ref(rules_.value) : -1;
      } else {
        ASSIGN_OR_RETURN(m.additional, SubSchema(a, path + "/additionalProperties", depth));
      }
    }
    ASSIGN_OR_RETURN(m.min, Count(s, "minProperties", path, 0));
    ASSIGN_OR_RETURN(m.max, Count(s, "maxProperties", path, Grammar::kUnbounded));
    auto e = AddObject(m, rules_, g_);
    if (!e.ok()) return Bad(path, e.status().message());
    return *e;
  }

  const json& root_;
  Grammar g_;
  JsonRules rules_;
  NumberSchemas numbers_{g_};
  std::map<std::string, int32_t> ref_rules_;
  std::vector<std::pair<std::string, int32_t>> pending_;
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
  auto schema = ParseJsonKeepingNumerals(schema_json);
  if (!schema.ok()) {
    // A number beyond a double's range (json_numerals.h) is JSON, which no reader here holds.
    if (auto beyond = FindNumberBeyondDouble(schema_json))
      return InvalidArgument("JSON schema: " + beyond->Message());
    return InvalidArgument("JSON schema is not valid JSON: " + schema.status().message());
  }
  return SchemaCompiler(*schema).Compile();
}

Grammar JsonObjectGrammar() {
  static const json kNull;
  return SchemaCompiler(kNull).AnyObject();
}

}  // namespace sluice::llm::structured
