// ExprParser (jinja_expr_parser.h): Jinja expressions, one precedence level a method.

#include "backends/llm/chat_template/jinja_expr_parser.h"

namespace sluice::llm::jinja {

ExprPtr ExprParser::Make(Expr::Kind k) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->line = Peek().line;
  return e;
}

Result<ExprPtr> ExprParser::ParseTupleOrExpr() {
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

Result<ExprPtr> ExprParser::ParseExpr() {
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

ExprPtr ExprParser::Binary(const std::string& op, ExprPtr a, ExprPtr b) {
  auto e = Make(Expr::Kind::kBinary);
  e->name = op;
  e->children.push_back(std::move(a));
  e->children.push_back(std::move(b));
  return e;
}

Result<ExprPtr> ExprParser::ParseOr() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseAnd());
  while (IsName("or")) {
    Next();
    ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
    e = Binary("or", std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParseAnd() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseNot());
  while (IsName("and")) {
    Next();
    ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
    e = Binary("and", std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParseNot() {
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

Result<ExprPtr> ExprParser::ParseCompare() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseMath1());
  while (true) {
    std::string op;
    if (Peek().kind == K::kOp &&
        (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" || Peek().text == "<=" ||
         Peek().text == ">" || Peek().text == ">=")) {
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

Result<ExprPtr> ExprParser::ParseMath1() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseConcat());
  while (IsOp("+") || IsOp("-")) {
    const std::string op = Next().text;
    ASSIGN_OR_RETURN(ExprPtr r, ParseConcat());
    e = Binary(op, std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParseConcat() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseMath2());
  while (IsOp("~")) {
    Next();
    ASSIGN_OR_RETURN(ExprPtr r, ParseMath2());
    e = Binary("~", std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParseMath2() {
  ASSIGN_OR_RETURN(ExprPtr e, ParsePow());
  while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
    const std::string op = Next().text;
    ASSIGN_OR_RETURN(ExprPtr r, ParsePow());
    e = Binary(op, std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParsePow() {
  ASSIGN_OR_RETURN(ExprPtr e, ParseUnary());
  while (IsOp("**")) {
    Next();
    ASSIGN_OR_RETURN(ExprPtr r, ParseUnary());
    e = Binary("**", std::move(e), std::move(r));
  }
  return e;
}

Result<ExprPtr> ExprParser::ParseUnary() {
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

Status ExprParser::ParseArgs(Expr* call) {  // after '('
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

Result<ExprPtr> ExprParser::ParsePostfix(ExprPtr e) {
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

Result<ExprPtr> ExprParser::ParseFilterTest(ExprPtr e) {
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
      } else if (Peek().kind == K::kString || Peek().kind == K::kInt || Peek().kind == K::kFloat ||
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

Result<ExprPtr> ExprParser::ParsePrimary() {
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
ExprPtr ExprParser::ParseNameOrConstant() {
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
Result<ExprPtr> ExprParser::ParseParenthesized() {
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
Result<ExprPtr> ExprParser::ParseListDisplay() {
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
Result<ExprPtr> ExprParser::ParseDictDisplay() {
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

}  // namespace sluice::llm::jinja
