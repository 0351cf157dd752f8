/**
 * How the plan quotes what the user wrote (a step's or an option's `text`): on one line, so
 * that a runtime message quoting it stays one line, and without comments, which would
 * otherwise swallow the rest of the line once the line breaks are gone. Where a line break
 * separated two record entries it becomes ", ", so that `-field` on its own line still
 * reads as a drop and not as a subtraction.
 */
import type { IToken } from "chevrotain";
import { lexTokens } from "../syntax/parse.js";
import * as t from "../syntax/tokens.js";

const openers = new Set([t.LCurly, t.LBracket, t.LParen]);
const closers = new Set([t.RCurly, t.RBracket, t.RParen]);

export function quoteSource(source: string): string {
  const tokens = lexTokens(source);
  if (tokens.length === 0) return source.trim();
  const stack: IToken[] = [];
  let out = "";
  tokens.forEach((token, index) => {
    const previous = tokens[index - 1];
    if (previous !== undefined) {
      const gap = source.slice((previous.endOffset ?? previous.startOffset) + 1, token.startOffset);
      if (/^[ \t]*$/.test(gap)) out += gap;
      else {
        const inRecord = stack[stack.length - 1]?.tokenType === t.LCurly;
        const lineBreak = /[\n\r]/.test(gap);
        const separate = inRecord && lineBreak && previous.tokenType !== t.Comma && previous.tokenType !== t.LCurly && startsEntry(tokens, index);
        out += separate ? ", " : " ";
      }
    }
    if (openers.has(token.tokenType)) stack.push(token);
    else if (closers.has(token.tokenType)) stack.pop();
    out += token.image;
  });
  return out;
}

/** `-name`, `...x` or `name:` / `"name":` — what begins a record entry. */
function startsEntry(tokens: readonly IToken[], index: number): boolean {
  const token = tokens[index]!;
  if (token.tokenType === t.Minus || token.tokenType === t.Spread) return true;
  const next = tokens[index + 1];
  const named = token.tokenType === t.Identifier || t.keywordTokens.includes(token.tokenType) || token.tokenType === t.StringLiteral;
  return named && next?.tokenType === t.Colon;
}
