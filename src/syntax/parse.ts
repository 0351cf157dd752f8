/**
 * Text → tokens → CST, with every lexer and parser error turned into a catalogue diagnostic.
 * Chevrotain's own messages never reach the user: the error-message provider below encodes
 * what went wrong as JSON, and `toDiagnostic` words it in the language of .dts (which rule
 * was being read, what was expected, what was found, and a "did you mean" where a keyword
 * was misspelled).
 */
import {
  Lexer,
  tokenMatcher,
  type CstNode,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IToken,
  type TokenType,
} from "./chevrotain.js";
import type { Span } from "../ast/nodes.js";
import { DiagnosticBag } from "../diagnostics/diagnostic.js";
import { closestMatch } from "../diagnostics/suggest.js";
import { enclosingBrackets, sharedParser } from "./parser.js";
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

/** One top-level declaration as the splitter cut it, and whether it held a syntax error. */
export interface DeclarationChunk {
  readonly tokens: readonly IToken[];
  /** A lexer or parser error lies inside: the CST is partial and must not be trusted. */
  readonly broken: boolean;
}

/** The chunk each declaration CST node was parsed from; see `declarationChunk`. */
const chunks = new WeakMap<CstNode, DeclarationChunk>();

/**
 * The tokens and the error state of the declaration `node` (a child of the file's CST).
 * A declaration with a syntax error is reported once, by the parser, and later stages only
 * learn its name and the names it mentions, so that its mistake does not come back as
 * "unknown source" or "never used" elsewhere.
 */
export function declarationChunk(node: CstNode): DeclarationChunk | undefined {
  return chunks.get(node);
}

export type StartRule = "file" | "expression";

/**
 * Parses `text` from `rule`. `offset` shifts every span: an interpolation `${...}` is parsed
 * on its own but must report positions in the enclosing file.
 *
 * One syntax error is reported per declaration: after the first, Chevrotain's recovery
 * guesses, and its later complaints are about its guesses, not about what the user wrote.
 * An unclosed bracket is reported at its opener, and then the declaration holding it says
 * nothing more.
 */
export function parseText(text: string, diagnostics: DiagnosticBag, rule: StartRule = "file", offset = 0): ParseResult {
  const lexed = lexSafely(text, diagnostics, offset);
  if (lexed === undefined) return { cst: { name: rule, children: {} }, tokens: [] };
  const lexerErrors = lexed.errors.map((error) => error.offset + offset);
  lexed.errors.forEach((error, index) => {
    const start = error.offset + offset;
    const char = text.slice(error.offset, error.offset + Math.max(1, error.length));
    // 'text' is one mistake, not two: the closing quote is not reported again.
    const previous = lexed.errors[index - 1];
    if (char === "'" && previous !== undefined && previous.line === error.line && text[previous.offset] === "'" && !closingQuote.has(previous)) {
      closingQuote.add(error);
      return;
    }
    diagnostics.report("DTS1001", { start, end: start + Math.max(1, error.length) }, { char }, unexpectedCharacterHelp(char));
  });
  const tokens = offset === 0 ? lexed.tokens : lexed.tokens.map((token) => shiftToken(token, offset));
  const unclosed = checkBrackets(tokens, diagnostics);
  const parser = sharedParser();
  // The message provider is a parser-wide setting; assigning it per parse keeps it ours.
  (parser as unknown as { errorMessageProvider: IParserErrorMessageProvider }).errorMessageProvider = messageProvider;
  // A character the lexer dropped or a bracket left open explains any parse error near it.
  const run = (input: IToken[], start: () => CstNode, lexerError: boolean): { cst: CstNode; failed: boolean } => {
    const empty: CstNode = { name: rule === "expression" ? "expression" : "declaration", children: {} };
    const deep = tooDeep(input);
    if (deep !== undefined) {
      reportTooDeep(tokenSpan(deep), diagnostics);
      return { cst: empty, failed: true };
    }
    parser.input = input;
    parser.enclosing = enclosingBrackets(input);
    let cst: CstNode;
    try {
      cst = start();
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      reportTooDeep(input[0] === undefined ? { start: offset, end: offset + 1 } : tokenSpan(input[0]), diagnostics);
      return { cst: empty, failed: true };
    }
    const errors = parser.errors;
    const quiet = lexerError || input.some((token) => unclosed.has(token));
    const first = errors[0];
    if (first !== undefined && !quiet) {
      const diagnostic = describeError(first, text, offset, input, tokens, rule);
      diagnostics.report(diagnostic.code, diagnostic.span, diagnostic.args, diagnostic.help === undefined ? {} : { help: diagnostic.help });
    }
    return { cst, failed: errors.length > 0 };
  };
  if (rule === "expression") return { cst: run(tokens, () => parser.expression(), lexerErrors.length > 0).cst, tokens };
  // Each declaration is parsed on its own, so that a mistake in one (even an unclosed brace)
  // cannot hide the declarations after it: every error of the file is reported in one run.
  const pieces = splitDeclarations(tokens);
  const declarations = pieces.map((chunk, index) => {
    const from = chunk[0]!.startOffset;
    const until = pieces[index + 1]?.[0]?.startOffset ?? Infinity;
    const lexerError = lexerErrors.some((at) => at >= (index === 0 ? -Infinity : from) && at < until);
    const { cst, failed } = run(chunk, () => parser.declaration(), lexerError);
    chunks.set(cst, { tokens: chunk, broken: failed || lexerError });
    return cst;
  });
  const cst: CstNode = { name: "file", children: { declaration: declarations }, location: { startOffset: offset, endOffset: offset + text.length } };
  return { cst, tokens };
}

const closingQuote = new WeakSet<object>();

/**
 * Nesting beyond any real pipeline's: the parser, the checker and the plan printer recurse,
 * and a file of ten thousand "(" must end in a diagnostic, not in a stack overflow.
 */
export const MAX_NESTING = 64;

export function reportTooDeep(span: Span, diagnostics: DiagnosticBag): void {
  diagnostics.report("DTS1015", span, { limit: MAX_NESTING }, { help: "split it up with let or with several steps" });
}

/** The opener (or prefix operator) at which brackets and prefix operators nest deeper than MAX_NESTING. */
function tooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  let prefixes = 0;
  for (const token of tokens) {
    if (pairs.has(token.tokenType)) depth++;
    else if (closersOf.has(token.tokenType)) depth = Math.max(0, depth - 1);
    prefixes = token.tokenType === t.Not || token.tokenType === t.Minus ? prefixes + 1 : 0;
    if (depth > MAX_NESTING || prefixes > MAX_NESTING) return token;
  }
  return undefined;
}

/** The lexer recurses into string interpolations; absurd nesting there is reported, not thrown. */
function lexSafely(text: string, diagnostics: DiagnosticBag, offset: number): ReturnType<Lexer["tokenize"]> | undefined {
  try {
    return sharedLexer().tokenize(text);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    reportTooDeep({ start: offset, end: offset + 1 }, diagnostics);
    return undefined;
  }
}

function unexpectedCharacterHelp(char: string): { help?: string } {
  switch (char) {
    case "$":
      return { help: 'an interpolation is written inside a string: "text ${expression}"' };
    case "'":
      return { help: 'strings are written in double quotes: "text"' };
    case "&":
    case "&&":
      return { help: 'write "and"' };
    case "!":
      return { help: 'write "not", or "!=" to compare' };
    case ";":
      return { help: "declarations and record entries need no separator; end the line instead" };
    default:
      return /^\p{L}/u.test(char) ? { help: "names are written with the letters a-z and A-Z, digits and _" } : {};
  }
}

const declarationStarts: ReadonlySet<TokenType> = new Set([t.Pipeline, t.Source, t.Sink, t.Let, t.Flow]);

/**
 * Cuts the token stream where a declaration begins: a declaration keyword followed by a
 * name (or by a keyword misused as one), either outside any bracket or first on its line (an
 * unclosed brace above must not swallow the rest of the file). `source` followed by `.` is
 * the event's source, not a declaration, and a keyword followed by `:` is a record key.
 * A word that starts a line at the top level and is a plausible misspelling of a
 * declaration keyword (`sorce shop = ...`) also starts a chunk, so that its mistake stays
 * its own.
 */
function splitDeclarations(tokens: readonly IToken[]): IToken[][] {
  const chunks: IToken[][] = [];
  let current: IToken[] = [];
  let depth = 0;
  tokens.forEach((token, index) => {
    const next = tokens[index + 1];
    const previous = tokens[index - 1];
    const startsLine = previous === undefined || (previous.endLine ?? 0) < (token.startLine ?? 0);
    const namedNext = next !== undefined && tokenMatcher(next, t.Word);
    // A keyword first on its line at the top level starts a declaration even without its
    // name (`sink = jsonl {}`, or a bare `pipeline` at the end of a line).
    const nameless =
      startsLine && depth <= 0 && (next === undefined || next.tokenType === t.Equals || next.tokenType === t.LCurly || (next.startLine ?? 0) > (token.endLine ?? 0));
    const keyword = declarationStarts.has(token.tokenType) && ((namedNext && (depth <= 0 || startsLine)) || nameless);
    const misspelled = token.tokenType === t.Identifier && startsLine && depth <= 0 && looksLikeDeclaration(tokens, index);
    if ((keyword || misspelled) && current.length > 0) {
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

/** `sorce shop = ...`, `flwo shop -> out`: a near-keyword, a name, then what a declaration has next. */
function looksLikeDeclaration(tokens: readonly IToken[], index: number): boolean {
  const name = tokens[index + 1];
  if (name?.tokenType !== t.Identifier || closestMatch(tokens[index]!.image, declarationKeywords) === undefined) return false;
  const after = tokens[index + 2];
  if (after === undefined || (after.startLine ?? 0) > (name.endLine ?? 0)) return true;
  return after.tokenType === t.Equals || after.tokenType === t.Arrow || after.tokenType === t.Pipe || after.tokenType === t.LCurly;
}

function shiftToken(token: IToken, offset: number): IToken {
  return { ...token, startOffset: token.startOffset + offset, endOffset: (token.endOffset ?? token.startOffset) + offset };
}

/** The tokens of `text`, comments and white space left out (for tools that quote source). */
export function lexTokens(text: string): IToken[] {
  return sharedLexer().tokenize(text).tokens;
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
 * the end of the file where the parser notices it, and a closer that closes nothing where it
 * stands. Returns the tokens it blamed (reported or not): the declaration holding one says
 * nothing more, as the parser's own "expected }" would only repeat it.
 */
function checkBrackets(tokens: readonly IToken[], diagnostics: DiagnosticBag): Set<IToken> {
  const open: IToken[] = [];
  const blamed = new Set<IToken>();
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
    if (index === -1) {
      diagnostics.report("DTS1014", tokenSpan(token), { close: token.image, open: symbol(opener) }, { help: `delete it, or add the "${symbol(opener)}" it closes` });
      blamed.add(token);
      continue;
    }
    for (const unclosed of open.splice(index + 1)) reportUnclosed(unclosed, diagnostics, blamed);
    open.pop();
  }
  // A string left open runs to the end of its line and takes any closer there with it;
  // the string's own error says what to fix, so the bracket it swallowed is not reported too.
  const brokenStrings = tokens.filter((token) => token.tokenType === t.StringLiteral && scanString(token.image, 0).problems.some((p) => p.kind === "unterminated" || p.kind === "unterminatedInterpolation"));
  for (const unclosed of open) {
    if (brokenStrings.some((s) => s.startOffset > unclosed.startOffset)) blamed.add(unclosed);
    else reportUnclosed(unclosed, diagnostics, blamed);
  }
  return blamed;
}

function symbol(type: TokenType): string {
  return (type.PATTERN as RegExp).source.replace(/\\/g, "");
}

function reportUnclosed(opener: IToken, diagnostics: DiagnosticBag, blamed: Set<IToken>): void {
  blamed.add(opener);
  diagnostics.report("DTS1009", tokenSpan(opener), { open: opener.image, close: symbol(pairs.get(opener.tokenType)!) });
}

interface DescribedError {
  code: "DTS1006" | "DTS1007" | "DTS1008" | "DTS1010" | "DTS1011" | "DTS1012" | "DTS1013";
  span: Span;
  args: Record<string, string>;
  help?: string;
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

const comparisonTokens: ReadonlySet<TokenType> = new Set([t.EqualEqual, t.NotEqual, t.Less, t.LessEqual, t.Greater, t.GreaterEqual, t.In, t.Matches, t.Is]);
/** Where an expression begins, for "is a comma missing?" */
const expressionStarts: ReadonlySet<TokenType> = new Set([
  t.Identifier, t.Source, t.NumberLiteral, t.StringLiteral, t.True, t.False, t.Null, t.LParen, t.LBracket, t.LCurly, t.Not, t.Minus,
]);

/**
 * `a < b < c`: the parser stops at the second comparison operator. It is a chain when a
 * comparison operator stands before it in the same expression (same bracket depth, no
 * `and`/`or`/`??`, comma, colon or step in between).
 */
function isComparisonChain(token: IToken, tokens: readonly IToken[]): boolean {
  if (!comparisonTokens.has(token.tokenType)) return false;
  let depth = 0;
  for (let i = tokens.indexOf(token) - 1; i >= 0; i--) {
    const type = tokens[i]!.tokenType;
    if (closersOf.has(type)) depth++;
    else if (pairs.has(type)) {
      if (depth === 0) return false;
      depth--;
    } else if (depth === 0) {
      if (comparisonTokens.has(type)) return true;
      if (type === t.And || type === t.Or || type === t.Coalesce || type === t.Comma || type === t.Colon || type === t.Pipe || type === t.Not) return false;
      if (declarationStarts.has(type) && i === 0) return false;
    }
  }
  return false;
}

function describeError(
  error: IRecognitionException,
  text: string,
  offset: number,
  tokens: readonly IToken[],
  allTokens: readonly IToken[],
  startRule: StartRule,
): DescribedError {
  let info: ErrorInfo;
  try {
    info = JSON.parse(error.message) as ErrorInfo;
  } catch {
    info = { kind: "notAllInput" };
  }
  const token = error.token;
  const previous = (error as { previousToken?: IToken }).previousToken;
  const span = errorSpan(token, tokens, text.length, offset);
  // The end of a declaration's tokens is not the end of the file: say what comes next.
  const last = tokens[tokens.length - 1];
  const following = token.tokenType.name === "EOF" && last !== undefined ? allTokens[allTokens.indexOf(last) + 1] : undefined;
  // An expression is parsed on its own only inside "${...}": its end is the closing brace.
  const found = startRule === "expression" && token.tokenType.name === "EOF" ? 'the "}" that ends the interpolation' : describeFound(following ?? token);
  const word = token.tokenType === t.Identifier ? token.image : undefined;
  if (isComparisonChain(token, tokens)) {
    return { code: "DTS1013", span, args: {}, help: "join two comparisons with and: a < b and b < c" };
  }
  // `flow shop | filter x -> ` with nothing after the arrow, or a keyword where the sink should be.
  const rule = "rule" in info ? info.rule : undefined;
  if (rule === "flowDecl" && previous?.tokenType === t.Arrow && (info.kind === "earlyExit" || (info.kind === "mismatch" && info.expected === "Identifier"))) {
    if (t.keywordTokens.includes(token.tokenType)) {
      return { code: "DTS1006", span, args: { expected: "a sink name", found }, help: `"${token.image}" is a keyword; choose another name` };
    }
    return { code: "DTS1012", span: tokenSpan(previous), args: {}, help: "name the sinks the events go to: -> out or -> eu, us" };
  }
  switch (info.kind) {
    case "mismatch": {
      if (info.expected === "EOF") {
        return info.rule === "expression" ? { code: "DTS1011", span, args: { found, reason: "the expression is complete before it" } } : declarationError(token, span, found, allTokens[allTokens.indexOf(token) + 1]);
      }
      if (info.rule === "flowDecl" && info.expected === "Arrow") {
        const step = word === undefined ? undefined : closestMatch(word, stepKeywords);
        if (step !== undefined) return { code: "DTS1010", span, args: { word: token.image }, help: `did you mean "| ${step}"?` };
        if (word !== undefined) return { code: "DTS1006", span, args: { expected: '"->"', found }, help: `a flow ends with -> and its sinks: did you mean "-> ${word}"?` };
        if (token.tokenType === t.Comma) return { code: "DTS1006", span, args: { expected: '"->"', found }, help: "the sinks are listed after the arrow: flow SOURCE -> a, b" };
        if (token.tokenType !== t.Equals) return { code: "DTS1006", span, args: { expected: '"->"', found }, help: "a flow ends with -> and its sinks: flow shop | filter ... -> out" };
      }
      const described: DescribedError = { code: "DTS1006", span, args: { expected: describeExpected(info.expected), found } };
      const expectedType = tokenTypesByName.get(info.expected);
      const keywordGuess = word !== undefined && expectedType !== undefined && t.keywordTokens.includes(expectedType) ? closestMatch(word, [expectedType.name.toLowerCase()]) : undefined;
      if (keywordGuess !== undefined) {
        described.help = `did you mean "${keywordGuess}"?`;
      } else if (info.expected === "Identifier" && t.keywordTokens.includes(token.tokenType)) {
        described.help = `"${token.image}" is a keyword; choose another name`;
      } else if (info.expected === "Equals" && token.tokenType === t.Colon) {
        described.help = 'write "=" after the name, as in source shop = postgres { ... }';
      } else if (info.expected === "RParen" && info.rule === "callArguments" && expressionStarts.has(token.tokenType)) {
        described.help = 'is a "," missing between the arguments?';
      } else if (info.expected === "RBracket" && info.rule === "indexSuffix" && expressionStarts.has(token.tokenType)) {
        described.help = 'an index holds one expression: row["name"]';
      } else if (info.expected === "Colon" && info.rule === "recordEntry") {
        described.help = 'a record entry is "name: value", "...record" or "-name"';
      } else if (info.expected === "Identifier" && info.rule === "flowDecl") {
        described.help = "a flow starts with the name of a source: flow shop | ... -> out";
      } else if (info.expected === "LCurly" && previous?.tokenType === t.Map) {
        described.help = "map takes a record: | map { ...row, total: row.amount * 2 }";
      } else if (info.expected === "LCurly") {
        described.help = "options follow the connector in braces, even when there are none: discard {}";
      } else if (info.expected === "StringLiteral" && previous?.tokenType === t.Validate) {
        described.help = 'write the schema file\'s path in quotes: validate "order.schema.json"';
      } else if (info.expected === "RParen" && info.rule === "parenthesized" && token.tokenType === t.Comma) {
        described.help = "a list is written in brackets: [1, 2]";
      } else if (info.expected === "Identifier" && (info.rule === "sourceDecl" || info.rule === "sinkDecl" || info.rule === "letDecl" || info.rule === "pipelineDecl")) {
        const keyword = info.rule.replace(/Decl$/, "");
        described.help = `a ${keyword} is named after the keyword: ${keyword} orders${keyword === "pipeline" ? "" : " = ..."}`;
      } else if (token.tokenType === t.Equals) {
        described.help = 'to compare, write "=="';
      }
      return described;
    }
    case "noViableAlt":
    case "earlyExit": {
      if (info.rule === "declaration" || info.rule === "file") return declarationError(token, span, found, allTokens[allTokens.indexOf(token) + 1]);
      if (info.rule === "step" && word === undefined) {
        return { code: "DTS1006", span, args: { expected: "a step (filter, map, route or validate)", found } };
      }
      if (info.rule === "step") {
        const guess = closestMatch(word!, stepKeywords);
        return { code: "DTS1010", span, args: { word: token.image }, ...(guess ? { help: `did you mean "${guess}"?` } : {}) };
      }
      if (info.rule === "recordEntry") {
        return { code: "DTS1006", span, args: { expected: 'a field ("name: value"), "...record" or "-name"', found } };
      }
      if (token.tokenType === t.Spread) return { code: "DTS1008", span, args: { found }, help: "a spread (...record) is an entry of a record: { ...row, id: 1 }" };
      if (token.tokenType === t.Equals) return { code: "DTS1008", span, args: { found }, help: 'to compare, write "=="' };
      if (previous?.tokenType === t.Colon) return { code: "DTS1008", span, args: { found }, help: 'a value is missing after ":"' };
      return { code: "DTS1008", span, args: { found } };
    }
    case "notAllInput":
      if (startRule === "expression") return { code: "DTS1011", span, args: { found, reason: "the expression is complete before it" } };
      return declarationError(token, span, found, allTokens[allTokens.indexOf(token) + 1]);
    default: {
      const unknown: never = info;
      throw new Error(`unknown parse error ${JSON.stringify(unknown)}`);
    }
  }
}

function declarationError(token: IToken, span: Span, found: string, next?: IToken): DescribedError {
  const word = token.tokenType === t.Identifier ? token.image : undefined;
  const guess = word === undefined ? undefined : closestMatch(word, declarationKeywords);
  if (guess !== undefined) return { code: "DTS1007", span, args: { found }, help: `did you mean "${guess}"?` };
  if (token.tokenType === t.Pipe || token.tokenType === t.Arrow) {
    return { code: "DTS1011", span, args: { found, reason: "a step or -> belongs to a flow, after its source (flow NAME | step ... -> SINK)" } };
  }
  if (declarationStarts.has(token.tokenType)) {
    const after = next === undefined ? "the end of the file" : describeFound(next);
    return { code: "DTS1006", span, args: { expected: `a name after "${token.image}"`, found: after }, help: `e.g. ${token.image} orders` };
  }
  return { code: "DTS1007", span, args: { found } };
}
