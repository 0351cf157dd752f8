/**
 * String literals are scanned by hand rather than by a regular expression, because an
 * interpolation `${ ... }` may itself hold strings and braces (`"${coalesce(row.name, "}")}"`).
 * The lexer uses `scanString` only to find where a string ends; the AST builder uses the
 * pieces it returns to decode escapes and to parse each interpolation as an expression.
 *
 * A string never spans lines: an unterminated one ends at the end of its line, so the rest
 * of the file still lexes and every later error is still reported.
 */

export type StringPiece =
  | { readonly kind: "text"; readonly value: string; readonly start: number; readonly end: number }
  /** The offsets of the expression's text, between `${` and `}`. */
  | { readonly kind: "interpolation"; readonly start: number; readonly end: number };

export type StringProblem =
  | { readonly kind: "unterminated"; readonly start: number; readonly end: number }
  | { readonly kind: "unterminatedInterpolation"; readonly start: number; readonly end: number }
  | { readonly kind: "badEscape"; readonly char: string; readonly start: number; readonly end: number }
  | { readonly kind: "emptyInterpolation"; readonly start: number; readonly end: number };

export interface ScannedString {
  /** Offset one past the closing quote, or the end of the line when there is none. */
  readonly end: number;
  readonly pieces: readonly StringPiece[];
  readonly problems: readonly StringProblem[];
}

const simpleEscapes: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  $: "$",
  n: "\n",
  t: "\t",
  r: "\r",
  "0": "\0",
};

/** Scans the string whose opening quote is at `start`. */
export function scanString(text: string, start: number): ScannedString {
  const pieces: StringPiece[] = [];
  const problems: StringProblem[] = [];
  let value = "";
  let textStart = start + 1;
  let i = start + 1;
  const flushText = (until: number) => {
    if (value.length > 0 || pieces.length === 0) pieces.push({ kind: "text", value, start: textStart, end: until });
    value = "";
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n" || c === "\r") break;
    if (c === '"') {
      flushText(i);
      return { end: i + 1, pieces: dropEmpty(pieces), problems };
    }
    if (c === "\\") {
      const next = text[i + 1];
      if (next === undefined || next === "\n" || next === "\r") {
        i++;
        continue;
      }
      if (next in simpleEscapes) {
        value += simpleEscapes[next];
        i += 2;
        continue;
      }
      if (next === "u") {
        const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(text.slice(i + 2, i + 10));
        const plain = /^[0-9a-fA-F]{4}/.exec(text.slice(i + 2, i + 6));
        const hex = braced ? braced[1]! : plain ? plain[0] : undefined;
        const codePoint = hex === undefined ? NaN : parseInt(hex, 16);
        if (!Number.isNaN(codePoint) && codePoint <= 0x10ffff) {
          value += String.fromCodePoint(codePoint);
          i += 2 + (braced ? braced[0].length : 4);
          continue;
        }
      }
      problems.push({ kind: "badEscape", char: next, start: i, end: i + 2 });
      i += 2;
      continue;
    }
    if (c === "$" && text[i + 1] === "{") {
      flushText(i);
      const exprStart = i + 2;
      const close = findInterpolationEnd(text, exprStart);
      if (close === undefined) {
        const lineEnd = endOfLine(text, i);
        problems.push({ kind: "unterminatedInterpolation", start: i, end: lineEnd });
        return { end: lineEnd, pieces: dropEmpty(pieces), problems };
      }
      if (text.slice(exprStart, close).trim() === "") {
        problems.push({ kind: "emptyInterpolation", start: i, end: close + 1 });
      } else {
        pieces.push({ kind: "interpolation", start: exprStart, end: close });
      }
      i = close + 1;
      textStart = i;
      continue;
    }
    value += c;
    i++;
  }
  flushText(i);
  problems.push({ kind: "unterminated", start, end: i });
  return { end: i, pieces: dropEmpty(pieces), problems };
}

function dropEmpty(pieces: StringPiece[]): StringPiece[] {
  const kept = pieces.filter((p) => p.kind === "interpolation" || p.value !== "");
  return kept.length === 0 ? pieces.slice(0, 1) : kept;
}

/** The offset of the `}` closing an interpolation whose expression starts at `from`. */
function findInterpolationEnd(text: string, from: number): number | undefined {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n" || c === "\r") return undefined;
    if (c === '"') {
      const nested = scanString(text, i);
      if (nested.problems.some((p) => p.kind === "unterminated" || p.kind === "unterminatedInterpolation")) {
        return undefined;
      }
      i = nested.end;
      continue;
    }
    if (c === "{") depth++;
    else if (c === "}") {
      if (depth === 0) return i;
      depth--;
    }
    i++;
  }
  return undefined;
}

function endOfLine(text: string, from: number): number {
  const newline = text.slice(from).search(/\r?\n/);
  return newline === -1 ? text.length : from + newline;
}
