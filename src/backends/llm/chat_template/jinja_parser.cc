#include "backends/llm/chat_template/jinja_parser.h"

#include <set>

#include "backends/llm/chat_template/jinja_lexer.h"

namespace sluice::llm::jinja {
namespace {

constexpr int kMaxDepth = 100;  // expression and block nesting

using K = Token::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<Body> ParseTemplate() {
    Body body;
    std::string end;
    RETURN_IF_ERROR(ParseBody({}, &body, &end));
    if (!end.empty()) return Error("unexpected '{% " + end + " %}'");
    return body;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    const size_t i = std::min(i_ + ahead, t_.size() - 1);
    return t_[i];
  }
  const Token& Next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool IsOp(const char* op, size_t ahead = 0) const {
    return Peek(ahead).kind == K::kOp && Peek(ahead).text == op;
  }
  bool IsName(const char* n, size_t ahead = 0) const {
    return Peek(ahead).kind == K::kName && Peek(ahead).text == n;
  }
  Status Error(const std::string& what) const {
    return InvalidArgument("chat template line " + std::to_string(Peek().line) + ": " + what);
  }
  Status ExpectOp(const char* op) {
    if (!IsOp(op)) return Error(std::string("expected '") + op + "'");
    Next();
    return Status::Ok();
  }
  Status ExpectBlockEnd() {
    if (Peek().kind != K::kBlockEnd) return Error("expected '%}'");
    Next();
    return Status::Ok();
  }
  Result<std::string> ExpectName() {
    if (Peek().kind != K::kName) return Error("expected a name");
    return Next().text;
  }

  // Parses statements until a block tag whose keyword is in `ends` (returned in *end,
  // its tag still open) or the end of input (*end empty).
  Status ParseBody(const std::set<std::string>& ends, Body* body, std::string* end) {
    if (++depth_ > kMaxDepth) return Error("blocks nest too deeply");
    while (true) {
      const Token& tok = Peek();
      if (tok.kind == K::kEof) {
        end->clear();
        break;
      }
      if (tok.kind == K::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->text = Next().text;
        body->push_back(std::move(s));
        continue;
      }
      if (tok.kind == K::kVarBegin) {
        Next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = tok.line;
        ASSIGN_OR_RETURN(s->expr, ParseExpr());
        if (Peek().kind != K::kVarEnd) return Error("expected '}}'");
        Next();
        body->push_back(std::move(s));
        continue;
      }
      if (tok.kind != K::kBlockBegin) return Error("unexpected token");
      if (Peek(1).kind != K::kName) return Error("expected a statement keyword");
      const std::string kw = Peek(1).text;
      if (ends.count(kw)) {
        Next();  // {%
        Next();  // keyword
        *end = kw;
        break;
      }
      Next();
      Next();
      StmtPtr s;
      if (kw == "if") {
        ASSIGN_OR_RETURN(s, ParseIf());
      } else if (kw == "for") {
        ASSIGN_OR_RETURN(s, ParseFor());
      } else if (kw == "set") {
        ASSIGN_OR_RETURN(s, ParseSet());
      } else if (kw == "macro") {
        ASSIGN_OR_RETURN(s, ParseMacro());
      } else if (kw == "break" || kw == "continue") {
        s = std::make_unique<Stmt>();
        s->kind = kw == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
        RETURN_IF_ERROR(ExpectBlockEnd());
      } else if (kw == "generation") {
        RETURN_IF_ERROR(ExpectBlockEnd());
        std::string e;
        RETURN_IF_ERROR(ParseBody({"endgeneration"}, body, &e));
        if (e.empty()) return Error("missing endgeneration");
        RETURN_IF_ERROR(ExpectBlockEnd());
        continue;
      } else if (kw == "include" || kw == "extends" || kw == "import" || kw == "from") {
        return Unsupported("chat template line " + std::to_string(tok.line) + ": '" + kw +
                           "' is not allowed in a chat template");
      } else {
        return Error("unknown statement '" + kw + "'");
      }
      s->line = tok.line;
      body->push_back(std::move(s));
    }
    --depth_;
    return Status::Ok();
  }

  Result<StmtPtr> ParseIf() {
    auto s = std::make_unique<Stmt>();
    s->kind = Stmt::Kind::kIf;
    while (true) {
      ASSIGN_OR_RETURN(ExprPtr cond, ParseExpr());
      RETURN_IF_ERROR(ExpectBlockEnd());
      Body body;
      std::string end;
      RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &body, &end));
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        RETURN_IF_ERROR(ExpectBlockEnd());
        RETURN_IF_ERROR(ParseBody({"endif"}, &s->else_body, &end));
      }
      if (end != "endif") return Error("missing endif");
      RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
  }

  Result<StmtPtr> ParseFor() {
    auto s = std::make_unique<Stmt>();
    s->kind = Stmt::Kind::kFor;
    const bool paren = IsOp("(");
    if (paren) Next();
    while (true) {
      ASSIGN_OR_RETURN(std::string n, ExpectName());
      s->targets.push_back(std::move(n));
      if (!IsOp(",")) break;
      Next();
    }
    if (paren) RETURN_IF_ERROR(ExpectOp(")"));
    if (!IsName("in")) return Error("expected 'in'");
    Next();
    ASSIGN_OR_RETURN(s->expr, ParseOr());  // no ternary: "if" filters the loop
    if (IsName("if")) {
      Next();
      ASSIGN_OR_RETURN(s->filter, ParseOr());
    }
    if (IsName("recursive")) return Error("recursive loops are not supported");
    RETURN_IF_ERROR(ExpectBlockEnd());
    std::string end;
    RETURN_IF_ERROR(ParseBody({"else", "endfor"}, &s->body, &end));
    if (end == "else") {
      RETURN_IF_ERROR(ExpectBlockEnd());
      RETURN_IF_ERROR(ParseBody({"endfor"}, &s->else_body, &end));
    }
    if (end != "endfor") return Error("missing endfor");
    RETURN_IF_ERROR(ExpectBlockEnd());
    return s;
  }

  Result<StmtPtr> ParseSet() {
    auto s = std::make_unique<Stmt>();
    ASSIGN_OR_RETURN(std::string first, ExpectName());
    s->targets.push_back(first);
    if (IsOp(".")) {
      Next();
      ASSIGN_OR_RETURN(s->target_attr, ExpectName());
    } else {
      while (IsOp(",")) {
        Next();
        ASSIGN_OR_RETURN(std::string n, ExpectName());
        s->targets.push_back(std::move(n));
      }
    }
    if (Peek().kind == K::kBlockEnd && s->targets.size() == 1 && s->target_attr.empty()) {
      Next();
      s->kind = Stmt::Kind::kSetBlock;
      std::string end;
      RETURN_IF_ERROR(ParseBody({"endset"}, &s->body, &end));
      if (end != "endset") return Error("missing endset");
      RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    s->kind = Stmt::Kind::kSet;
    RETURN_IF_ERROR(ExpectOp("="));
    ASSIGN_OR_RETURN(s->expr, ParseTupleOrExpr());
    RETURN_IF_ERROR(ExpectBlockEnd());
    return s;
  }

  Result<StmtPtr> ParseMacro() {
    auto s = std::make_unique<Stmt>();
    s->kind = Stmt::Kind::kMacro;
    s->macro = std::make_unique<MacroDef>();
    ASSIGN_OR_RETURN(s->macro->name, ExpectName());
    RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      ASSIGN_OR_RETURN(std::string p, ExpectName());
      s->macro->params.push_back(std::move(p));
      ExprPtr def;
      if (IsOp("=")) {
        Next();
        ASSIGN_OR_RETURN(def, ParseExpr());
      }
      s->macro->defaults.push_back(std::move(def));
      if (!IsOp(",")) break;
      Next();
    }
    RETURN_IF_ERROR(ExpectOp(")"));
    RETURN_IF_ERROR(ExpectBlockEnd());
    std::string end;
    RETURN_IF_ERROR(ParseBody({"endmacro"}, &s->macro->body, &end));
    if (end != "endmacro") return Error("missing endmacro");
    RETURN_IF_ERROR(ExpectBlockEnd());
    return s;
  }

  // ---- expressions ----

  ExprPtr Make(Expr::Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = Peek().line;
    return e;
  }

  Result<ExprPtr> ParseTupleOrExpr() {
    ASSIGN_OR_RETURN(ExprPtr first, ParseExpr());
    if (!IsOp(",")) return first;
    auto t = Make(Expr::Kind::kTuple);
    t->children.push_back(std::move(first));
    while (IsOp(",")) {
      Next();
      ASSIGN_OR_RETURN(ExprPtr e, ParseExpr());
      t->children.push_back(std::move(e));
    }
    return t;
  }

  Result<ExprPtr> ParseExpr() {
    if (++depth_ > kMaxDepth) return Error("expression nests too deeply");
    ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    if (IsName("if")) {
      Next();
      auto t = Make(Expr::Kind::kTernary);
      ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr other;
      if (IsName("else")) {
        Next();
        ASSIGN_OR_RETURN(other, ParseExpr());
      }
      t->children.push_back(std::move(e));
      t->children.push_back(std::move(cond));
      t->children.push_back(std::move(other));
      e = std::move(t);
    }
    --depth_;
    return e;
  }

  ExprPtr Binary(const std::string& op, ExprPtr a, ExprPtr b) {
    auto e = Make(Expr::Kind::kBinary);
    e->name = op;
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  Result<ExprPtr> ParseOr() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseAnd());
    while (IsName("or")) {
      Next();
      ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
      e = Binary("or", std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseAnd() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseNot());
    while (IsName("and")) {
      Next();
      ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
      e = Binary("and", std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseNot() {
    if (IsName("not")) {
      if (++depth_ > kMaxDepth) return Error("expression nests too deeply");
      Next();
      auto e = Make(Expr::Kind::kUnary);
      e->name = "not";
      ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      e->children.push_back(std::move(operand));
      --depth_;
      return e;
    }
    return ParseCompare();
  }
  Result<ExprPtr> ParseCompare() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseMath1());
    while (true) {
      std::string op;
      if (Peek().kind == K::kOp &&
          (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" ||
           Peek().text == "<=" || Peek().text == ">" || Peek().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        Next();
        Next();
        op = "notin";
      } else {
        break;
      }
      ASSIGN_OR_RETURN(ExprPtr r, ParseMath1());
      e = Binary(op, std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseMath1() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      const std::string op = Next().text;
      ASSIGN_OR_RETURN(ExprPtr r, ParseConcat());
      e = Binary(op, std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseConcat() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseMath2());
    while (IsOp("~")) {
      Next();
      ASSIGN_OR_RETURN(ExprPtr r, ParseMath2());
      e = Binary("~", std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseMath2() {
    ASSIGN_OR_RETURN(ExprPtr e, ParsePow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = Next().text;
      ASSIGN_OR_RETURN(ExprPtr r, ParsePow());
      e = Binary(op, std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParsePow() {
    ASSIGN_OR_RETURN(ExprPtr e, ParseUnary());
    while (IsOp("**")) {
      Next();
      ASSIGN_OR_RETURN(ExprPtr r, ParseUnary());
      e = Binary("**", std::move(e), std::move(r));
    }
    return e;
  }
  Result<ExprPtr> ParseUnary() {
    if (IsOp("-") || IsOp("+")) {
      if (++depth_ > kMaxDepth) return Error("expression nests too deeply");
      auto e = Make(Expr::Kind::kUnary);
      e->name = Next().text;
      ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary());
      e->children.push_back(std::move(operand));
      --depth_;
      return e;
    }
    ASSIGN_OR_RETURN(ExprPtr e, ParsePrimary());
    ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    return ParseFilterTest(std::move(e));
  }

  Status ParseArgs(Expr* call) {  // after '('
    while (!IsOp(")")) {
      if (Peek().kind == K::kName && IsOp("=", 1)) {
        std::string key = Next().text;
        Next();
        ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->children.push_back(std::move(v));
      }
      if (!IsOp(",")) break;
      Next();
    }
    return ExpectOp(")");
  }

  Result<ExprPtr> ParsePostfix(ExprPtr e) {
    while (true) {
      if (IsOp(".")) {
        Next();
        auto g = Make(Expr::Kind::kGetAttr);
        if (Peek().kind == K::kInt) {  // a.0 is a[0]
          g->kind = Expr::Kind::kGetItem;
          auto idx = Make(Expr::Kind::kLiteral);
          idx->value = Value::Int(Next().int_value);
          g->children.push_back(std::move(e));
          g->children.push_back(std::move(idx));
        } else {
          ASSIGN_OR_RETURN(g->name, ExpectName());
          g->children.push_back(std::move(e));
        }
        e = std::move(g);
      } else if (IsOp("[")) {
        Next();
        ExprPtr parts[3];
        int colons = 0;
        while (true) {
          if (IsOp(":")) {
            if (++colons > 2) return Error("bad slice");
            Next();
            continue;
          }
          if (IsOp("]")) break;
          ASSIGN_OR_RETURN(parts[colons], ParseExpr());
        }
        Next();
        if (colons == 0) {
          if (!parts[0]) return Error("empty subscript");
          auto g = Make(Expr::Kind::kGetItem);
          g->children.push_back(std::move(e));
          g->children.push_back(std::move(parts[0]));
          e = std::move(g);
        } else {
          auto g = Make(Expr::Kind::kSlice);
          g->children.push_back(std::move(e));
          for (auto& p : parts) g->children.push_back(std::move(p));
          e = std::move(g);
        }
      } else if (IsOp("(")) {
        Next();
        auto c = Make(Expr::Kind::kCall);
        c->children.push_back(std::move(e));
        RETURN_IF_ERROR(ParseArgs(c.get()));
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  Result<ExprPtr> ParseFilterTest(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        Next();
        auto f = Make(Expr::Kind::kFilter);
        ASSIGN_OR_RETURN(f->name, ExpectName());
        f->children.push_back(std::move(e));
        if (IsOp("(")) {
          Next();
          RETURN_IF_ERROR(ParseArgs(f.get()));
        }
        e = std::move(f);
      } else if (IsName("is")) {
        Next();
        auto t = Make(Expr::Kind::kTest);
        if (IsName("not")) {
          Next();
          t->negated = true;
        }
        // "none", "true", "false" are names here.
        ASSIGN_OR_RETURN(t->name, ExpectName());
        t->children.push_back(std::move(e));
        if (IsOp("(")) {
          Next();
          RETURN_IF_ERROR(ParseArgs(t.get()));
        } else if (Peek().kind == K::kString || Peek().kind == K::kInt ||
                   Peek().kind == K::kFloat ||
                   (Peek().kind == K::kName && !IsName("and") && !IsName("or") && !IsName("else") &&
                    !IsName("if") && !IsName("in") && !IsName("not") && !IsName("is"))) {
          ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          t->children.push_back(std::move(arg));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  Result<ExprPtr> ParsePrimary() {
    if (++depth_ > kMaxDepth) return Error("expression nests too deeply");
    const Token& tok = Peek();
    ExprPtr e;
    switch (tok.kind) {
      case K::kString: {
        e = Make(Expr::Kind::kLiteral);
        std::string s = Next().text;
        while (Peek().kind == K::kString) s += Next().text;  // adjacent literals concatenate
        e->value = Value::String(std::move(s));
        break;
      }
      case K::kInt:
        e = Make(Expr::Kind::kLiteral);
        e->value = Value::Int(Next().int_value);
        break;
      case K::kFloat:
        e = Make(Expr::Kind::kLiteral);
        e->value = Value::Float(Next().float_value);
        break;
      case K::kName:
        e = ParseNameOrConstant();
        break;
      case K::kOp:
        if (tok.text == "(") {
          ASSIGN_OR_RETURN(e, ParseParenthesized());
        } else if (tok.text == "[") {
          ASSIGN_OR_RETURN(e, ParseListDisplay());
        } else if (tok.text == "{") {
          ASSIGN_OR_RETURN(e, ParseDictDisplay());
        } else {
          return Error("unexpected '" + tok.text + "'");
        }
        break;
      case K::kText:
      case K::kVarBegin:
      case K::kVarEnd:
      case K::kBlockBegin:
      case K::kBlockEnd:
      case K::kEof:
        return Error("expected an expression");
    }
    --depth_;
    return e;
  }

  // true/false/none (either case) as literals, any other name as a variable.
  ExprPtr ParseNameOrConstant() {
    const std::string n = Peek().text;
    auto e = Make(Expr::Kind::kLiteral);
    if (n == "true" || n == "True")
      e->value = Value::Bool(true);
    else if (n == "false" || n == "False")
      e->value = Value::Bool(false);
    else if (n == "none" || n == "None")
      e->value = Value::None();
    else {
      e->kind = Expr::Kind::kName;
      e->name = n;
    }
    Next();
    return e;
  }

  // `( )`, `(x)`, `(x,)`, `(x, y)`: a tuple, or the grouped expression itself.
  Result<ExprPtr> ParseParenthesized() {
    Next();  // (
    if (IsOp(")")) {
      Next();
      return Make(Expr::Kind::kTuple);
    }
    ExprPtr e;
    ASSIGN_OR_RETURN(ExprPtr first, ParseExpr());
    if (IsOp(",")) {
      e = Make(Expr::Kind::kTuple);
      e->children.push_back(std::move(first));
      while (IsOp(",")) {
        Next();
        if (IsOp(")")) break;
        ASSIGN_OR_RETURN(ExprPtr x, ParseExpr());
        e->children.push_back(std::move(x));
      }
    } else {
      e = std::move(first);
    }
    RETURN_IF_ERROR(ExpectOp(")"));
    return e;
  }

  // `[a, b, ...]`.
  Result<ExprPtr> ParseListDisplay() {
    Next();  // [
    auto e = Make(Expr::Kind::kList);
    while (!IsOp("]")) {
      ASSIGN_OR_RETURN(ExprPtr x, ParseExpr());
      e->children.push_back(std::move(x));
      if (!IsOp(",")) break;
      Next();
    }
    RETURN_IF_ERROR(ExpectOp("]"));
    return e;
  }

  // `{k: v, ...}`: children alternate key, value.
  Result<ExprPtr> ParseDictDisplay() {
    Next();  // {
    auto e = Make(Expr::Kind::kDict);
    while (!IsOp("}")) {
      ASSIGN_OR_RETURN(ExprPtr k, ParseExpr());
      RETURN_IF_ERROR(ExpectOp(":"));
      ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
      e->children.push_back(std::move(k));
      e->children.push_back(std::move(v));
      if (!IsOp(",")) break;
      Next();
    }
    RETURN_IF_ERROR(ExpectOp("}"));
    return e;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<Body> Parse(std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  return Parser(std::move(tokens)).ParseTemplate();
}

}  // namespace sluice::llm::jinja
