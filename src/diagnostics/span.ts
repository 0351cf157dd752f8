/**
 * Where something is in a file: character offsets, turned into line and column only when a
 * message is printed. It lives with the diagnostics, which every stage reports, so that a
 * stage that only reports (a connector's preflight finding) needs nothing of the syntax tree.
 */
export interface Span {
  /** Offset of the first character. */
  readonly start: number;
  /** Offset one past the last character. */
  readonly end: number;
}
