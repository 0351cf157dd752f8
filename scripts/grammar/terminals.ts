/**
 * How the grammar files name a token. A token whose pattern is a fixed string (`flow`, `->`,
 * `{`) is written as that string, as it appears in a .dts file; the others — names, numbers,
 * strings, and the `Word` category — are token classes, written by name and described once
 * here. The EBNF, the railroad diagrams and the TextMate grammar all read this file, so a new
 * token class without a description stops `npm run gen` instead of printing a blank.
 */
import { Lexer, type TokenType } from "../../src/syntax/chevrotain.js";
import { allTokens, Word } from "../../src/syntax/tokens.js";

/** The text a fixed-pattern token matches, or undefined for a token class. */
export function literalText(type: TokenType): string | undefined {
  const pattern = type.PATTERN;
  if (!(pattern instanceof RegExp) || pattern === Lexer.NA) return undefined;
  if (!/^(?:\\[^A-Za-z0-9]|[^\\.*+?()[\]{}|^$])+$/.test(pattern.source)) return undefined;
  return pattern.source.replace(/\\(.)/g, "$1");
}

export interface TokenClass {
  /** What the diagrams show as the token's tooltip and the EBNF beside its definition. */
  readonly description: string;
  /** An EBNF right-hand side, for a token whose pattern is not a regular expression. */
  readonly ebnf?: string;
}

const tokenClasses: Readonly<Record<string, TokenClass>> = {
  Identifier: { description: "a name: a letter or _, then letters, digits or _; never a keyword" },
  NumberLiteral: { description: "an integer or a decimal, with an optional exponent" },
  StringLiteral: {
    description: 'one line in double quotes, with escapes \\" \\\\ \\/ \\$ \\n \\t \\r \\0 \\uXXXX \\u{X...} and ${expression}',
    ebnf: '\'"\' ( [^"\\#xA#xD] | "\\" [^#xA#xD] | "${" expression "}" )* \'"\'',
  },
  Word: { description: "a name, or a keyword where a name is expected: row.in, { map: 1 }" },
};

export function tokenClass(type: TokenType): TokenClass {
  const found = tokenClasses[type.name];
  if (found === undefined) {
    throw new Error(`token ${type.name} has no fixed text and no description in scripts/grammar/terminals.ts`);
  }
  return found;
}

/** A token as the grammar files write it: `"->"`, `"flow"`, or a class name such as `Identifier`. */
export function terminalText(type: TokenType): string {
  const literal = literalText(type);
  if (literal === undefined) {
    tokenClass(type);
    return type.name;
  }
  return literal.includes('"') ? `'${literal}'` : `"${literal}"`;
}

/** Tokens the lexer drops between any two tokens: white space and comments. */
export function skippedTokens(): TokenType[] {
  return allTokens.filter((type) => type.GROUP === Lexer.SKIPPED);
}

/** The keywords and names a `Word` stands for, in lexing order. */
export function wordMembers(): TokenType[] {
  return allTokens.filter((type) => type !== Word && (type.CATEGORIES ?? []).includes(Word));
}
