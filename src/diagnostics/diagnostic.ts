/**
 * A diagnostic is what every stage reports instead of throwing: a code from the catalogue,
 * a span of offsets into the file, a message, optional notes and a suggested fix. Stages
 * collect them in a `DiagnosticBag` and keep going, so that one run reports every problem.
 */
import type { Span } from "./span.js";
import { catalogue, catalogueMessage, type DiagnosticCode } from "./catalogue.js";

export type Severity = "error" | "warning";

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly severity: Severity;
  readonly span: Span;
  readonly message: string;
  /** Extra lines printed after the caret, each as `= note: ...`. */
  readonly notes: readonly string[];
  /** A suggestion printed as `= help: ...`. */
  readonly help?: string;
}

export class DiagnosticBag {
  readonly items: Diagnostic[] = [];

  /**
   * Reports the catalogue entry `code` with its template filled from `args`.
   * A `{name}` in the template is replaced by `args.name`.
   */
  report(
    code: DiagnosticCode,
    span: Span,
    args: Record<string, string | number> = {},
    extra: { notes?: string[]; help?: string; severity?: Severity } = {},
  ): void {
    const entry = catalogue[code];
    const message = catalogueMessage(code, args);
    this.items.push({
      code,
      severity: extra.severity ?? entry.severity,
      span,
      message,
      notes: extra.notes ?? [],
      ...(extra.help !== undefined ? { help: extra.help } : {}),
    });
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }

  /** In file order, errors before warnings at the same place; each distinct report once. */
  sorted(): Diagnostic[] {
    const seen = new Set<string>();
    return [...this.items]
      .sort(
        (a, b) =>
          a.span.start - b.span.start ||
          (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) ||
          a.code.localeCompare(b.code),
      )
      .filter((d) => {
        const id = `${d.code}@${d.span.start}:${d.span.end}:${d.message}`;
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
  }
}
