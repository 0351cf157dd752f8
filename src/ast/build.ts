/**
 * CST → AST. The CST mirrors the grammar's rules (one node per precedence level, tokens
 * grouped by label); the AST mirrors meaning (a binary node per operator, a template per
 * interpolated string, spans on everything). The visitor is validated when constructed, so
 * a grammar rule without a visit method fails at start, not on some user's file.
 *
 * After error recovery a CST node can lack children the grammar requires. Such a
 * declaration is skipped (the parser has already reported why) instead of producing a
 * half-built node that later stages would have to distrust.
 */
import { tokenMatcher, type CstNode, type IToken } from "../syntax/chevrotain.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { closestMatch } from "../diagnostics/suggest.js";
import type * as cst from "../syntax/cst.generated.js";
import { declarationChunk, parseText, reportTooDeep, tokenSpan } from "../syntax/parse.js";
import { Identifier, StringLiteral, Word } from "../syntax/tokens.js";
import { sharedParser } from "../syntax/parser.js";
import { scanString, type StringProblem } from "../syntax/strings.js";
import type * as ast from "./nodes.js";

/** Thrown where recovery left a required child out; caught per declaration. */
class Incomplete extends Error {}

function need<T>(items: readonly T[] | undefined): T {
  const item = items?.[0];
  if (item === undefined) throw new Incomplete();
  return item;
}

function span(start: number, end: number): ast.Span {
  return { start, end };
}

function join(a: ast.Span, b: ast.Span): ast.Span {
  return span(Math.min(a.start, b.start), Math.max(a.end, b.end));
}

function name(token: IToken): ast.Name {
  return { text: token.image, span: tokenSpan(token) };
}

/**
 * A declaration left out of the AST because it holds a syntax error (already reported).
 * The checker still learns what it declared and the names it mentions, so that the one
 * mistake is not reported again as "unknown source shop" or "sink out is never used".
 */
export interface IncompleteDeclaration {
  /** The declaration keyword it starts with, or the one its first word misspells (`sorce`). */
  readonly kind: "pipeline" | "source" | "sink" | "let" | "flow" | undefined;
  /** The name it declares (for a flow, its source), when one could be read. */
  readonly name: ast.Name | undefined;
  /** Every name written in it. */
  readonly mentions: readonly string[];
  /** From its first token to its last. */
  readonly span: ast.Span;
}

const incomplete = new WeakMap<ast.PipelineFile, readonly IncompleteDeclaration[]>();

/** The declarations of `file` that did not parse; empty for a file not built here. */
export function incompleteDeclarations(file: ast.PipelineFile): readonly IncompleteDeclaration[] {
  return incomplete.get(file) ?? [];
}

const declarationKinds = ["pipeline", "source", "sink", "let", "flow"] as const;

function describeIncomplete(tokens: readonly IToken[]): IncompleteDeclaration {
  const [first, second] = tokens;
  const word = first?.image ?? "";
  const kind = declarationKinds.find((k) => k === word) ?? (first?.tokenType === Identifier ? closestDeclarationKind(word) : undefined);
  return {
    kind,
    name: second !== undefined && tokenMatcher(second, Word) ? name(second) : undefined,
    mentions: tokens.filter((token) => token.tokenType === Identifier).map((token) => token.image),
    span: first === undefined ? span(0, 0) : join(tokenSpan(first), tokenSpan(tokens[tokens.length - 1]!)),
  };
}

function closestDeclarationKind(word: string): IncompleteDeclaration["kind"] {
  const guess = closestMatch(word, declarationKinds);
  return declarationKinds.find((k) => k === guess);
}

/**
 * How deep a node's objects nest, measured without recursion. Later stages recurse over the
 * tree; a declaration deeper than this (a sum of thousands of terms is a left-deep tree) is
 * reported instead of overflowing their stack.
 */
const MAX_AST_DEPTH = 1200;

function nestingDepth(root: object): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_AST_DEPTH) return deepest;
    for (const child of Object.values(value as object)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

function tokensOf(node: CstNode): IToken[] {
  const tokens: IToken[] = [];
  for (const children of Object.values(node.children)) {
    for (const child of children) {
      if ("image" in child) tokens.push(child);
      else tokens.push(...tokensOf(child));
    }
  }
  return tokens.sort((a, b) => a.startOffset - b.startOffset);
}

const BaseVisitor = sharedParser().getBaseCstVisitorConstructor();

export class AstBuilder extends BaseVisitor implements cst.ICstNodeVisitor<void, unknown> {
  constructor(
    private readonly text: string,
    private readonly diagnostics: DiagnosticBag,
  ) {
    super();
    this.validateVisitor();
  }

  private expr(node: CstNode | undefined): ast.Expr {
    if (node === undefined) throw new Incomplete();
    return this.visit(node) as ast.Expr;
  }

  // ------------------------------------------------------------ declarations

  file(children: cst.FileCstChildren): ast.PipelineFile {
    const declarations: ast.Declaration[] = [];
    const skipped: IncompleteDeclaration[] = [];
    for (const node of children.declaration ?? []) {
      const chunk = declarationChunk(node);
      if (chunk?.broken) {
        // Its strings are not visited, but their own mistakes are still the user's to fix.
        for (const token of chunk.tokens) {
          if (token.tokenType === StringLiteral) for (const problem of scanString(this.text, token.startOffset).problems) this.reportStringProblem(problem);
        }
        skipped.push(describeIncomplete(chunk.tokens));
        continue;
      }
      try {
        const declaration = this.visit(node) as ast.Declaration;
        if (nestingDepth(declaration) > MAX_AST_DEPTH) {
          reportTooDeep(declaration.span, this.diagnostics);
          skipped.push(describeIncomplete(chunk?.tokens ?? tokensOf(node)));
          continue;
        }
        declarations.push(declaration);
      } catch (error) {
        if (error instanceof RangeError) reportTooDeep(tokenSpan(chunk?.tokens[0] ?? tokensOf(node)[0]!), this.diagnostics);
        else if (!(error instanceof Incomplete)) throw error;
        skipped.push(describeIncomplete(chunk?.tokens ?? tokensOf(node)));
      }
    }
    const file: ast.PipelineFile = { kind: "file", declarations, span: span(0, this.text.length) };
    incomplete.set(file, skipped);
    return file;
  }

  declaration(children: cst.DeclarationCstChildren): ast.Declaration {
    const node =
      children.pipelineDecl?.[0] ?? children.sourceDecl?.[0] ?? children.sinkDecl?.[0] ?? children.letDecl?.[0] ?? children.flowDecl?.[0];
    if (node === undefined) throw new Incomplete();
    return this.visit(node) as ast.Declaration;
  }

  pipelineDecl(children: cst.PipelineDeclCstChildren): ast.PipelineDecl {
    const keyword = need(children.Pipeline);
    const nameToken = need(children.name);
    const settings = children.settings?.[0] ? (this.visit(children.settings[0]) as ast.RecordExpr) : null;
    return { kind: "pipeline", name: name(nameToken), settings, span: join(tokenSpan(keyword), settings?.span ?? tokenSpan(nameToken)) };
  }

  sourceDecl(children: cst.SourceDeclCstChildren): ast.SourceDecl {
    return { kind: "source", ...this.connectorDecl(need(children.Source), children) };
  }

  sinkDecl(children: cst.SinkDeclCstChildren): ast.SinkDecl {
    return { kind: "sink", ...this.connectorDecl(need(children.Sink), children) };
  }

  private connectorDecl(keyword: IToken, children: cst.SourceDeclCstChildren | cst.SinkDeclCstChildren) {
    const options = this.visit(need(children.options)) as ast.RecordExpr;
    return {
      name: name(need(children.name)),
      connector: name(need(children.connector)),
      options,
      span: join(tokenSpan(keyword), options.span),
    };
  }

  letDecl(children: cst.LetDeclCstChildren): ast.LetDecl {
    const value = this.expr(children.value?.[0]);
    return { kind: "let", name: name(need(children.name)), value, span: join(tokenSpan(need(children.Let)), value.span) };
  }

  flowDecl(children: cst.FlowDeclCstChildren): ast.FlowDecl {
    const steps = (children.step ?? []).map((node) => this.visit(node) as ast.Step);
    const sinks = (children.sinks ?? []).filter((token) => !token.isInsertedInRecovery).map(name);
    if (sinks.length === 0) throw new Incomplete();
    return {
      kind: "flow",
      source: name(need(children.source)),
      steps,
      sinks,
      span: join(tokenSpan(need(children.Flow)), sinks[sinks.length - 1]!.span),
    };
  }

  step(children: cst.StepCstChildren): ast.Step {
    const node = children.filterStep?.[0] ?? children.mapStep?.[0] ?? children.routeStep?.[0] ?? children.validateStep?.[0];
    if (node === undefined) throw new Incomplete();
    const step = this.visit(node) as ast.Step;
    return { ...step, span: join(tokenSpan(need(children.Pipe)), step.span) };
  }

  filterStep(children: cst.FilterStepCstChildren): ast.FilterStep {
    const condition = this.expr(children.condition?.[0]);
    return { kind: "filter", condition, span: join(tokenSpan(need(children.Filter)), condition.span) };
  }

  mapStep(children: cst.MapStepCstChildren): ast.MapStep {
    const record = this.visit(need(children.record)) as ast.RecordExpr;
    return { kind: "map", record, span: join(tokenSpan(need(children.Map)), record.span) };
  }

  routeStep(children: cst.RouteStepCstChildren): ast.RouteStep {
    const target = this.expr(children.target?.[0]);
    return { kind: "route", target, span: join(tokenSpan(need(children.Route)), target.span) };
  }

  validateStep(children: cst.ValidateStepCstChildren): ast.ValidateStep {
    const token = need(children.schema);
    const literal = this.string(token);
    if (literal.kind !== "string") {
      this.diagnostics.report(
        "DTS1006",
        literal.span,
        { expected: "a plain string naming the schema file", found: "an interpolated string" },
        { help: "the schema is read when the pipeline is checked, so its path cannot depend on the event" },
      );
      throw new Incomplete();
    }
    return { kind: "validate", schemaPath: literal, span: join(tokenSpan(need(children.Validate)), literal.span) };
  }

  // ------------------------------------------------------------ expressions

  expression(children: cst.ExpressionCstChildren): ast.Expr {
    return this.expr(children.coalesceExpr?.[0]);
  }

  private chain(operands: CstNode[] | undefined, operators: IToken[] | undefined, toOperator: (token: IToken) => ast.BinaryOperator): ast.Expr {
    const [first, ...rest] = operands ?? [];
    let result = this.expr(first);
    rest.forEach((node, index) => {
      const operatorToken = need(operators?.slice(index, index + 1));
      const right = this.expr(node);
      result = {
        kind: "binary",
        operator: toOperator(operatorToken),
        left: result,
        right,
        operatorSpan: tokenSpan(operatorToken),
        span: join(result.span, right.span),
      };
    });
    return result;
  }

  coalesceExpr(children: cst.CoalesceExprCstChildren): ast.Expr {
    return this.chain(children.operands, children.operators, () => "??");
  }

  orExpr(children: cst.OrExprCstChildren): ast.Expr {
    return this.chain(children.operands, children.operators, () => "or");
  }

  andExpr(children: cst.AndExprCstChildren): ast.Expr {
    return this.chain(children.operands, children.operators, () => "and");
  }

  notExpr(children: cst.NotExprCstChildren): ast.Expr {
    if (children.Not) {
      const operand = this.expr(children.negated?.[0]);
      return { kind: "unary", operator: "not", operand, span: join(tokenSpan(children.Not[0]!), operand.span) };
    }
    return this.expr(children.comparison?.[0]);
  }

  comparison(children: cst.ComparisonCstChildren): ast.Expr {
    const left = this.expr(children.left?.[0]);
    if (children.Is) {
      const end = tokenSpan(need(children.Null));
      return { kind: "isNull", operand: left, negated: children.Not !== undefined, span: join(left.span, end) };
    }
    const operatorNode = children.operator?.[0];
    if (operatorNode === undefined) return left;
    const operatorToken = this.visit(operatorNode) as IToken;
    const right = this.expr(children.right?.[0]);
    return {
      kind: "binary",
      operator: operatorToken.image as ast.BinaryOperator,
      left,
      right,
      operatorSpan: tokenSpan(operatorToken),
      span: join(left.span, right.span),
    };
  }

  comparisonOperator(children: cst.ComparisonOperatorCstChildren): IToken {
    const tokens = Object.values(children).flat() as IToken[];
    return need(tokens);
  }

  additive(children: cst.AdditiveCstChildren): ast.Expr {
    return this.chain(children.operands, children.operators, (token) => token.image as "+" | "-");
  }

  multiplicative(children: cst.MultiplicativeCstChildren): ast.Expr {
    return this.chain(children.operands, children.operators, (token) => token.image as "*" | "/" | "%");
  }

  unary(children: cst.UnaryCstChildren): ast.Expr {
    if (children.Minus) {
      const operand = this.expr(children.negated?.[0]);
      const minus = tokenSpan(children.Minus[0]!);
      // `-5` is a literal, so that the most negative 64-bit integer can be written.
      if (operand.kind === "number") return { ...operand, text: `-${operand.text}`, span: join(minus, operand.span) };
      return { kind: "unary", operator: "-", operand, span: join(minus, operand.span) };
    }
    return this.expr(children.postfix?.[0]);
  }

  postfix(children: cst.PostfixCstChildren): ast.Expr {
    let result = this.expr(children.primary?.[0]);
    for (const suffix of children.suffixes ?? []) {
      if (suffix.name === "memberSuffix") {
        const property = name(need((suffix.children as cst.MemberSuffixCstChildren).property));
        result = { kind: "member", object: result, property, span: join(result.span, property.span) };
      } else {
        const suffixChildren = suffix.children as cst.IndexSuffixCstChildren;
        const index = this.expr(suffixChildren.index?.[0]);
        const close = tokenSpan(need(suffixChildren.RBracket));
        result = { kind: "index", object: result, index, span: join(result.span, close) };
      }
    }
    return result;
  }

  memberSuffix(): never {
    throw new Error("memberSuffix is read by postfix");
  }

  indexSuffix(): never {
    throw new Error("indexSuffix is read by postfix");
  }

  primary(children: cst.PrimaryCstChildren): ast.Expr {
    if (children.NumberLiteral) {
      const token = children.NumberLiteral[0]!;
      return { kind: "number", text: token.image, fractional: /[.eE]/.test(token.image), span: tokenSpan(token) };
    }
    if (children.StringLiteral) return this.string(children.StringLiteral[0]!);
    if (children.True) return { kind: "boolean", value: true, span: tokenSpan(children.True[0]!) };
    if (children.False) return { kind: "boolean", value: false, span: tokenSpan(children.False[0]!) };
    if (children.Null) return { kind: "null", span: tokenSpan(children.Null[0]!) };
    const node = children.list?.[0] ?? children.record?.[0] ?? children.nameOrCall?.[0] ?? children.parenthesized?.[0];
    return this.expr(node);
  }

  nameOrCall(children: cst.NameOrCallCstChildren): ast.Expr {
    const token = need(children.name);
    const call = children.call?.[0];
    if (call === undefined) return { kind: "identifier", name: token.image, span: tokenSpan(token) };
    const callChildren = call.children as cst.CallArgumentsCstChildren;
    const args = (callChildren.args ?? []).map((node) => this.expr(node));
    const close = tokenSpan(need(callChildren.RParen));
    return { kind: "call", callee: name(token), args, span: join(tokenSpan(token), close) };
  }

  callArguments(): never {
    throw new Error("callArguments is read by nameOrCall");
  }

  parenthesized(children: cst.ParenthesizedCstChildren): ast.Expr {
    const inner = this.expr(children.inner?.[0]);
    // The span widens to the parentheses so that carets cover what the user wrote.
    return { ...inner, span: join(tokenSpan(need(children.LParen)), tokenSpan(need(children.RParen))) };
  }

  list(children: cst.ListCstChildren): ast.ListExpr {
    const items = (children.items ?? []).map((node) => this.expr(node));
    return { kind: "list", items, span: join(tokenSpan(need(children.LBracket)), tokenSpan(need(children.RBracket))) };
  }

  record(children: cst.RecordCstChildren): ast.RecordExpr {
    const entries: ast.RecordEntry[] = [];
    for (const node of children.entries ?? []) {
      try {
        entries.push(this.visit(node) as ast.RecordEntry);
      } catch (error) {
        if (!(error instanceof Incomplete)) throw error;
      }
    }
    const open = tokenSpan(need(children.LCurly));
    const closeToken = children.RCurly?.[0];
    const close = closeToken && !closeToken.isInsertedInRecovery ? tokenSpan(closeToken) : open;
    return { kind: "record", entries, span: join(open, close) };
  }

  recordEntry(children: cst.RecordEntryCstChildren): ast.RecordEntry {
    if (children.Spread) {
      const value = this.expr(children.spread?.[0]);
      return { kind: "spread", value, span: join(tokenSpan(children.Spread[0]!), value.span) };
    }
    if (children.Minus) {
      const dropped = name(need(children.drop));
      return { kind: "drop", name: dropped, span: join(tokenSpan(children.Minus[0]!), dropped.span) };
    }
    let fieldName: ast.Name;
    if (children.quotedName) {
      const literal = this.string(children.quotedName[0]!);
      fieldName = { text: literal.kind === "string" ? literal.value : "", span: literal.span };
      if (literal.kind !== "string") {
        this.diagnostics.report("DTS1006", literal.span, { expected: "a field name", found: "an interpolated string" });
      }
    } else {
      fieldName = name(need(children.name));
    }
    const value = this.expr(children.value?.[0]);
    return { kind: "field", name: fieldName, value, span: join(fieldName.span, value.span) };
  }

  // ------------------------------------------------------------ strings

  /** A string token becomes a plain string or, when it holds `${...}`, a template. */
  private string(token: IToken): ast.StringLiteral | ast.TemplateLiteral {
    const scanned = scanString(this.text, token.startOffset);
    const whole = span(token.startOffset, scanned.end);
    for (const problem of scanned.problems) this.reportStringProblem(problem);
    const interpolated = scanned.pieces.some((piece) => piece.kind === "interpolation");
    if (!interpolated) {
      const value = scanned.pieces.map((piece) => (piece.kind === "text" ? piece.value : "")).join("");
      return { kind: "string", value, span: whole };
    }
    const parts: (string | ast.Expr)[] = [];
    for (const piece of scanned.pieces) {
      if (piece.kind === "text") {
        parts.push(piece.value);
        continue;
      }
      const before = this.diagnostics.items.length;
      const parsed = parseText(this.text.slice(piece.start, piece.end), this.diagnostics, "expression", piece.start);
      if (this.diagnostics.items.length > before) continue;
      try {
        parts.push(this.expr(parsed.cst));
      } catch (error) {
        if (!(error instanceof Incomplete)) throw error;
      }
    }
    return { kind: "template", parts, span: whole };
  }

  private reportStringProblem(problem: StringProblem): void {
    const where = span(problem.start, problem.end);
    switch (problem.kind) {
      case "unterminated":
        this.diagnostics.report("DTS1002", span(problem.start, problem.start + 1), {}, { help: 'close the string with " on the same line' });
        return;
      case "unterminatedInterpolation":
        this.diagnostics.report("DTS1003", span(problem.start, problem.start + 2), {}, { help: 'end the expression with "}"' });
        return;
      case "badEscape":
        this.diagnostics.report("DTS1004", where, { char: problem.char }, { help: 'a backslash is written \\\\; the escapes are \\" \\\\ \\n \\t \\r \\$ \\u{...}' });
        return;
      case "emptyInterpolation":
        this.diagnostics.report("DTS1005", where);
        return;
      default: {
        const unknown: never = problem;
        throw new Error(`unknown string problem ${JSON.stringify(unknown)}`);
      }
    }
  }
}
