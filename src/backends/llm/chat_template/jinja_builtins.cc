#include "backends/llm/chat_template/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string_view>

namespace sluice::llm::jinja {
namespace {

Status Err(const std::string& m) {
  return InvalidArgument("chat template: " + m);
}

// Splits UTF-8 into code points (invalid bytes stand alone).
std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

bool IsWs(const std::string& ch) {
  return ch == " " || ch == "\t" || ch == "\n" || ch == "\r" || ch == "\f" || ch == "\v" ||
         ch == "\xC2\xA0" || ch == "\xE3\x80\x80" || ch == "\xE2\x80\x83";
}

// Python str.strip/lstrip/rstrip; `chars` null = whitespace.
std::string Strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto cs = Chars(s);
  std::vector<std::string> set;
  if (chars != nullptr && chars->is_string()) set = Chars(chars->str());
  auto strip_it = [&](const std::string& ch) {
    if (chars == nullptr || !chars->is_string()) return IsWs(ch);
    return std::find(set.begin(), set.end(), ch) != set.end();
  };
  size_t b = 0, e = cs.size();
  if (left)
    while (b < e && strip_it(cs[b])) ++b;
  if (right)
    while (e > b && strip_it(cs[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cs[i];
  return out;
}

std::string AsciiCase(std::string s, bool upper) {
  for (char& c : s)
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<std::string> ReplaceAll(const std::string& s, const std::string& from, const std::string& to,
                               int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between characters
    const auto cs = Chars(s);
    int64_t n = 0;
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (i < cs.size()) out += cs[i];
      if (out.size() > kMaxBuiltinResult) return Err("replace result too large");
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
    ++n;
    if (out.size() > kMaxBuiltinResult) return Err("replace result too large");
  }
  out.append(s, pos);
  return out;
}

Result<Value> Split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Value::List out;
  if (sep == nullptr || sep->is_none() || sep->is_undefined()) {
    const auto cs = Chars(s);
    size_t i = 0;
    while (i < cs.size()) {
      while (i < cs.size() && IsWs(cs[i])) ++i;
      if (i >= cs.size()) break;
      std::string word;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        for (; i < cs.size(); ++i) word += cs[i];
        // Python keeps trailing whitespace of the remainder stripped on the right only.
        out.push_back(Value::String(Strip(word, nullptr, false, true)));
        break;
      }
      while (i < cs.size() && !IsWs(cs[i])) word += cs[i++];
      out.push_back(Value::String(std::move(word)));
    }
    return Value::MakeList(std::move(out));
  }
  // Python's: a separator is a non-empty string ("".find would match everywhere, for ever).
  if (!sep->is_string()) return Err("split: the separator must be a string");
  const std::string& d = sep->str();
  if (d.empty()) return Err("split: empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t hit = s.find(d, pos);
    if (hit == std::string::npos) break;
    out.push_back(Value::String(s.substr(pos, hit - pos)));
    pos = hit + d.size();
  }
  out.push_back(Value::String(s.substr(pos)));
  return Value::MakeList(std::move(out));
}

const Value* Arg(const Args& args, const Kwargs& kwargs, size_t i, const char* name) {
  if (i < args.size()) return &args[i];
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

int64_t IntArg(const Value* v, int64_t def) {
  if (v == nullptr || !v->is_number()) return def;
  return v->is_int() ? v->as_int() : static_cast<int64_t>(v->as_float());
}

// Attribute path "a.b" on a dict value.
Value Attribute(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part =
        path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      const size_t idx = std::strtoul(part.c_str(), nullptr, 10);
      cur = idx < cur.list().size() ? cur.list()[idx] : Value();
    } else {
      cur = cur.Get(part);
    }
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

Result<Value::List> Iterate(const Value& v, const std::string& what) {
  if (v.is_list()) return v.list();
  if (v.is_dict() || v.is_namespace()) {
    Value::List keys;
    for (const auto& [k, x] : v.dict()) keys.push_back(Value::String(k));
    return keys;
  }
  if (v.is_string()) {
    Value::List chars;
    for (auto& c : Chars(v.str())) chars.push_back(Value::String(std::move(c)));
    return chars;
  }
  if (v.is_undefined()) return Value::List{};
  return Err(what + ": cannot iterate over " + std::string(v.TypeName()));
}

Result<Value> SelectReject(const Value& subject, const Args& args, bool by_attr, bool select) {
  ASSIGN_OR_RETURN(Value::List items, Iterate(subject, by_attr ? "selectattr" : "select"));
  size_t a = 0;
  std::string attr;
  if (by_attr) {
    if (args.empty() || !args[0].is_string())
      return Err("selectattr/rejectattr need an attribute name");
    attr = args[0].str();
    a = 1;
  }
  std::string test;
  if (a < args.size()) {
    if (!args[a].is_string()) return Err("select: test name must be a string");
    test = args[a].str();
  }
  const Args test_args(args.begin() + static_cast<long>(std::min(args.size(), a + 1)), args.end());
  Value::List out;
  for (const Value& item : items) {
    const Value x = by_attr ? Attribute(item, attr) : item;
    bool pass;
    if (test.empty()) {
      pass = x.Truthy();
    } else {
      ASSIGN_OR_RETURN(pass, ApplyTest(test, x, test_args));
    }
    if (pass == select) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

Result<Value> Length(const Value& v) {
  if (v.is_string()) return Value::Int(static_cast<int64_t>(Chars(v.str()).size()));
  if (v.is_list()) return Value::Int(static_cast<int64_t>(v.list().size()));
  if (v.is_dict() || v.is_namespace()) return Value::Int(static_cast<int64_t>(v.dict().size()));
  return Err("length of " + std::string(v.TypeName()));
}

Value Items(const Value& v) {
  Value::List out;
  for (const auto& [k, x] : v.dict()) out.push_back(Value::MakeList({Value::String(k), x}));
  return Value::MakeList(std::move(out));
}

}  // namespace

Result<int> Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int())
      return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    return a.as_float() < b.as_float() ? -1 : a.as_float() > b.as_float() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.str().compare(b.str());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return Err("cannot compare " + std::string(a.TypeName()) + " and " + std::string(b.TypeName()));
}

Result<bool> ApplyTest(const std::string& name, const Value& v, const Args& args) {
  using VK = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind() == VK::kBool;
  if (name == "true") return v.kind() == VK::kBool && v.as_bool();
  if (name == "false") return v.kind() == VK::kBool && !v.as_bool();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.kind() == VK::kFloat;
  if (name == "mapping") return v.is_dict() || v.is_namespace();
  if (name == "iterable") return v.is_list() || v.is_string();  // as Hugging Face's Jinja
  if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
  if (name == "callable") return v.kind() == VK::kMacro;
  if (name == "lower") return v.is_string() && AsciiCase(v.str(), false) == v.str();
  if (name == "upper") return v.is_string() && AsciiCase(v.str(), true) == v.str();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) return Err("test '" + name + "' needs an integer");
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (!v.is_int() || args.empty() || !args[0].is_int() || args[0].as_int() == 0)
      return Err("bad divisibleby");
    return v.as_int() % args[0].as_int() == 0;
  }
  if (args.empty()) return Err("unknown test '" + name + "' or missing argument");
  const Value& o = args[0];
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v.Equals(o);
  if (name == "ne" || name == "!=") return !v.Equals(o);
  if (name == "in") {
    if (o.is_string() && v.is_string()) return o.str().find(v.str()) != std::string::npos;
    if (o.is_list())
      return std::any_of(o.list().begin(), o.list().end(),
                         [&](const Value& x) { return x.Equals(v); });
    if ((o.is_dict() || o.is_namespace()) && v.is_string()) return !o.Get(v.str()).is_undefined();
    return false;
  }
  if (name == "lt" || name == "lessthan" || name == "<" || name == "gt" || name == "greaterthan" ||
      name == ">" || name == "le" || name == "<=" || name == "ge" || name == ">=") {
    ASSIGN_OR_RETURN(int c, Compare(v, o));
    if (name == "lt" || name == "lessthan" || name == "<") return c < 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return c > 0;
    if (name == "le" || name == "<=") return c <= 0;
    return c >= 0;
  }
  return Err("unknown test '" + name + "'");
}

namespace {

// One filter of ApplyFilter's table; `name` is the name it was called by, for the filters
// that share a function (first/last, select/reject, the string filters).
using FilterFn = Result<Value> (*)(const std::string& name, const Value& v, const Args& args,
                                   const Kwargs& kwargs);

Result<Value> FilterDefault(const std::string&, const Value& v, const Args& args,
                            const Kwargs& kwargs) {
  const Value* def = Arg(args, kwargs, 0, "default_value");
  const Value* boolean = Arg(args, kwargs, 1, "boolean");
  const bool use_default =
      v.is_undefined() || (boolean != nullptr && boolean->Truthy() && !v.Truthy());
  if (use_default) return def != nullptr ? *def : Value::String("");
  return v;
}

Result<Value> FilterSafe(const std::string&, const Value& v, const Args&, const Kwargs&) {
  return v;
}

Result<Value> FilterToJson(const std::string&, const Value& v, const Args& args,
                           const Kwargs& kwargs) {
  const Value* indent = Arg(args, kwargs, 0, "indent");
  std::string out;
  RETURN_IF_ERROR(v.ToJson(&out, static_cast<int>(std::clamp<int64_t>(IntArg(indent, 0), 0, 16))));
  return Value::String(std::move(out));
}

Result<Value> FilterLength(const std::string&, const Value& v, const Args&, const Kwargs&) {
  return Length(v);
}

Result<Value> FilterString(const std::string&, const Value& v, const Args&, const Kwargs&) {
  return Value::String(v.ToString());
}

Result<Value> FilterItems(const std::string&, const Value& v, const Args&, const Kwargs&) {
  if (v.is_undefined()) return Value::MakeList({});
  if (!v.is_dict() && !v.is_namespace()) return Err("items of " + std::string(v.TypeName()));
  return Items(v);
}

Result<Value> FilterList(const std::string&, const Value& v, const Args&, const Kwargs&) {
  ASSIGN_OR_RETURN(Value::List l, Iterate(v, "list"));
  return Value::MakeList(std::move(l));
}

Result<Value> FilterFirstLast(const std::string& name, const Value& v, const Args&, const Kwargs&) {
  ASSIGN_OR_RETURN(Value::List l, Iterate(v, name));
  if (l.empty()) return Value();
  return name == "first" ? l.front() : l.back();
}

Result<Value> FilterReverse(const std::string&, const Value& v, const Args&, const Kwargs&) {
  if (v.is_string()) {
    auto cs = Chars(v.str());
    std::string out;
    for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
    return Value::String(std::move(out));
  }
  ASSIGN_OR_RETURN(Value::List l, Iterate(v, "reverse"));
  std::reverse(l.begin(), l.end());
  return Value::MakeList(std::move(l));
}

Result<Value> FilterJoin(const std::string&, const Value& v, const Args& args,
                         const Kwargs& kwargs) {
  const Value* sep = Arg(args, kwargs, 0, "d");
  const Value* attr = Arg(args, kwargs, 1, "attribute");
  ASSIGN_OR_RETURN(Value::List l, Iterate(v, "join"));
  std::string out;
  for (size_t i = 0; i < l.size(); ++i) {
    if (i && sep != nullptr) out += sep->ToString();
    out += (attr != nullptr && attr->is_string() ? Attribute(l[i], attr->str()) : l[i]).ToString();
    if (out.size() > kMaxBuiltinResult) return Err("join result too large");
  }
  return Value::String(std::move(out));
}

// select, reject, selectattr, rejectattr.
Result<Value> FilterSelect(const std::string& name, const Value& v, const Args& args,
                           const Kwargs&) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  return SelectReject(v, args, by_attr, name == "select" || name == "selectattr");
}

Result<Value> FilterMap(const std::string&, const Value& v, const Args& args,
                        const Kwargs& kwargs) {
  ASSIGN_OR_RETURN(Value::List l, Iterate(v, "map"));
  const Value* attr = Arg(Args{}, kwargs, 0, "attribute");
  const Value* def = Arg(Args{}, kwargs, 0, "default");
  Value::List out;
  for (const Value& x : l) {
    if (attr != nullptr && attr->is_string()) {
      Value a = Attribute(x, attr->str());
      out.push_back(a.is_undefined() && def != nullptr ? *def : a);
    } else if (!args.empty() && args[0].is_string()) {
      ASSIGN_OR_RETURN(Value m,
                       ApplyFilter(args[0].str(), x, Args(args.begin() + 1, args.end()), {}));
      out.push_back(std::move(m));
    } else {
      return Err("map needs attribute= or a filter name");
    }
  }
  return Value::MakeList(std::move(out));
}

Result<Value> FilterInt(const std::string&, const Value& v, const Args& args,
                        const Kwargs& kwargs) {
  if (v.is_int()) return v;
  if (v.is_number()) return Value::Int(static_cast<int64_t>(v.as_float()));
  if (v.kind() == Value::Kind::kBool) return Value::Int(v.as_bool() ? 1 : 0);
  if (v.is_string()) {
    char* end = nullptr;
    const std::string s = Strip(v.str(), nullptr, true, true);
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0') return Value::Int(x);
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(d)) return Value::Int(static_cast<int64_t>(d));
  }
  const Value* def = Arg(args, kwargs, 0, "default");
  return def != nullptr ? *def : Value::Int(0);
}

Result<Value> FilterFloat(const std::string&, const Value& v, const Args& args,
                          const Kwargs& kwargs) {
  if (v.is_number()) return Value::Float(v.as_float());
  if (v.is_string()) {
    char* end = nullptr;
    const double d = std::strtod(v.str().c_str(), &end);
    if (!v.str().empty() && *end == '\0') return Value::Float(d);
  }
  const Value* def = Arg(args, kwargs, 0, "default");
  return def != nullptr ? *def : Value::Float(0.0);
}

Result<Value> FilterAbs(const std::string&, const Value& v, const Args&, const Kwargs&) {
  if (v.is_int()) return Value::Int(v.as_int() < 0 ? -v.as_int() : v.as_int());
  if (v.is_number()) return Value::Float(std::fabs(v.as_float()));
  return Err("abs of " + std::string(v.TypeName()));
}

// trim, upper, lower, replace; capitalize and title as the string methods of the same name.
Result<Value> FilterOnString(const std::string& name, const Value& v, const Args& args,
                             const Kwargs& kwargs) {
  if (!v.is_string())
    return Err("filter '" + name + "' needs a string, got " + std::string(v.TypeName()));
  const std::string& s = v.str();
  if (name == "trim") return Value::String(Strip(s, Arg(args, kwargs, 0, "chars"), true, true));
  if (name == "upper") return Value::String(AsciiCase(s, true));
  if (name == "lower") return Value::String(AsciiCase(s, false));
  if (name == "replace") {
    const Value* from = Arg(args, kwargs, 0, "old");
    const Value* to = Arg(args, kwargs, 1, "new");
    if (from == nullptr || to == nullptr || !from->is_string())
      return Err("replace needs two strings");
    ASSIGN_OR_RETURN(std::string r, ReplaceAll(s, from->str(), to->ToString(),
                                               IntArg(Arg(args, kwargs, 2, "count"), -1)));
    return Value::String(std::move(r));
  }
  return CallMethod(v, name, args, kwargs);
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

// One row per function, its names side by side.
// clang-format off
constexpr FilterEntry kFilters[] = {
    {"default", FilterDefault},   {"d", FilterDefault},
    {"safe", FilterSafe},         {"tojson", FilterToJson},
    {"length", FilterLength},     {"count", FilterLength},
    {"string", FilterString},     {"items", FilterItems},          {"list", FilterList},
    {"first", FilterFirstLast},   {"last", FilterFirstLast},       {"reverse", FilterReverse},
    {"join", FilterJoin},         {"map", FilterMap},
    {"select", FilterSelect},     {"reject", FilterSelect},
    {"selectattr", FilterSelect}, {"rejectattr", FilterSelect},
    {"int", FilterInt},           {"float", FilterFloat},          {"abs", FilterAbs},
    {"trim", FilterOnString},     {"upper", FilterOnString},       {"lower", FilterOnString},
    {"capitalize", FilterOnString}, {"title", FilterOnString},     {"replace", FilterOnString},
};
// clang-format on

}  // namespace

Result<Value> ApplyFilter(const std::string& name, const Value& v, const Args& args,
                          const Kwargs& kwargs) {
  for (const FilterEntry& f : kFilters) {
    if (f.name == name) return f.fn(name, v, args, kwargs);
  }
  return Err("unknown filter '" + name + "'");
}

Result<Value> CallMethod(const Value& obj, const std::string& name, const Args& args,
                         const Kwargs& kwargs) {
  if (obj.is_string()) {
    const std::string& s = obj.str();
    if (name == "startswith" || name == "endswith") {
      if (args.empty()) return Err(name + " needs an argument");
      Value::List options = args[0].is_list() ? args[0].list() : Value::List{args[0]};
      for (const Value& p : options) {
        if (!p.is_string()) return Err(name + " needs strings");
        const std::string& x = p.str();
        const bool hit =
            name == "startswith"
                ? s.compare(0, x.size(), x) == 0
                : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
        if (hit) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const Value* chars = Arg(args, kwargs, 0, "chars");
      if (chars != nullptr && chars->is_none()) chars = nullptr;
      return Value::String(Strip(s, chars, name != "rstrip", name != "lstrip"));
    }
    if (name == "split")
      return Split(s, Arg(args, kwargs, 0, "sep"), IntArg(Arg(args, kwargs, 1, "maxsplit"), -1));
    if (name == "upper" || name == "lower") return Value::String(AsciiCase(s, name == "upper"));
    if (name == "capitalize") {
      std::string out = AsciiCase(s, false);
      if (!out.empty())
        out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
      return Value::String(std::move(out));
    }
    if (name == "title") {
      std::string out = s;
      bool start = true;
      for (char& c : out) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
        c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c))
                                    : std::tolower(static_cast<unsigned char>(c)));
        start = !alpha;
      }
      return Value::String(std::move(out));
    }
    if (name == "replace") return ApplyFilter("replace", obj, args, kwargs);
    if (name == "find") {
      if (args.empty() || !args[0].is_string()) return Err("find needs a string");
      const size_t p = s.find(args[0].str());
      return Value::Int(
          p == std::string::npos ? -1 : static_cast<int64_t>(Chars(s.substr(0, p)).size()));
    }
    if (name == "join") {
      return ApplyFilter("join", args.empty() ? Value() : args[0], {obj}, {});
    }
    return Err("unknown string method '" + name + "'");
  }
  if (obj.is_dict() || obj.is_namespace()) {
    if (name == "items") return Items(obj);
    if (name == "keys" || name == "values") {
      Value::List out;
      for (const auto& [k, x] : obj.dict()) out.push_back(name == "keys" ? Value::String(k) : x);
      return Value::MakeList(std::move(out));
    }
    if (name == "get") {
      if (args.empty() || !args[0].is_string()) return Err("get needs a string key");
      Value x = obj.Get(args[0].str());
      if (x.is_undefined()) return args.size() > 1 ? args[1] : Value::None();
      return x;
    }
    return Err("unknown dict method '" + name + "'");
  }
  return Err("'" + std::string(obj.TypeName()) + "' has no method '" + name + "'");
}

Result<Value> CallGlobal(const std::string& name, const Args& args, const Kwargs& kwargs) {
  if (name == "range") {
    int64_t start = 0, stop = 0, step = 1;
    for (const Value& a : args) {
      if (!a.is_int()) return Err("range needs integers");
    }
    if (args.size() == 1)
      stop = args[0].as_int();
    else if (args.size() >= 2) {
      start = args[0].as_int();
      stop = args[1].as_int();
    }
    if (args.size() >= 3) step = args[2].as_int();
    if (args.empty() || args.size() > 3 || step == 0) return Err("bad range arguments");
    Value::List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 100000) return Err("range longer than 100000");
      out.push_back(Value::Int(i));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "namespace" || name == "dict") {
    Value::Dict d;
    if (!args.empty() && (args[0].is_dict() || args[0].is_namespace())) d = args[0].dict();
    for (const auto& kw : kwargs) {  // not a structured binding: clang 14 cannot capture one
      auto it =
          std::find_if(d.begin(), d.end(), [&](const auto& e) { return e.first == kw.first; });
      if (it != d.end())
        it->second = kw.second;
      else
        d.emplace_back(kw.first, kw.second);
    }
    return name == "namespace" ? Value::MakeNamespace(std::move(d)) : Value::MakeDict(std::move(d));
  }
  if (name == "strftime_now") {
    if (args.empty() || !args[0].is_string()) return Err("strftime_now needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), args[0].str().c_str(), &tm);
    return Value::String(std::string(buf, n));
  }
  return NotFound(name);
}

}  // namespace sluice::llm::jinja
