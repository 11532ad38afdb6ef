#pragma once
// The values a chat template computes with: undefined, none, bool, int, float, string,
// list, dict (insertion-ordered, string keys), namespace (the one mutable object) and
// macro. Nothing else exists inside the sandbox: there is no way to reach host objects.
// Strings, lists and dicts are shared immutable payloads, so copying a Value is cheap.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::llm::jinja {

struct MacroDef;  // defined by the parser (jinja_ast.h)

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kMacro
  };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // undefined
  static Value None() {
    Value v;
    v.kind_ = Kind::kNone;
    return v;
  }
  static Value Bool(bool b) {
    Value v;
    v.kind_ = Kind::kBool;
    v.i_ = b;
    return v;
  }
  static Value Int(int64_t i) {
    Value v;
    v.kind_ = Kind::kInt;
    v.i_ = i;
    return v;
  }
  static Value Float(double f) {
    Value v;
    v.kind_ = Kind::kFloat;
    v.f_ = f;
    return v;
  }
  static Value String(std::string s) {
    Value v;
    v.kind_ = Kind::kString;
    v.s_ = std::make_shared<const std::string>(std::move(s));
    return v;
  }
  static Value MakeList(List l) {
    Value v;
    v.kind_ = Kind::kList;
    for (const Value& e : l) v.holds_namespace_ |= e.is_namespace() || e.holds_namespace_;
    v.l_ = std::make_shared<const List>(std::move(l));
    return v;
  }
  static Value MakeDict(Dict d) {
    Value v;
    v.kind_ = Kind::kDict;
    for (const auto& e : d)
      v.holds_namespace_ |= e.second.is_namespace() || e.second.holds_namespace_;
    v.d_ = std::make_shared<const Dict>(std::move(d));
    return v;
  }
  static Value MakeNamespace(Dict d) {
    Value v;
    v.kind_ = Kind::kNamespace;
    v.ns_ = std::make_shared<Dict>(std::move(d));
    return v;
  }
  static Value Macro(const MacroDef* m) {
    Value v;
    v.kind_ = Kind::kMacro;
    v.macro_ = m;
    return v;
  }

  // From JSON (objects keep their key order). Fails past max_depth levels of nesting.
  static Result<Value> FromJson(const nlohmann::ordered_json& j, int max_depth = 64);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }
  double as_float() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : f_; }
  const std::string& str() const { return *s_; }
  const List& list() const { return *l_; }
  // Dict or namespace entries.
  const Dict& dict() const { return kind_ == Kind::kNamespace ? *ns_ : *d_; }
  Dict& mutable_namespace() const { return *ns_; }
  const MacroDef* macro() const { return macro_; }

  // Member lookup on a dict or namespace; undefined when absent or not a mapping.
  Value Get(std::string_view key) const;

  // Jinja truthiness.
  bool Truthy() const;
  // Text for {{ }} and ~: strings as-is, True/False, None, Python-style reprs.
  std::string ToString() const;
  // Python repr (strings quoted), used inside list/dict reprs.
  std::string Repr() const;
  // tojson: Python json.dumps(ensure_ascii=False) spacing (", " / ": "), or with indent.
  Status ToJson(std::string* out, int indent, int depth = 0) const;
  // Python ==.
  bool Equals(const Value& o) const;
  // Whether this value is, or holds at any depth, the namespace whose entries are `ns`. The
  // interpreter refuses to store a value in a namespace it reaches, so values never form a
  // cycle (which every recursive walk, Repr, ToJson, Equals, would follow for ever).
  bool Reaches(const Dict* ns) const;
  std::string_view TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const List> l_;
  std::shared_ptr<const Dict> d_;
  std::shared_ptr<Dict> ns_;      // shared on purpose: a namespace is mutated through any copy
  bool holds_namespace_ = false;  // a list or dict with a namespace inside (Reaches' shortcut)
  const MacroDef* macro_ = nullptr;
};

// Appends `s` as a JSON string literal (escapes as JSON.stringify / json.dumps do).
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace sluice::llm::jinja
