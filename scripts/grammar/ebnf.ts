/**
 * `grammar/dts.ebnf`: the grammar in W3C-style EBNF, one rule per parser rule, written by
 * walking the parser's GAST. It is a summary for people: it cannot show the parser's one
 * gate (a `-` that begins a line is not a subtraction, see src/syntax/parser.ts), and the
 * token classes at the end are described rather than derived.
 *
 * Expressions are built as a small tree first and printed second, so that parentheses are
 * added only where EBNF precedence needs them: `|` binds loosest, then juxtaposition, then
 * the postfix `?`, `*`, `+`.
 */
import {
  Alternation,
  Alternative,
  NonTerminal,
  Option,
  Repetition,
  RepetitionMandatory,
  RepetitionMandatoryWithSeparator,
  RepetitionWithSeparator,
  Rule,
  Terminal,
  type IProduction,
  type TokenType,
} from "../../src/syntax/chevrotain.js";
import { DtsParser } from "../../src/syntax/parser.js";
import { Identifier, Word } from "../../src/syntax/tokens.js";
import type { GeneratedFile } from "../generated.js";
import { literalText, skippedTokens, terminalText, tokenClass, wordMembers } from "./terminals.js";

const width = 100;

type Expr =
  | { readonly kind: "symbol"; readonly text: string }
  | { readonly kind: "sequence"; readonly items: readonly Expr[] }
  | { readonly kind: "choice"; readonly options: readonly Expr[] }
  | { readonly kind: "repeat"; readonly operator: "?" | "*" | "+"; readonly inner: Expr };

export function ebnfFile(): GeneratedFile[] {
  const rules = Object.values(new DtsParser().getGAstProductions());
  const usedTokens = new Set<TokenType>();
  const ruleLines = rules.map((rule) => [rule.name, sequence(rule.definition, usedTokens)] as const);

  const classes = [...usedTokens].filter((type) => literalText(type) === undefined);
  classes.sort((a, b) => a.name.localeCompare(b.name));
  const classLines = classes.map((type) => [type.name, tokenClassExpr(type)] as const);
  const skippedLines = skippedTokens().map((type) => [type.name, regexSymbol(type)] as const);

  const nameWidth = Math.max(...[...ruleLines, ...classLines, ...skippedLines].map(([name]) => name.length));
  const print = ([name, expr]: readonly [string, Expr]) => printRule(name.padEnd(nameWidth), expr);
  const describe = (type: TokenType) => {
    const margin = " ".repeat(nameWidth + " ::= ".length);
    return wrap(`/* ${tokenClass(type).description} */`, margin, `${margin}   `).join("\n");
  };

  const text = [
    "/*",
    " * The grammar of .dts in W3C-style EBNF, generated from src/syntax/parser.ts by `npm run gen`.",
    " * Do not edit by hand: the parser is the definition; grammar/railroad.html draws the same rules.",
    " *",
    ' * Terminals are written as they appear in a file ("flow", "->"); token classes are defined at',
    " * the end, by a JavaScript regular expression between slashes or by EBNF.",
    " * Not expressible here: a \"-\" at the start of a line ends the expression before it, so that in",
    " * a record it starts a new entry (-field drops a field) instead of subtracting.",
    " */",
    "",
    ...ruleLines.map(print),
    "",
    "/* Token classes */",
    "",
    ...classLines.flatMap((line, index) => [print(line), describe(classes[index]!)]),
    "",
    "/* Skipped between any two tokens: white space and comments */",
    "",
    ...skippedLines.map(print),
    "",
  ].join("\n");
  return [{ path: "grammar/dts.ebnf", content: text }];
}

function sequence(productions: readonly IProduction[], used: Set<TokenType>): Expr {
  const items = productions.flatMap((production) => {
    const expr = toExpr(production, used);
    return expr.kind === "sequence" ? expr.items : [expr];
  });
  return items.length === 1 ? items[0]! : { kind: "sequence", items };
}

function toExpr(production: IProduction, used: Set<TokenType>): Expr {
  if (production instanceof NonTerminal) return { kind: "symbol", text: production.nonTerminalName };
  if (production instanceof Terminal) {
    used.add(production.terminalType);
    return { kind: "symbol", text: terminalText(production.terminalType) };
  }
  if (production instanceof Option) return repeat("?", sequence(production.definition, used));
  if (production instanceof Repetition) return repeat("*", sequence(production.definition, used));
  if (production instanceof RepetitionMandatory) return repeat("+", sequence(production.definition, used));
  if (production instanceof RepetitionWithSeparator || production instanceof RepetitionMandatoryWithSeparator) {
    // MANY_SEP is `(x ("," x)*)?`, AT_LEAST_ONE_SEP the same without the `?`.
    const body = sequence(production.definition, used);
    used.add(production.separator);
    const separator: Expr = { kind: "symbol", text: terminalText(production.separator) };
    const list: Expr = { kind: "sequence", items: [body, repeat("*", { kind: "sequence", items: [separator, body] })] };
    return production instanceof RepetitionWithSeparator ? repeat("?", list) : list;
  }
  if (production instanceof Alternation) {
    return { kind: "choice", options: production.definition.map((alternative) => toExpr(alternative, used)) };
  }
  if (production instanceof Alternative) return sequence(production.definition, used);
  if (production instanceof Rule) throw new Error(`a rule inside a rule: ${production.name}`);
  throw new Error(`unknown GAST production ${production.constructor.name}`);
}

function repeat(operator: "?" | "*" | "+", inner: Expr): Expr {
  return { kind: "repeat", operator, inner };
}

/** A token class's definition: its EBNF, its regular expression, or (for Word) its members. */
function tokenClassExpr(type: TokenType): Expr {
  const ebnf = tokenClass(type).ebnf;
  if (ebnf !== undefined) return { kind: "symbol", text: ebnf };
  if (type === Word) {
    const members = wordMembers();
    if (!members.includes(Identifier)) throw new Error("Word no longer includes Identifier");
    const ordered = [Identifier, ...members.filter((member) => member !== Identifier)];
    return { kind: "choice", options: ordered.map((member) => ({ kind: "symbol", text: terminalText(member) })) };
  }
  return regexSymbol(type);
}

function regexSymbol(type: TokenType): Expr {
  if (!(type.PATTERN instanceof RegExp)) throw new Error(`token ${type.name} has no regular expression to print`);
  return { kind: "symbol", text: `/${type.PATTERN.source}/` };
}

type Context = "top" | "sequence" | "repeat";

function render(expr: Expr, context: Context): string {
  switch (expr.kind) {
    case "symbol":
      return expr.text;
    case "sequence": {
      const text = expr.items.map((item) => render(item, "sequence")).join(" ");
      return context === "repeat" ? `( ${text} )` : text;
    }
    case "choice": {
      const text = expr.options.map((option) => render(option, "top")).join(" | ");
      return context === "top" ? text : `( ${text} )`;
    }
    case "repeat":
      return render(expr.inner, "repeat") + expr.operator;
    default: {
      const unreachable: never = expr;
      return unreachable;
    }
  }
}

/**
 * `name ::= body` on one line when it fits. Otherwise a choice of plain symbols fills lines,
 * any other choice puts one option on a line, and a line still too long wraps at a space,
 * under the start of the body.
 */
function printRule(paddedName: string, expr: Expr): string {
  const lead = `${paddedName} ::= `;
  const oneLine = lead + render(expr, "top");
  if (oneLine.length <= width) return oneLine;
  const bodyIndent = " ".repeat(lead.length);
  const bar = `${" ".repeat(lead.length - 2)}| `;
  if (expr.kind !== "choice") return wrap(render(expr, "top"), lead, bodyIndent).join("\n");
  const options = expr.options.map((option) => render(option, "top"));
  if (expr.options.every((option) => option.kind === "symbol")) {
    const lines = [lead + options[0]!];
    for (const option of options.slice(1)) {
      const last = lines[lines.length - 1]!;
      if (last.length + 3 + option.length <= width) lines[lines.length - 1] = `${last} | ${option}`;
      else lines.push(bar + option);
    }
    return lines.join("\n");
  }
  return options.flatMap((option, index) => wrap(option, index === 0 ? lead : bar, bodyIndent)).join("\n");
}

function wrap(text: string, first: string, continuation: string): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(" ")) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = continuation + word;
    } else {
      line += (empty ? "" : " ") + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}
