#include "backends/llm/chat_template/jinja_parser.h"

#include <set>

#include "backends/llm/chat_template/jinja_expr_parser.h"
#include "backends/llm/chat_template/jinja_lexer.h"

namespace sluice::llm::jinja {
namespace {

// The statement half: text, {{ expression }}, and the block tags jinja_parser.h lists.
class Parser : public ExprParser {
 public:
  explicit Parser(std::vector<Token> tokens) : ExprParser(std::move(tokens)) {}

  Result<Body> ParseTemplate() {
    Body body;
    std::string end;
    RETURN_IF_ERROR(ParseBody({}, &body, &end));
    if (!end.empty()) return Error("unexpected '{% " + end + " %}'");
    return body;
  }

 private:
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
};

}  // namespace

Result<Body> Parse(std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  return Parser(std::move(tokens)).ParseTemplate();
}

}  // namespace sluice::llm::jinja
