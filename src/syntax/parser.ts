/**
 * The grammar of .dts, as a pure Chevrotain CstParser: it builds a concrete syntax tree and
 * nothing else. Meaning (names, spans, string interpolation, operator trees) is added by the
 * CST → AST visitor in src/ast/. Rules are class properties, so a misspelled rule name is a
 * compile error, and `npm run gen` derives the CST types, the railroad diagrams and the EBNF
 * from this one definition.
 *
 * Operator precedence, loosest first, is encoded as one rule per level:
 *   ??  ·  or  ·  and  ·  not  ·  == != < <= > >= in matches is-null  ·  + -  ·  * / %  ·  unary -
 *
 * Record entries may be separated by newlines instead of commas. That makes
 * `{ a: x
 *    -b }` ambiguous between `x - b` and "drop b"; directly inside a record, a `-` that
 * begins a new line starts a new entry (the gate in `additive`), as a reader would expect.
 * Everywhere else a line break means nothing.
 */
import { CstParser, EOF, type IToken, type TokenType } from "./chevrotain.js";
import * as t from "./tokens.js";

function sameLine(previous: IToken, next: IToken): boolean {
  return previous.endLine === undefined || next.startLine === undefined || previous.endLine === next.startLine;
}

/**
 * For each token, the kind of the innermost bracket around it, computed before parsing:
 * the newline rule for `-` applies directly inside a record only — inside parentheses, a
 * list or at the top level of a flow, `a` newline `- b` is a subtraction.
 */
export function enclosingBrackets(tokens: readonly IToken[]): WeakMap<IToken, TokenType> {
  const enclosing = new WeakMap<IToken, TokenType>();
  const stack: TokenType[] = [];
  for (const token of tokens) {
    const top = stack[stack.length - 1];
    if (top !== undefined) enclosing.set(token, top);
    if (token.tokenType === t.LCurly || token.tokenType === t.LParen || token.tokenType === t.LBracket) stack.push(token.tokenType);
    else if (token.tokenType === t.RCurly || token.tokenType === t.RParen || token.tokenType === t.RBracket) stack.pop();
  }
  return enclosing;
}

export class DtsParser extends CstParser {
  /** Set by the caller with the input: see `enclosingBrackets`. */
  enclosing: WeakMap<IToken, TokenType> = new WeakMap();

  constructor() {
    super(t.allTokens as TokenType[], { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "onlyOffset" });
    this.performSelfAnalysis();
  }

  public file = this.RULE("file", () => {
    this.MANY(() => this.SUBRULE(this.declaration));
  });

  public declaration = this.RULE("declaration", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.pipelineDecl) },
      { ALT: () => this.SUBRULE(this.sourceDecl) },
      { ALT: () => this.SUBRULE(this.sinkDecl) },
      { ALT: () => this.SUBRULE(this.letDecl) },
      { ALT: () => this.SUBRULE(this.flowDecl) },
    ]);
  });

  public pipelineDecl = this.RULE("pipelineDecl", () => {
    this.CONSUME(t.Pipeline);
    this.CONSUME(t.Identifier, { LABEL: "name" });
    this.OPTION(() => this.SUBRULE(this.record, { LABEL: "settings" }));
  });

  public sourceDecl = this.RULE("sourceDecl", () => {
    this.CONSUME(t.Source);
    this.CONSUME(t.Identifier, { LABEL: "name" });
    this.CONSUME(t.Equals);
    this.CONSUME2(t.Identifier, { LABEL: "connector" });
    this.SUBRULE(this.record, { LABEL: "options" });
  });

  public sinkDecl = this.RULE("sinkDecl", () => {
    this.CONSUME(t.Sink);
    this.CONSUME(t.Identifier, { LABEL: "name" });
    this.CONSUME(t.Equals);
    this.CONSUME2(t.Identifier, { LABEL: "connector" });
    this.SUBRULE(this.record, { LABEL: "options" });
  });

  public letDecl = this.RULE("letDecl", () => {
    this.CONSUME(t.Let);
    this.CONSUME(t.Identifier, { LABEL: "name" });
    this.CONSUME(t.Equals);
    this.SUBRULE(this.expression, { LABEL: "value" });
  });

  public flowDecl = this.RULE("flowDecl", () => {
    this.CONSUME(t.Flow);
    this.CONSUME(t.Identifier, { LABEL: "source" });
    this.MANY(() => this.SUBRULE(this.step));
    this.CONSUME(t.Arrow);
    this.AT_LEAST_ONE_SEP({
      SEP: t.Comma,
      DEF: () => this.CONSUME2(t.Identifier, { LABEL: "sinks" }),
    });
  });

  public step = this.RULE("step", () => {
    this.CONSUME(t.Pipe);
    this.OR([
      { ALT: () => this.SUBRULE(this.filterStep) },
      { ALT: () => this.SUBRULE(this.mapStep) },
      { ALT: () => this.SUBRULE(this.routeStep) },
      { ALT: () => this.SUBRULE(this.validateStep) },
    ]);
  });

  public filterStep = this.RULE("filterStep", () => {
    this.CONSUME(t.Filter);
    this.SUBRULE(this.expression, { LABEL: "condition" });
  });

  public mapStep = this.RULE("mapStep", () => {
    this.CONSUME(t.Map);
    this.SUBRULE(this.record);
  });

  public routeStep = this.RULE("routeStep", () => {
    this.CONSUME(t.Route);
    this.SUBRULE(this.expression, { LABEL: "target" });
  });

  public validateStep = this.RULE("validateStep", () => {
    this.CONSUME(t.Validate);
    this.CONSUME(t.StringLiteral, { LABEL: "schema" });
  });

  // ------------------------------------------------------------ expressions

  public expression = this.RULE("expression", () => {
    this.SUBRULE(this.coalesceExpr);
  });

  public coalesceExpr = this.RULE("coalesceExpr", () => {
    this.SUBRULE(this.orExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(t.Coalesce, { LABEL: "operators" });
      this.SUBRULE2(this.orExpr, { LABEL: "operands" });
    });
  });

  public orExpr = this.RULE("orExpr", () => {
    this.SUBRULE(this.andExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(t.Or, { LABEL: "operators" });
      this.SUBRULE2(this.andExpr, { LABEL: "operands" });
    });
  });

  public andExpr = this.RULE("andExpr", () => {
    this.SUBRULE(this.notExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(t.And, { LABEL: "operators" });
      this.SUBRULE2(this.notExpr, { LABEL: "operands" });
    });
  });

  public notExpr = this.RULE("notExpr", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(t.Not);
          this.SUBRULE(this.notExpr, { LABEL: "negated" });
        },
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]);
  });

  /** Comparisons do not chain: `a < b < c` is an error, as it would mean nothing useful. */
  public comparison = this.RULE("comparison", () => {
    this.SUBRULE(this.additive, { LABEL: "left" });
    this.OPTION(() => {
      this.OR([
        {
          ALT: () => {
            this.SUBRULE(this.comparisonOperator, { LABEL: "operator" });
            this.SUBRULE2(this.additive, { LABEL: "right" });
          },
        },
        {
          ALT: () => {
            this.CONSUME(t.Is);
            this.OPTION2(() => this.CONSUME(t.Not));
            this.CONSUME(t.Null);
          },
        },
      ]);
    });
  });

  public comparisonOperator = this.RULE("comparisonOperator", () => {
    this.OR([
      { ALT: () => this.CONSUME(t.EqualEqual) },
      { ALT: () => this.CONSUME(t.NotEqual) },
      { ALT: () => this.CONSUME(t.LessEqual) },
      { ALT: () => this.CONSUME(t.GreaterEqual) },
      { ALT: () => this.CONSUME(t.Less) },
      { ALT: () => this.CONSUME(t.Greater) },
      { ALT: () => this.CONSUME(t.In) },
      { ALT: () => this.CONSUME(t.Matches) },
    ]);
  });

  public additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative, { LABEL: "operands" });
    this.MANY({
      GATE: () => this.LA(1).tokenType !== t.Minus || sameLine(this.LA(0), this.LA(1)) || this.enclosing.get(this.LA(1)) !== t.LCurly,
      DEF: () => {
        this.OR([
          { ALT: () => this.CONSUME(t.Plus, { LABEL: "operators" }) },
          { ALT: () => this.CONSUME(t.Minus, { LABEL: "operators" }) },
        ]);
        this.SUBRULE2(this.multiplicative, { LABEL: "operands" });
      },
    });
  });

  public multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary, { LABEL: "operands" });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(t.Star, { LABEL: "operators" }) },
        { ALT: () => this.CONSUME(t.Slash, { LABEL: "operators" }) },
        { ALT: () => this.CONSUME(t.Percent, { LABEL: "operators" }) },
      ]);
      this.SUBRULE2(this.unary, { LABEL: "operands" });
    });
  });

  public unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(t.Minus);
          this.SUBRULE(this.unary, { LABEL: "negated" });
        },
      },
      { ALT: () => this.SUBRULE(this.postfix) },
    ]);
  });

  public postfix = this.RULE("postfix", () => {
    this.SUBRULE(this.primary);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.memberSuffix, { LABEL: "suffixes" }) },
        { ALT: () => this.SUBRULE(this.indexSuffix, { LABEL: "suffixes" }) },
      ]);
    });
  });

  public memberSuffix = this.RULE("memberSuffix", () => {
    this.CONSUME(t.Dot);
    this.CONSUME(t.Word, { LABEL: "property" });
  });

  public indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(t.LBracket);
    this.SUBRULE(this.expression, { LABEL: "index" });
    this.CONSUME(t.RBracket);
  });

  public primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(t.NumberLiteral) },
      { ALT: () => this.CONSUME(t.StringLiteral) },
      { ALT: () => this.CONSUME(t.True) },
      { ALT: () => this.CONSUME(t.False) },
      { ALT: () => this.CONSUME(t.Null) },
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => this.SUBRULE(this.record) },
      { ALT: () => this.SUBRULE(this.nameOrCall) },
      { ALT: () => this.SUBRULE(this.parenthesized) },
    ]);
  });

  /** `source` is a keyword at the top level but also the event's `source` record. */
  public nameOrCall = this.RULE("nameOrCall", () => {
    this.OR([
      { ALT: () => this.CONSUME(t.Identifier, { LABEL: "name" }) },
      { ALT: () => this.CONSUME(t.Source, { LABEL: "name" }) },
    ]);
    this.OPTION(() => this.SUBRULE(this.callArguments, { LABEL: "call" }));
  });

  public callArguments = this.RULE("callArguments", () => {
    this.CONSUME(t.LParen);
    this.MANY_SEP({ SEP: t.Comma, DEF: () => this.SUBRULE(this.expression, { LABEL: "args" }) });
    this.CONSUME(t.RParen);
  });

  public parenthesized = this.RULE("parenthesized", () => {
    this.CONSUME(t.LParen);
    this.SUBRULE(this.expression, { LABEL: "inner" });
    this.CONSUME(t.RParen);
  });

  public list = this.RULE("list", () => {
    this.CONSUME(t.LBracket);
    this.MANY(() => {
      this.SUBRULE(this.expression, { LABEL: "items" });
      this.OPTION(() => this.CONSUME(t.Comma));
    });
    this.CONSUME(t.RBracket);
  });

  public record = this.RULE("record", () => {
    this.CONSUME(t.LCurly);
    this.MANY(() => {
      this.SUBRULE(this.recordEntry, { LABEL: "entries" });
      this.OPTION(() => this.CONSUME(t.Comma));
    });
    this.CONSUME(t.RCurly);
  });

  public recordEntry = this.RULE("recordEntry", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(t.Spread);
          this.SUBRULE(this.expression, { LABEL: "spread" });
        },
      },
      {
        ALT: () => {
          this.CONSUME(t.Minus);
          this.CONSUME(t.Word, { LABEL: "drop" });
        },
      },
      {
        ALT: () => {
          this.OR2([
            { ALT: () => this.CONSUME2(t.Word, { LABEL: "name" }) },
            { ALT: () => this.CONSUME(t.StringLiteral, { LABEL: "quotedName" }) },
          ]);
          this.CONSUME(t.Colon);
          this.SUBRULE2(this.expression, { LABEL: "value" });
        },
      },
    ]);
  });
}

/** One parser for the process: Chevrotain's self-analysis is done once, the instance reused. */
let shared: DtsParser | undefined;
export function sharedParser(): DtsParser {
  shared ??= new DtsParser();
  return shared;
}

export { EOF };
