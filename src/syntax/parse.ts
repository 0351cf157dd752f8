/**
 * Text → tokens → CST, with every lexer and parser error turned into a catalogue diagnostic.
 * Chevrotain's own messages never reach the user: the error-message provider below encodes
 * what went wrong as JSON, and `toDiagnostic` words it in the language of .dts (which rule
 * was being read, what was expected, what was found, and a "did you mean" where a keyword
 * was misspelled).
 */
import {
  Lexer,
  type CstNode,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IToken,
  type TokenType,
} from "chevrotain";
import type { Span } from "../ast/nodes.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { closestMatch } from "../diagnostics/suggest.js";
import { sharedParser } from "./parser.js";
import { scanString } from "./strings.js";
import * as t from "./tokens.js";

let lexer: Lexer | undefined;
function sharedLexer(): Lexer {
  lexer ??= new Lexer(t.allTokens as TokenType[], { positionTracking: "full", ensureOptimizations: false });
  return lexer;
}

type ErrorInfo =
  | { kind: "mismatch"; expected: string; rule: string }
  | { kind: "noViableAlt"; rule: string; firsts: string[] }
  | { kind: "earlyExit"; rule: string; firsts: string[] }
  | { kind: "notAllInput" };

const firstTokenNames = (paths: TokenType[][][]): string[] => [
  ...new Set(paths.flatMap((alt) => alt.map((path) => path[0]?.name ?? "")).filter((n) => n !== "")),
];

const messageProvider: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, ruleName }) =>
    JSON.stringify({ kind: "mismatch", expected: expected.name, rule: ruleName } satisfies ErrorInfo),
  buildNotAllInputParsedMessage: () => JSON.stringify({ kind: "notAllInput" } satisfies ErrorInfo),
  buildNoViableAltMessage: ({ expectedPathsPerAlt, ruleName }) =>
    JSON.stringify({ kind: "noViableAlt", rule: ruleName, firsts: firstTokenNames(expectedPathsPerAlt) } satisfies ErrorInfo),
  buildEarlyExitMessage: ({ expectedIterationPaths, ruleName }) =>
    JSON.stringify({ kind: "earlyExit", rule: ruleName, firsts: firstTokenNames([expectedIterationPaths]) } satisfies ErrorInfo),
};

export interface ParseResult {
  readonly cst: CstNode;
  readonly tokens: readonly IToken[];
}

export type StartRule = "file" | "expression";

/**
 * Parses `text` from `rule`. `offset` shifts every span: an interpolation `${...}` is parsed
 * on its own but must report positions in the enclosing file.
 */
export function parseText(text: string, diagnostics: DiagnosticBag, rule: StartRule = "file", offset = 0): ParseResult {
  const lexed = sharedLexer().tokenize(text);
  for (const error of lexed.errors) {
    const start = error.offset + offset;
    diagnostics.report("DTS1001", { start, end: start + Math.max(1, error.length) }, { char: text.slice(error.offset, error.offset + Math.max(1, error.length)) });
  }
  const tokens = offset === 0 ? lexed.tokens : lexed.tokens.map((token) => shiftToken(token, offset));
  const bracketProblems = checkBrackets(tokens, diagnostics);
  const parser = sharedParser();
  // The message provider is a parser-wide setting; assigning it per parse keeps it ours.
  (parser as unknown as { errorMessageProvider: IParserErrorMessageProvider }).errorMessageProvider = messageProvider;
  const run = (input: IToken[], start: () => CstNode): CstNode => {
    parser.input = input;
    const cst = start();
    for (const error of parser.errors) {
      const diagnostic = describeError(error, text, offset, input);
      if (diagnostic === undefined) continue;
      if (diagnostic.closer !== undefined && bracketProblems.has(diagnostic.closer)) continue;
      diagnostics.report(diagnostic.code, diagnostic.span, diagnostic.args, diagnostic.help === undefined ? {} : { help: diagnostic.help });
    }
    return cst;
  };
  if (rule === "expression") return { cst: run(tokens, () => parser.expression()), tokens };
  // Each declaration is parsed on its own, so that a mistake in one (even an unclosed brace)
  // cannot hide the declarations after it: every error of the file is reported in one run.
  const declarations = splitDeclarations(tokens).map((chunk) => run(chunk, () => parser.declaration()));
  const cst: CstNode = { name: "file", children: { declaration: declarations }, location: { startOffset: offset, endOffset: offset + text.length } };
  return { cst, tokens };
}

const declarationStarts: ReadonlySet<TokenType> = new Set([t.Pipeline, t.Source, t.Sink, t.Let, t.Flow]);

/**
 * Cuts the token stream where a declaration begins: a declaration keyword followed by a
 * name, either outside any bracket or first on its line (an unclosed brace above must not
 * swallow the rest of the file). `source` followed by `.` is the event's source, not a
 * declaration, and a keyword followed by `:` is a record key.
 */
function splitDeclarations(tokens: readonly IToken[]): IToken[][] {
  const chunks: IToken[][] = [];
  let current: IToken[] = [];
  let depth = 0;
  tokens.forEach((token, index) => {
    const next = tokens[index + 1];
    const previous = tokens[index - 1];
    const startsLine = previous === undefined || (previous.endLine ?? 0) < (token.startLine ?? 0);
    const starts = declarationStarts.has(token.tokenType) && next?.tokenType === t.Identifier && (depth <= 0 || startsLine);
    if (starts && current.length > 0) {
      chunks.push(current);
      current = [];
      depth = 0;
    }
    if (pairs.has(token.tokenType)) depth++;
    else if (closersOf.has(token.tokenType)) depth--;
    current.push(token);
  });
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function shiftToken(token: IToken, offset: number): IToken {
  return { ...token, startOffset: token.startOffset + offset, endOffset: (token.endOffset ?? token.startOffset) + offset };
}

export function tokenSpan(token: IToken): Span {
  return { start: token.startOffset, end: (token.endOffset ?? token.startOffset) + 1 };
}

const pairs: ReadonlyMap<TokenType, TokenType> = new Map([
  [t.LCurly, t.RCurly],
  [t.LBracket, t.RBracket],
  [t.LParen, t.RParen],
]);
const closersOf: ReadonlySet<TokenType> = new Set(pairs.values());

/**
 * Reports an unclosed `{`, `[` or `(` at the opener, where the mistake is, rather than at
 * the end of the file where the parser notices it. Returns the closer kinds it reported so
 * that the parser's own "expected }" is not said twice.
 */
function checkBrackets(tokens: readonly IToken[], diagnostics: DiagnosticBag): Set<string> {
  const open: IToken[] = [];
  const reported = new Set<string>();
  const closers = new Map([...pairs].map(([opener, closer]) => [closer, opener]));
  for (const token of tokens) {
    if (pairs.has(token.tokenType)) {
      open.push(token);
      continue;
    }
    const opener = closers.get(token.tokenType);
    if (opener === undefined) continue;
    // A closer matches the innermost opener of its kind; openers above it were never closed.
    const index = open.map((o) => o.tokenType).lastIndexOf(opener);
    if (index === -1) continue; // a stray closer: the parser reports it where it stands
    for (const unclosed of open.splice(index + 1)) reportUnclosed(unclosed, diagnostics, reported);
    open.pop();
  }
  // A string left open runs to the end of its line and takes any closer there with it;
  // the string's own error says what to fix, so the brace it swallowed is not reported too.
  const brokenStrings = tokens.filter((token) => token.tokenType === t.StringLiteral && scanString(token.image, 0).problems.some((p) => p.kind === "unterminated" || p.kind === "unterminatedInterpolation"));
  for (const unclosed of open) {
    if (brokenStrings.some((s) => s.startOffset > unclosed.startOffset)) continue;
    reportUnclosed(unclosed, diagnostics, reported);
  }
  return reported;
}

function reportUnclosed(opener: IToken, diagnostics: DiagnosticBag, reported: Set<string>): void {
  const closer = pairs.get(opener.tokenType)!;
  reported.add(closer.name);
  diagnostics.report("DTS1009", tokenSpan(opener), { open: opener.image, close: (closer.PATTERN as RegExp).source.replace(/\\/g, "") });
}

interface DescribedError {
  code: "DTS1006" | "DTS1007" | "DTS1008" | "DTS1010" | "DTS1011" | "DTS1012";
  span: Span;
  args: Record<string, string>;
  help?: string;
  /** The closing bracket kind the parser wanted, if that was the problem. */
  closer?: string;
}

const declarationKeywords = ["pipeline", "source", "sink", "let", "flow"];
const stepKeywords = ["filter", "map", "route", "validate"];
const tokenTypesByName = new Map(t.allTokens.map((type) => [type.name, type]));

function describeFound(token: IToken): string {
  if (token.tokenType.name === "EOF") return "the end of the file";
  if (t.keywordTokens.includes(token.tokenType)) return `keyword "${token.image}"`;
  if (token.tokenType === t.Identifier) return `"${token.image}"`;
  if (token.tokenType === t.StringLiteral) return "a string";
  if (token.tokenType === t.NumberLiteral) return `the number ${token.image}`;
  return `"${token.image}"`;
}

function describeExpected(name: string): string {
  const type = tokenTypesByName.get(name);
  if (name === "Identifier" || name === "Word") return "a name";
  return type === undefined ? name : t.describeTokenType(type);
}

/** The span of a token, or for the end of the file, of the last real token. */
function errorSpan(token: IToken, tokens: readonly IToken[], textLength: number, offset: number): Span {
  if (token.tokenType.name !== "EOF" && !Number.isNaN(token.startOffset)) return tokenSpan(token);
  const last = tokens[tokens.length - 1];
  if (last === undefined) return { start: offset + textLength, end: offset + textLength };
  const end = (last.endOffset ?? last.startOffset) + 1;
  return { start: end, end: end + 1 };
}

function describeError(error: IRecognitionException, text: string, offset: number, tokens: readonly IToken[]): DescribedError | undefined {
  let info: ErrorInfo;
  try {
    info = JSON.parse(error.message) as ErrorInfo;
  } catch {
    info = { kind: "notAllInput" };
  }
  const token = error.token;
  const span = errorSpan(token, tokens, text.length, offset);
  const found = describeFound(token);
  const word = token.tokenType === t.Identifier ? token.image : undefined;
  switch (info.kind) {
    case "mismatch": {
      if (info.expected === "EOF") {
        return info.rule === "expression" ? { code: "DTS1011", span, args: { found, reason: "the expression is complete before it" } } : declarationError(token, span, found);
      }
      if (info.rule === "flowDecl" && info.expected === "Arrow" && word !== undefined && stepKeywords.includes(closestMatch(word, stepKeywords) ?? "")) {
        return { code: "DTS1010", span, args: { word }, help: `did you mean "| ${closestMatch(word, stepKeywords)}"?` };
      }
      if (info.rule === "flowDecl" && info.expected === "Identifier" && (error as { previousToken?: IToken }).previousToken?.tokenType === t.Arrow) {
        return { code: "DTS1012", span, args: {} };
      }
      const described: DescribedError = { code: "DTS1006", span, args: { expected: describeExpected(info.expected), found } };
      if (info.expected === "RCurly" || info.expected === "RBracket" || info.expected === "RParen") described.closer = info.expected;
      if (info.expected === "Identifier" && t.keywordTokens.includes(token.tokenType)) {
        described.help = `"${token.image}" is a keyword; choose another name`;
      }
      if (info.expected === "Equals" && token.tokenType === t.Colon) described.help = 'write "=" after the name, as in source shop = postgres { ... }';
      return described;
    }
    case "noViableAlt":
    case "earlyExit": {
      if (info.rule === "declaration" || info.rule === "file") return declarationError(token, span, found);
      if (info.rule === "step") {
        const guess = word === undefined ? undefined : closestMatch(word, stepKeywords);
        return { code: "DTS1010", span, args: { word: token.image }, ...(guess ? { help: `did you mean "${guess}"?` } : {}) };
      }
      if (info.rule === "recordEntry") {
        return { code: "DTS1006", span, args: { expected: 'a field ("name: value"), "...record" or "-name"', found } };
      }
      if (info.rule === "comparisonOperator") return { code: "DTS1008", span, args: { found } };
      return { code: "DTS1008", span, args: { found } };
    }
    case "notAllInput":
      return declarationError(token, span, found);
    default: {
      const unknown: never = info;
      throw new Error(`unknown parse error ${JSON.stringify(unknown)}`);
    }
  }
}

function declarationError(token: IToken, span: Span, found: string): DescribedError {
  const word = token.tokenType === t.Identifier ? token.image : undefined;
  const guess = word === undefined ? undefined : closestMatch(word, declarationKeywords);
  if (guess !== undefined) return { code: "DTS1007", span, args: { found }, help: `did you mean "${guess}"?` };
  if (token.tokenType === t.Pipe || token.tokenType === t.Arrow) {
    return { code: "DTS1011", span, args: { found, reason: "a step or -> belongs to a flow, after its source (flow NAME | step ... -> SINK)" } };
  }
  return { code: "DTS1007", span, args: { found } };
}
