/**
 * Prints diagnostics the way the user sees them:
 *
 *   orders.dts:12:9: error DTS2004: unknown column "amout" in row
 *      12 |   | map { total: row.amout }
 *         |                     ^^^^^
 *      = help: did you mean "amount"?
 *
 * Offsets become line and column only here (columns count characters from 1).
 */
import type { Diagnostic } from "./diagnostic.js";

export interface SourceText {
  readonly path: string;
  readonly text: string;
}

export class LineMap {
  private readonly lineStarts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; column: number } {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - this.lineStarts[low]! + 1 };
  }

  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, "");
  }
}

export function renderDiagnostic(diagnostic: Diagnostic, source: SourceText, lines = new LineMap(source.text)): string {
  const start = Math.min(diagnostic.span.start, source.text.length);
  const { line, column } = lines.position(start);
  const out = [`${source.path}:${line}:${column}: ${diagnostic.severity} ${diagnostic.code}: ${diagnostic.message}`];
  const text = lines.lineText(line).replace(/\t/g, " ");
  // The line number is right-aligned in `gutter` columns; the bars line up one space after it.
  const gutter = String(line).length + 1;
  const blank = " ".repeat(gutter + 1);
  const lineEndColumn = text.length + 1;
  const endOffset = Math.max(diagnostic.span.end, start + 1);
  const end = lines.position(endOffset);
  // A span that runs onto later lines is underlined to the end of its first line.
  const lastColumn = end.line === line ? end.column : Math.max(lineEndColumn, column + 1);
  const width = Math.max(1, lastColumn - column);
  out.push(`${blank}|`);
  out.push(`${String(line).padStart(gutter)} | ${text}`);
  out.push(`${blank}| ${" ".repeat(column - 1)}${"^".repeat(width)}`);
  for (const note of diagnostic.notes) out.push(`${blank}= note: ${note}`);
  if (diagnostic.help !== undefined) out.push(`${blank}= help: ${diagnostic.help}`);
  return out.join("\n");
}

export function renderDiagnostics(diagnostics: readonly Diagnostic[], source: SourceText): string {
  const lines = new LineMap(source.text);
  return diagnostics.map((d) => renderDiagnostic(d, source, lines)).join("\n\n");
}

/** `2 errors, 1 warning` */
export function summarize(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  const warnings = diagnostics.length - errors;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(errors, "error")}, ${plural(warnings, "warning")}`;
}
