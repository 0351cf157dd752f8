/**
 * Durations as a pipeline file writes them: `"30s"`, `"10m"`, `"1h30m"`, `"500ms"`, `"2d"`, or
 * `"forever"`. One parser for the checker (which reports a bad one with a DTS code) and the
 * runtime (which reads a value known only at start, from `env()`), so both accept the same
 * text. The form is Go's `time.ParseDuration` with whole numbers only, plus days, and units
 * in their natural order. Forever is `Infinity`, which every comparison and `Math.min` handle
 * as they should.
 */

export const FOREVER = "forever";

const UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;

type Unit = keyof typeof UNITS;

/**
 * The accepted text, for a JSON Schema `pattern` too: units from the largest to the smallest,
 * each at most once, so that `"1m1m"` is an error rather than two minutes.
 */
export const DURATION_PATTERN = "^(forever|(?=[0-9])([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$";

const durationRegex = new RegExp(DURATION_PATTERN);

/** What the text should look like, for messages and docs. */
export const DURATION_MEANING = 'a duration such as "30s", "10m", "1h" or "1h30m", or "forever"';

export type DurationParse = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly problem: string; readonly suggestion?: string };

/** Milliseconds (`Infinity` for "forever"), or why the text is not a duration. */
export function parseDuration(text: string): DurationParse {
  if (text === FOREVER) return { ok: true, ms: Infinity };
  const match = durationRegex.exec(text);
  if (match === null) {
    const suggestion = suggestDuration(text);
    return { ok: false, problem: `it is not ${DURATION_MEANING}`, ...(suggestion !== undefined ? { suggestion } : {}) };
  }
  const units: readonly Unit[] = ["d", "h", "m", "s", "ms"];
  let ms = 0;
  units.forEach((unit, index) => {
    const part = match[index + 2];
    if (part !== undefined) ms += Number(part.slice(0, -unit.length)) * UNITS[unit];
  });
  // Beyond 2^53 ms (285 000 years) the sum is no longer exact; nobody means a finite budget then.
  if (!Number.isSafeInteger(ms)) return { ok: false, problem: 'it is too long; write "forever" for no limit' };
  return { ok: true, ms };
}

const SPELLED: ReadonlyArray<readonly [RegExp, Unit]> = [
  [/^(ms|msecs?|millis|milliseconds?)$/, "ms"],
  [/^(s|secs?|seconds?)$/, "s"],
  [/^(m|mins?|minutes?)$/, "m"],
  [/^(h|hrs?|hours?)$/, "h"],
  [/^(d|days?)$/, "d"],
];

/** `"10 minutes"` → `"10m"`, `"30"` → `"30s"`, `"infinite"` → `"forever"`; undefined when no guess fits. */
function suggestDuration(text: string): string | undefined {
  const lower = text.trim().toLowerCase();
  if (/^(infinite|infinity|unlimited|always|never|-1)$/.test(lower)) return FOREVER;
  if (/^[0-9]+$/.test(lower)) return `${lower}s`;
  const match = /^([0-9]+)\s*([a-z]+)$/.exec(lower);
  if (match === null) return undefined;
  const unit = SPELLED.find(([words]) => words.test(match[2]!))?.[1];
  return unit === undefined ? undefined : `${match[1]}${unit}`;
}

/**
 * A duration for people, to a tenth of a second below a minute: `"850ms"`, `"5s"`, `"12.3s"`,
 * `"4m05s"`, `"2h00m"`, `"forever"`.
 */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return FOREVER;
  const value = Math.max(0, ms);
  if (value < 1000) return `${Math.round(value)}ms`;
  if (value < 60_000) return value % 1000 === 0 ? `${value / 1000}s` : `${(Math.floor(value / 100) / 10).toFixed(1)}s`;
  const seconds = Math.floor(value / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
