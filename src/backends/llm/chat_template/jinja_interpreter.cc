#include "backends/llm/chat_template/jinja_interpreter.h"

#include <cmath>
#include <unordered_map>

#include "backends/llm/chat_template/jinja_builtins.h"

namespace sluice::llm::jinja {
namespace {

class Renderer {
 public:
  Renderer(const Value::Dict& vars, const RenderLimits& limits) : limits_(limits) {
    frames_.emplace_back();
    for (const auto& [k, v] : vars) frames_[0].vars[k] = v;
  }

  Result<std::string> Run(const Body& body) {
    RETURN_IF_ERROR(ExecBody(body));
    return std::move(out_);
  }

 private:
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    bool barrier = false;  // a macro call: lookups skip to the template's top frame
  };
  enum class Control { kNone, kBreak, kContinue };

  Status Tick() {
    if (++steps_ > limits_.max_steps) {
      return InvalidArgument("chat template exceeded its step limit of " +
                             std::to_string(limits_.max_steps));
    }
    return Status::Ok();
  }

  Status Emit(std::string_view s) {
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      return InvalidArgument("chat template output exceeds " +
                             std::to_string(limits_.max_output_bytes) + " bytes");
    }
    out_.append(s);
    return Status::Ok();
  }

  Value Lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > 0;) {
      const auto it = frames_[i].vars.find(name);
      if (it != frames_[i].vars.end()) return it->second;
      if (frames_[i].barrier) {
        const auto top = frames_[0].vars.find(name);
        return top != frames_[0].vars.end() ? top->second : Value();
      }
    }
    return Value();
  }
  void Set(const std::string& name, Value v) { frames_.back().vars[name] = std::move(v); }

  Status ExecBody(const Body& body) {
    for (const StmtPtr& s : body) {
      RETURN_IF_ERROR(Exec(*s));
      if (control_ != Control::kNone) return Status::Ok();
    }
    return Status::Ok();
  }

  Status Exec(const Stmt& s) {
    RETURN_IF_ERROR(Tick());
    switch (s.kind) {
      case Stmt::Kind::kText:
        return Emit(s.text);
      case Stmt::Kind::kOutput: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        return Emit(v.ToString());
      }
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches) {
          ASSIGN_OR_RETURN(Value c, Eval(*cond));
          if (c.Truthy()) return ExecBody(body);
        }
        return ExecBody(s.else_body);
      case Stmt::Kind::kFor:
        return ExecFor(s);
      case Stmt::Kind::kSet: {
        ASSIGN_OR_RETURN(Value v, Eval(*s.expr));
        if (!s.target_attr.empty()) {
          Value ns = Lookup(s.targets[0]);
          if (!ns.is_namespace()) {
            return InvalidArgument("chat template line " + std::to_string(s.line) + ": '" +
                                   s.targets[0] + "' is not a namespace");
          }
          auto& d = ns.mutable_namespace();
          // A namespace that held itself ({% set ns.me = ns %}, or through a list or dict)
          // would be a cycle: never freed, and endless to print or compare.
          if (v.Reaches(&d)) {
            return InvalidArgument("chat template line " + std::to_string(s.line) + ": '" +
                                   s.targets[0] + "." + s.target_attr +
                                   "' cannot hold the namespace itself");
          }
          for (auto& [k, x] : d) {
            if (k == s.target_attr) {
              x = std::move(v);
              return Status::Ok();
            }
          }
          d.emplace_back(s.target_attr, std::move(v));
          return Status::Ok();
        }
        return Assign(s.targets, std::move(v), s.line);
      }
      case Stmt::Kind::kSetBlock: {
        std::string saved = std::move(out_);
        out_.clear();
        const Status st = ExecBody(s.body);
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        RETURN_IF_ERROR(st);
        Set(s.targets[0], Value::String(std::move(captured)));
        return Status::Ok();
      }
      case Stmt::Kind::kMacro:
        Set(s.macro->name, Value::Macro(s.macro.get()));
        return Status::Ok();
      case Stmt::Kind::kBreak:
        control_ = Control::kBreak;
        return Status::Ok();
      case Stmt::Kind::kContinue:
        control_ = Control::kContinue;
        return Status::Ok();
    }
    return Status::Ok();
  }

  Status Assign(const std::vector<std::string>& targets, Value v, int line) {
    if (targets.size() == 1) {
      Set(targets[0], std::move(v));
      return Status::Ok();
    }
    if (!v.is_list() || v.list().size() != targets.size()) {
      return InvalidArgument("chat template line " + std::to_string(line) +
                             ": cannot unpack into " + std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) Set(targets[i], v.list()[i]);
    return Status::Ok();
  }

  Status ExecFor(const Stmt& s) {
    ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr));
    Value::List all;
    if (iterable.is_list()) {
      all = iterable.list();
    } else if (iterable.is_dict() || iterable.is_namespace()) {
      for (const auto& [k, v] : iterable.dict()) all.push_back(Value::String(k));
    } else if (iterable.is_string()) {
      ASSIGN_OR_RETURN(Value chars, ApplyFilter("list", iterable, {}, {}));
      all = chars.list();
    } else if (!iterable.is_undefined()) {
      return InvalidArgument("chat template line " + std::to_string(s.line) +
                             ": cannot loop over " + std::string(iterable.TypeName()));
    }
    frames_.emplace_back();  // one scope for the whole loop, as Hugging Face's Jinja
    Status st = Status::Ok();
    Value::List items;
    for (Value& item : all) {
      if (s.filter) {
        st = Assign(s.targets, item, s.line);
        if (!st.ok()) break;
        auto keep = Eval(*s.filter);
        if (!keep.ok()) {
          st = keep.status();
          break;
        }
        if (!keep->Truthy()) continue;
      }
      items.push_back(std::move(item));
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; st.ok() && i < n; ++i) {
      st = Tick();
      if (!st.ok()) break;
      Value::Dict loop = {
          {"index", Value::Int(i + 1)},
          {"index0", Value::Int(i)},
          {"revindex", Value::Int(n - i)},
          {"revindex0", Value::Int(n - i - 1)},
          {"first", Value::Bool(i == 0)},
          {"last", Value::Bool(i == n - 1)},
          {"length", Value::Int(n)},
          {"previtem", i > 0 ? items[i - 1] : Value()},
          {"nextitem", i + 1 < n ? items[i + 1] : Value()},
      };
      Set("loop", Value::MakeDict(std::move(loop)));
      st = Assign(s.targets, items[i], s.line);
      if (!st.ok()) break;
      st = ExecBody(s.body);
      if (control_ == Control::kBreak) {
        control_ = Control::kNone;
        break;
      }
      control_ = Control::kNone;
    }
    frames_.pop_back();
    RETURN_IF_ERROR(st);
    if (n == 0) return ExecBody(s.else_body);
    return Status::Ok();
  }

  Status LineError(const Expr& e, const std::string& what) const {
    return InvalidArgument("chat template line " + std::to_string(e.line) + ": " + what);
  }

  Result<std::pair<Args, Kwargs>> EvalArgs(const Expr& e, size_t first) {
    Args args;
    Kwargs kwargs;
    for (size_t i = first; i < e.children.size(); ++i) {
      ASSIGN_OR_RETURN(Value v, Eval(*e.children[i]));
      args.push_back(std::move(v));
    }
    for (const auto& [k, x] : e.kwargs) {
      ASSIGN_OR_RETURN(Value v, Eval(*x));
      kwargs.emplace_back(k, std::move(v));
    }
    return std::make_pair(std::move(args), std::move(kwargs));
  }

  Result<Value> CallMacro(const MacroDef& m, const Args& args, const Kwargs& kwargs,
                          const Expr& e) {
    if (call_depth_ >= limits_.max_call_depth)
      return LineError(e, "macro calls nest deeper than " + std::to_string(limits_.max_call_depth));
    if (args.size() > m.params.size())
      return LineError(e, "too many arguments to macro '" + m.name + "'");
    Frame f;
    f.barrier = true;
    for (size_t i = 0; i < m.params.size(); ++i) {
      Value v;
      bool given = false;
      if (i < args.size()) {
        v = args[i];
        given = true;
      }
      for (const auto& [k, x] : kwargs) {
        if (k == m.params[i]) {
          v = x;
          given = true;
        }
      }
      if (!given && m.defaults[i]) {
        ASSIGN_OR_RETURN(v, Eval(*m.defaults[i]));
      }
      f.vars[m.params[i]] = std::move(v);
    }
    frames_.push_back(std::move(f));
    ++call_depth_;
    std::string saved = std::move(out_);
    out_.clear();
    const Status st = ExecBody(m.body);
    control_ = Control::kNone;
    std::string result = std::move(out_);
    out_ = std::move(saved);
    --call_depth_;
    frames_.pop_back();
    RETURN_IF_ERROR(st);
    return Value::String(std::move(result));
  }

  Result<Value> EvalCall(const Expr& e) {
    const Expr& callee = *e.children[0];
    ASSIGN_OR_RETURN(auto a, EvalArgs(e, 1));
    if (callee.kind == Expr::Kind::kGetAttr) {
      ASSIGN_OR_RETURN(Value obj, Eval(*callee.children[0]));
      const Value member = obj.Get(callee.name);
      if (member.kind() == Value::Kind::kMacro)
        return CallMacro(*member.macro(), a.first, a.second, e);
      auto r = CallMethod(obj, callee.name, a.first, a.second);
      if (!r.ok()) return r.status().WithPrefix("line " + std::to_string(e.line));
      return r;
    }
    if (callee.kind == Expr::Kind::kName) {
      const Value v = Lookup(callee.name);
      if (v.kind() == Value::Kind::kMacro) return CallMacro(*v.macro(), a.first, a.second, e);
      if (v.is_undefined()) {
        if (callee.name == "raise_exception") {
          return InvalidArgument(a.first.empty() ? std::string("raise_exception")
                                                 : a.first[0].ToString());
        }
        auto r = CallGlobal(callee.name, a.first, a.second);
        if (r.ok()) return r;
        if (r.status().code() != StatusCode::kNotFound) return r.status();
      }
      return LineError(e, "'" + callee.name + "' is not callable");
    }
    ASSIGN_OR_RETURN(Value v, Eval(callee));
    if (v.kind() == Value::Kind::kMacro) return CallMacro(*v.macro(), a.first, a.second, e);
    return LineError(e, "value is not callable");
  }

  Result<Value> EvalItem(const Value& obj, const Value& key) {
    if (obj.is_list() && key.is_int()) {
      int64_t i = key.as_int();
      const int64_t n = static_cast<int64_t>(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value();
      return obj.list()[static_cast<size_t>(i)];
    }
    if ((obj.is_dict() || obj.is_namespace()) && key.is_string()) return obj.Get(key.str());
    if (obj.is_string() && key.is_int()) {
      ASSIGN_OR_RETURN(Value chars, ApplyFilter("list", obj, {}, {}));
      return EvalItem(chars, key);
    }
    return Value();
  }

  Result<Value> EvalSlice(const Expr& e) {
    ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
    int64_t idx[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.children[k + 1]) continue;
      ASSIGN_OR_RETURN(Value v, Eval(*e.children[k + 1]));
      if (v.is_none()) continue;
      if (!v.is_int()) return LineError(e, "slice indices must be integers");
      idx[k] = v.as_int();
      given[k] = true;
    }
    const int64_t step = idx[2];
    if (step == 0) return LineError(e, "slice step cannot be zero");
    Value::List items;
    const bool is_str = obj.is_string();
    if (is_str) {
      ASSIGN_OR_RETURN(Value chars, ApplyFilter("list", obj, {}, {}));
      items = chars.list();
    } else if (obj.is_list()) {
      items = obj.list();
    } else {
      return LineError(e, "cannot slice " + std::string(obj.TypeName()));
    }
    const int64_t n = static_cast<int64_t>(items.size());
    auto norm = [&](int64_t v, bool g, int64_t def_pos, int64_t def_neg) {
      if (!g) return step > 0 ? def_pos : def_neg;
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = norm(idx[0], given[0], 0, n - 1);
    const int64_t stop = norm(idx[1], given[1], n, -1);
    Value::List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
      out.push_back(items[static_cast<size_t>(i)]);
    if (!is_str) return Value::MakeList(std::move(out));
    std::string s;
    for (const Value& c : out) s += c.str();
    return Value::String(std::move(s));
  }

  // Integer arithmetic as Python's: floor division and modulo, overflow an error.
  Result<Value> IntArith(const Expr& e, const std::string& op, int64_t x, int64_t y) {
    int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) return LineError(e, "integer overflow");
      return Value::Int(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) return LineError(e, "integer overflow");
      return Value::Int(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) return LineError(e, "integer overflow");
      return Value::Int(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) return LineError(e, "division by zero");
      if (x == INT64_MIN && y == -1) return LineError(e, "integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }  // Python floors
      return Value::Int(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      if (x == 0 || x == 1) return Value::Int(y == 0 ? 1 : x);
      if (x == -1) return Value::Int(y % 2 == 0 ? 1 : -1);
      int64_t acc = 1;  // |x| >= 2 overflows within 63 factors
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(acc, x, &acc)) return LineError(e, "integer overflow");
      }
      return Value::Int(acc);
    }
    return LineError(e, "unknown operator " + op);
  }

  Result<Value> Arith(const Expr& e, const std::string& op, const Value& a, const Value& b) {
    if (op == "~") return Value::String(a.ToString() + b.ToString());
    if (op == "+") {
      if (a.is_list() && b.is_list()) {
        Value::List l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        return Value::MakeList(std::move(l));
      }
      if (a.is_string() && b.is_string()) {
        if (a.str().size() + b.str().size() > kMaxBuiltinResult)
          return LineError(e, "string too large");
        return Value::String(a.str() + b.str());
      }
    }
    if (op == "*" && ((a.is_string() && b.is_int()) || (a.is_int() && b.is_string()))) {
      const std::string& s = a.is_string() ? a.str() : b.str();
      const int64_t n = a.is_int() ? a.as_int() : b.as_int();
      if (n > 0 && s.size() > kMaxBuiltinResult / static_cast<size_t>(n))
        return LineError(e, "string too large");
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += s;
      return Value::String(std::move(out));
    }
    if (!a.is_number() || !b.is_number()) {
      return LineError(e, "unsupported operand types for " + op + ": " + std::string(a.TypeName()) +
                              " and " + std::string(b.TypeName()));
    }
    if (a.is_int() && b.is_int() && op != "/") return IntArith(e, op, a.as_int(), b.as_int());
    const double x = a.as_float(), y = b.as_float();
    if (op == "+") return Value::Float(x + y);
    if (op == "-") return Value::Float(x - y);
    if (op == "*") return Value::Float(x * y);
    if (op == "/") {
      if (y == 0) return LineError(e, "division by zero");
      return Value::Float(x / y);
    }
    if (op == "//") {
      if (y == 0) return LineError(e, "division by zero");
      return Value::Float(std::floor(x / y));
    }
    if (op == "%") {
      if (y == 0) return LineError(e, "division by zero");
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Float(m);
    }
    if (op == "**") return Value::Float(std::pow(x, y));
    return LineError(e, "unknown operator " + op);
  }

  Result<Value> EvalBinary(const Expr& e) {
    const std::string& op = e.name;
    ASSIGN_OR_RETURN(Value a, Eval(*e.children[0]));
    if (op == "and") return a.Truthy() ? Eval(*e.children[1]) : Result<Value>(a);
    if (op == "or") return a.Truthy() ? Result<Value>(a) : Eval(*e.children[1]);
    ASSIGN_OR_RETURN(Value b, Eval(*e.children[1]));
    if (op == "==") return Value::Bool(a.Equals(b));
    if (op == "!=") return Value::Bool(!a.Equals(b));
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      auto c = Compare(a, b);
      if (!c.ok()) return LineError(e, c.status().message());
      if (op == "<") return Value::Bool(*c < 0);
      if (op == "<=") return Value::Bool(*c <= 0);
      if (op == ">") return Value::Bool(*c > 0);
      return Value::Bool(*c >= 0);
    }
    if (op == "in" || op == "notin") {
      if (!b.is_list() && !b.is_string() && !b.is_dict() && !b.is_namespace() &&
          !b.is_undefined()) {
        return LineError(e, "'in' needs a string, list or dict, got " + std::string(b.TypeName()));
      }
      ASSIGN_OR_RETURN(bool in, ApplyTest("in", a, {b}));
      return Value::Bool(op == "in" ? in : !in);
    }
    return Arith(e, op, a, b);
  }

  Result<Value> Eval(const Expr& e) {
    RETURN_IF_ERROR(Tick());
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kGetAttr: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
        return obj.Get(e.name);  // dicts and namespaces only: nothing else has attributes
      }
      case Expr::Kind::kGetItem: {
        ASSIGN_OR_RETURN(Value obj, Eval(*e.children[0]));
        ASSIGN_OR_RETURN(Value key, Eval(*e.children[1]));
        return EvalItem(obj, key);
      }
      case Expr::Kind::kSlice:
        return EvalSlice(e);
      case Expr::Kind::kCall:
        return EvalCall(e);
      case Expr::Kind::kFilter: {
        ASSIGN_OR_RETURN(Value subject, Eval(*e.children[0]));
        ASSIGN_OR_RETURN(auto a, EvalArgs(e, 1));
        auto r = ApplyFilter(e.name, subject, a.first, a.second);
        if (!r.ok()) return LineError(e, r.status().message());
        return r;
      }
      case Expr::Kind::kTest: {
        ASSIGN_OR_RETURN(Value subject, Eval(*e.children[0]));
        ASSIGN_OR_RETURN(auto a, EvalArgs(e, 1));
        auto r = ApplyTest(e.name, subject, a.first);
        if (!r.ok()) return LineError(e, r.status().message());
        return Value::Bool(*r != e.negated);
      }
      case Expr::Kind::kUnary: {
        ASSIGN_OR_RETURN(Value v, Eval(*e.children[0]));
        if (e.name == "not") return Value::Bool(!v.Truthy());
        if (!v.is_number())
          return LineError(e, "unary " + e.name + " on " + std::string(v.TypeName()));
        if (e.name == "+") return v;
        if (v.is_int()) {
          if (v.as_int() == INT64_MIN) return LineError(e, "integer overflow");
          return Value::Int(-v.as_int());
        }
        return Value::Float(-v.as_float());
      }
      case Expr::Kind::kBinary:
        return EvalBinary(e);
      case Expr::Kind::kTernary: {
        ASSIGN_OR_RETURN(Value c, Eval(*e.children[1]));
        if (c.Truthy()) return Eval(*e.children[0]);
        if (e.children[2]) return Eval(*e.children[2]);
        return Value();
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        Value::List l;
        for (const ExprPtr& c : e.children) {
          ASSIGN_OR_RETURN(Value v, Eval(*c));
          l.push_back(std::move(v));
        }
        return Value::MakeList(std::move(l));
      }
      case Expr::Kind::kDict: {
        Value::Dict d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          ASSIGN_OR_RETURN(Value k, Eval(*e.children[i]));
          ASSIGN_OR_RETURN(Value v, Eval(*e.children[i + 1]));
          if (!k.is_string()) return LineError(e, "dict keys must be strings");
          d.emplace_back(k.str(), std::move(v));
        }
        return Value::MakeDict(std::move(d));
      }
    }
    return Value();
  }

  const RenderLimits limits_;
  std::vector<Frame> frames_;
  std::string out_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  Control control_ = Control::kNone;
};

}  // namespace

Result<std::string> Render(const Body& body, const Value::Dict& vars, const RenderLimits& limits) {
  return Renderer(vars, limits).Run(body);
}

}  // namespace sluice::llm::jinja
