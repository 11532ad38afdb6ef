#include "backends/llm/chat_template/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace sluice::llm::jinja {

Result<Value> Value::FromJson(const nlohmann::ordered_json& j, int max_depth) {
  if (max_depth < 0) return InvalidArgument("chat template input nests too deeply");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) {
        ASSIGN_OR_RETURN(Value v, FromJson(e, max_depth - 1));
        l.push_back(std::move(v));
      }
      return Value::MakeList(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.reserve(j.size());
      for (const auto& [k, e] : j.items()) {
        ASSIGN_OR_RETURN(Value v, FromJson(e, max_depth - 1));
        d.emplace_back(k, std::move(v));
      }
      return Value::MakeDict(std::move(d));
    }
    case nlohmann::ordered_json::value_t::binary:
    case nlohmann::ordered_json::value_t::discarded:
      break;
  }
  return InvalidArgument("chat template input has an unsupported JSON value");
}

Value Value::Get(std::string_view key) const {
  if (kind_ != Kind::kDict && kind_ != Kind::kNamespace) return Value();
  for (const auto& [k, v] : dict()) {
    if (k == key) return v;
  }
  return Value();
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0.0;
    case Kind::kString:
      return !s_->empty();
    case Kind::kList:
      return !l_->empty();
    case Kind::kDict:
      return !d_->empty();
    case Kind::kNamespace:
    case Kind::kMacro:
      return true;
  }
  return false;
}

namespace {

std::string FloatToString(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), f);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string Value::ToString() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return i_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(i_);
    case Kind::kFloat:
      return FloatToString(f_);
    case Kind::kString:
      return *s_;
    case Kind::kList:
    case Kind::kDict:
    case Kind::kNamespace:
      return Repr();
    case Kind::kMacro:
      return "<macro>";
  }
  return "";
}

std::string Value::Repr() const {
  switch (kind_) {
    case Kind::kString: {
      std::string out = "'";
      for (char c : *s_) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out.push_back(c);
      }
      return out + "'";
    }
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < l_->size(); ++i) out += (i ? ", " : "") + (*l_)[i].Repr();
      return out + "]";
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : dict()) {
        out += (first ? "'" : ", '") + k + "': " + v.Repr();
        first = false;
      }
      return out + "}";
    }
    case Kind::kUndefined:
    case Kind::kNone:
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kMacro:
      return kind_ == Kind::kUndefined ? "None" : ToString();
  }
  return "";
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

Status Value::ToJson(std::string* out, int indent, int depth) const {
  if (depth > 64) return InvalidArgument("tojson: value nests too deeply");
  // Built by appending: "\n" + std::string(...) trips GCC 12's false -Wrestrict at -O3
  // (GCC bug 105651).
  std::string pad;
  if (indent > 0) pad.append(1, '\n').append(static_cast<size_t>(indent) * depth, ' ');
  const std::string child_pad =
      indent > 0 ? pad + std::string(static_cast<size_t>(indent), ' ') : "";
  const char* item_sep = indent > 0 ? "," : ", ";
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      *out += "null";
      return Status::Ok();
    case Kind::kBool:
      *out += i_ ? "true" : "false";
      return Status::Ok();
    case Kind::kInt:
      *out += std::to_string(i_);
      return Status::Ok();
    case Kind::kFloat: {
      if (!std::isfinite(f_)) return InvalidArgument("tojson: non-finite number");
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof(buf), f_);
      out->append(buf, r.ptr);
      return Status::Ok();
    }
    case Kind::kString:
      AppendJsonString(*s_, out);
      return Status::Ok();
    case Kind::kList: {
      *out += "[";
      for (size_t i = 0; i < l_->size(); ++i) {
        if (i) *out += item_sep;
        *out += child_pad;
        RETURN_IF_ERROR((*l_)[i].ToJson(out, indent, depth + 1));
      }
      if (!l_->empty()) *out += pad;
      *out += "]";
      return Status::Ok();
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      *out += "{";
      bool first = true;
      for (const auto& [k, v] : dict()) {
        if (!first) *out += item_sep;
        first = false;
        *out += child_pad;
        AppendJsonString(k, out);
        *out += ": ";
        RETURN_IF_ERROR(v.ToJson(out, indent, depth + 1));
      }
      if (!dict().empty()) *out += pad;
      *out += "}";
      return Status::Ok();
    }
    case Kind::kMacro:
      return InvalidArgument("tojson: cannot serialise a macro");
  }
  return Status::Ok();
}

bool Value::Reaches(const Dict* ns) const {
  if (kind_ == Kind::kNamespace) {
    if (ns_.get() == ns) return true;
  } else if ((kind_ != Kind::kList && kind_ != Kind::kDict) || !holds_namespace_) {
    return false;  // JSON data, strings, numbers: no namespace inside
  }
  if (kind_ == Kind::kList) {
    for (const Value& e : *l_) {
      if (e.Reaches(ns)) return true;
    }
    return false;
  }
  for (const auto& e : dict()) {
    if (e.second.Reaches(ns)) return true;
  }
  return false;
}

bool Value::Equals(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kInt && o.kind_ == Kind::kInt) return i_ == o.i_;
    return as_float() == o.as_float();
  }
  if ((kind_ == Kind::kBool) != (o.kind_ == Kind::kBool)) {
    // Python: True == 1; keep it simple and strict for other mixes.
    if (kind_ == Kind::kBool && o.kind_ == Kind::kInt) return i_ == o.i_;
    if (o.kind_ == Kind::kBool && kind_ == Kind::kInt) return i_ == o.i_;
    return false;
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kBool:
    case Kind::kInt:
      return i_ == o.i_;
    case Kind::kFloat:
      return f_ == o.f_;
    case Kind::kString:
      return *s_ == *o.s_;
    case Kind::kList:
      if (l_->size() != o.l_->size()) return false;
      for (size_t i = 0; i < l_->size(); ++i) {
        if (!(*l_)[i].Equals((*o.l_)[i])) return false;
      }
      return true;
    case Kind::kDict:
    case Kind::kNamespace: {
      const Dict& a = dict();
      const Dict& b = o.dict();
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a) {
        if (!v.Equals(o.Get(k))) return false;
      }
      return kind_ == Kind::kDict || ns_ == o.ns_;
    }
    case Kind::kMacro:
      return macro_ == o.macro_;
  }
  return false;
}

std::string_view Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "none";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "namespace";
    case Kind::kMacro:
      return "macro";
  }
  return "?";
}

}  // namespace sluice::llm::jinja
