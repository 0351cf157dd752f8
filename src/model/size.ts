/**
 * Sizes as a pipeline file writes them: `"0"`, `"512kB"`, `"256MB"`, `"2GB"`, `"1TB"`, or a
 * number of bytes. Units are powers of 1024 (as `ls -h` and PostgreSQL's `pg_size_pretty`
 * count), a whole number before them. One parser for the checker and the runtime.
 */

const UNITS: Readonly<Record<string, number>> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export const SIZE_MEANING = 'a size such as "512MB", "2GB" or "0"';

export type SizeParse = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly problem: string };

export function parseSize(text: string): SizeParse {
  const m = /^([0-9]+)\s*([A-Za-z]*)$/.exec(text.trim());
  if (m === null) return { ok: false, problem: `not ${SIZE_MEANING}` };
  const unit = m[2] === "" ? "B" : m[2]!;
  const factor = UNITS[unit];
  if (factor === undefined) return { ok: false, problem: `unknown unit "${unit}"; the units are B, kB, MB, GB, TB` };
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) return { ok: false, problem: "too large" };
  return { ok: true, bytes };
}
