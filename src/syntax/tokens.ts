/**
 * The tokens of the .dts language. Keywords are listed before `Identifier` and carry
 * `longer_alt: Identifier`, so `sourcetable` is a name, not `source` + `table`.
 * White space (newlines included) and both comment styles are skipped; the one place a
 * newline matters — a `-` that starts a new record entry — is decided in the parser by
 * comparing token lines.
 */
import { createToken, Lexer, type TokenType } from "./chevrotain.js";
import { scanString } from "./strings.js";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\uFEFF]+/, group: Lexer.SKIPPED });
export const HashComment = createToken({ name: "HashComment", pattern: /#[^\n\r]*/, group: Lexer.SKIPPED });
export const SlashComment = createToken({ name: "SlashComment", pattern: /\/\/[^\n\r]*/, group: Lexer.SKIPPED });

export const StringLiteral = createToken({
  name: "StringLiteral",
  pattern: {
    exec: (text: string, offset: number) => {
      if (text[offset] !== '"') return null;
      const { end } = scanString(text, offset);
      const match = [text.slice(offset, end)] as unknown as RegExpExecArray;
      return match;
    },
  },
  line_breaks: false,
  start_chars_hint: ['"'],
});

export const NumberLiteral = createToken({
  name: "NumberLiteral",
  pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/,
});

/** Any word-shaped token: a name, or a keyword used where a name is expected (`row.in`, `{ map: 1 }`). */
export const Word = createToken({ name: "Word", pattern: Lexer.NA });
export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Word] });

function keyword(word: string): TokenType {
  const name = word[0]!.toUpperCase() + word.slice(1);
  return createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, categories: [Word] });
}

export const Pipeline = keyword("pipeline");
export const Source = keyword("source");
export const Sink = keyword("sink");
export const Let = keyword("let");
export const Flow = keyword("flow");
export const Filter = keyword("filter");
export const Map = keyword("map");
export const Route = keyword("route");
export const Validate = keyword("validate");
export const And = keyword("and");
export const Or = keyword("or");
export const Not = keyword("not");
export const In = keyword("in");
export const Is = keyword("is");
export const Null = keyword("null");
export const True = keyword("true");
export const False = keyword("false");
export const Matches = keyword("matches");

export const Arrow = createToken({ name: "Arrow", pattern: /->/ });
export const Spread = createToken({ name: "Spread", pattern: /\.\.\./ });
export const Coalesce = createToken({ name: "Coalesce", pattern: /\?\?/ });
export const EqualEqual = createToken({ name: "EqualEqual", pattern: /==/ });
export const NotEqual = createToken({ name: "NotEqual", pattern: /!=/ });
export const LessEqual = createToken({ name: "LessEqual", pattern: /<=/ });
export const GreaterEqual = createToken({ name: "GreaterEqual", pattern: />=/ });
export const Less = createToken({ name: "Less", pattern: /</ });
export const Greater = createToken({ name: "Greater", pattern: />/ });
export const Equals = createToken({ name: "Equals", pattern: /=/ });
export const Plus = createToken({ name: "Plus", pattern: /\+/ });
export const Minus = createToken({ name: "Minus", pattern: /-/ });
export const Star = createToken({ name: "Star", pattern: /\*/ });
export const Slash = createToken({ name: "Slash", pattern: /\// });
export const Percent = createToken({ name: "Percent", pattern: /%/ });
export const Pipe = createToken({ name: "Pipe", pattern: /\|/ });
export const LParen = createToken({ name: "LParen", pattern: /\(/ });
export const RParen = createToken({ name: "RParen", pattern: /\)/ });
export const LCurly = createToken({ name: "LCurly", pattern: /\{/ });
export const RCurly = createToken({ name: "RCurly", pattern: /\}/ });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/ });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/ });
export const Comma = createToken({ name: "Comma", pattern: /,/ });
export const Colon = createToken({ name: "Colon", pattern: /:/ });
export const Dot = createToken({ name: "Dot", pattern: /\./ });

export const keywordTokens: readonly TokenType[] = [
  Pipeline, Source, Sink, Let, Flow, Filter, Map, Route, Validate,
  And, Or, Not, In, Is, Null, True, False, Matches,
];

/** Lexing order matters: comments before `/`, `->` before `-`, `...` before `.`, keywords before names. */
export const allTokens: readonly TokenType[] = [
  WhiteSpace, HashComment, SlashComment, StringLiteral, NumberLiteral,
  Arrow, Spread, Coalesce, EqualEqual, NotEqual, LessEqual, GreaterEqual, Less, Greater, Equals,
  Plus, Minus, Star, Slash, Percent, Pipe, LParen, RParen, LCurly, RCurly, LBracket, RBracket,
  Comma, Colon, Dot,
  ...keywordTokens,
  Identifier,
  Word,
];

/** How a token is named in messages: keywords and punctuation as written, the rest by kind. */
export function describeTokenType(type: TokenType): string {
  if (keywordTokens.includes(type)) return `keyword "${type.name.toLowerCase()}"`;
  switch (type) {
    case Identifier:
    case Word:
      return "a name";
    case StringLiteral:
      return "a string";
    case NumberLiteral:
      return "a number";
    default: {
      const source = (type.PATTERN as RegExp).source.replace(/\\/g, "");
      return `"${source}"`;
    }
  }
}
