#pragma once
// The expression half of the Jinja parser (jinja_parser.h), over the token cursor that the
// statement parser shares: Jinja's precedence from the ternary down to literals, postfix
// (attributes, subscripts, slices, calls), filters and tests. Nesting depth, of blocks and
// expressions together, is capped at kMaxDepth.

#include <algorithm>
#include <string>
#include <vector>

#include "backends/llm/chat_template/jinja_ast.h"
#include "backends/llm/chat_template/jinja_lexer.h"
#include "common/status.h"

namespace sluice::llm::jinja {

inline constexpr int kMaxDepth = 100;  // expression and block nesting

// Parses expressions from a token list, advancing a cursor the derived statement parser shares.
class ExprParser {
 public:
  explicit ExprParser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  // A full expression, ternary included.
  Result<ExprPtr> ParseExpr();
  // `a, b, ...` as a tuple, or one expression.
  Result<ExprPtr> ParseTupleOrExpr();
  // Without the ternary (a for loop's iterable and filter, whose "if" is the loop's).
  Result<ExprPtr> ParseOr();

 protected:
  using K = Token::Kind;

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

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;

 private:
  // A node of kind `k` on the current token's line.
  ExprPtr Make(Expr::Kind k);
  ExprPtr Binary(const std::string& op, ExprPtr a, ExprPtr b);
  // One method a precedence level, after ParseOr: and, not, comparisons (== != < <= > >= in,
  // not in), + -, ~, * / // %, **, unary + -; then a primary with its postfix, filters, tests.
  Result<ExprPtr> ParseAnd();
  Result<ExprPtr> ParseNot();
  Result<ExprPtr> ParseCompare();
  Result<ExprPtr> ParseMath1();
  Result<ExprPtr> ParseConcat();
  Result<ExprPtr> ParseMath2();
  Result<ExprPtr> ParsePow();
  Result<ExprPtr> ParseUnary();
  Status ParseArgs(Expr* call);  // after '('
  Result<ExprPtr> ParsePostfix(ExprPtr e);
  Result<ExprPtr> ParseFilterTest(ExprPtr e);
  Result<ExprPtr> ParsePrimary();
  // true/false/none (either case) as literals, any other name as a variable.
  ExprPtr ParseNameOrConstant();
  // `( )`, `(x)`, `(x,)`, `(x, y)`: a tuple, or the grouped expression itself.
  Result<ExprPtr> ParseParenthesized();
  // `[a, b, ...]`.
  Result<ExprPtr> ParseListDisplay();
  // `{k: v, ...}`: children alternate key, value.
  Result<ExprPtr> ParseDictDisplay();
};

}  // namespace sluice::llm::jinja
