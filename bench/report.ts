/**
 * What every benchmark suite reports, in one shape: a row per measured figure, with the
 * reference it is compared with measured in the same run (never a constant), the ratio and the
 * project's target for it. `npm run bench` writes the rows of all suites it ran to
 * bench-results.json at the repository root; the suites also print them as they go.
 *
 * `ratio` is always "higher is better": a rate divided by the reference's rate, or a
 * reference time or latency divided by dts's.
 */
export interface BenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same figure for the tool dts is compared with, measured in this run; null when none. */
  readonly reference: number | null;
  readonly ratio: number | null;
  /** The ratio to reach (or, for a row without a reference, the bound on `value`). */
  readonly target: number | null;
  readonly pass: boolean | null;
}

/** What a suite is given: its command-line arguments, the quick flag, and where rows go. */
export interface BenchContext {
  readonly quick: boolean;
  record(row: BenchRow): void;
}

/** A row comparing dts with a reference, higher-is-better `ratio` ≥ `target`. */
export function compared(name: string, value: number, unit: string, reference: number, ratio: number, target: number): BenchRow {
  return { name, value, unit, reference, ratio: round(ratio), target, pass: ratio >= target };
}

/** A row with a bound rather than a reference: `value` at most `max` (a latency, a memory peak). */
export function bounded(name: string, value: number, unit: string, max: number, reference: number | null = null): BenchRow {
  return { name, value, unit, reference, ratio: reference === null || value === 0 ? null : round(reference / value), target: max, pass: value <= max };
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
