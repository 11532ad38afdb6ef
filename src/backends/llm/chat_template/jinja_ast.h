#pragma once
// Jinja syntax tree: expressions and statements produced by the parser and walked by the
// interpreter. Nodes are plain structs owned through unique_ptr by their parent.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/llm/chat_template/jinja_value.h"

namespace sluice::llm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kGetAttr,  // a.name
    kGetItem,  // a[b]
    kSlice,    // a[b:c:d] (children: a, start|null, stop|null, step|null)
    kCall,     // a(args, kwargs)
    kFilter,   // a | name(args, kwargs)
    kTest,     // a is [not] name(args)
    kUnary,    // op a   (op: "not", "-", "+")
    kBinary,   // a op b (op: or and == != < <= > >= in notin + - * / // % ** ~)
    kTernary,  // a if b else c (children: a, b, c|null)
    kList,     // [a, b]
    kTuple,    // (a, b)
    kDict,     // {k: v} (children alternate key, value)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;  // name / attribute / filter / test / operator
  bool negated = false;
  std::vector<ExprPtr> children;  // operands; for calls/filters/tests: [callee/subject, args...]
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // same length as params; null = required
  Body body;
};

struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Kind kind;
  int line = 0;
  std::string text;                                // kText
  ExprPtr expr;                                    // kOutput, kSet value, kFor iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition, body)...
  Body body;                                       // kFor body, kSetBlock body
  Body else_body;                                  // kIf else, kFor else
  std::vector<std::string> targets;                // kFor loop variables, kSet/kSetBlock names
  std::string target_attr;          // kSet: "ns.attr" form -> targets[0] = "ns", this = "attr"
  ExprPtr filter;                   // kFor: "if" condition
  std::unique_ptr<MacroDef> macro;  // kMacro
};

}  // namespace sluice::llm::jinja
