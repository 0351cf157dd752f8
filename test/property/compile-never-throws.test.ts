/**
 * No input, however malformed, may make the compiler throw: every text ends in a plan (and
 * no error) or in at least one catalogue diagnostic whose span lies within the text, and
 * rendering those diagnostics never throws. The inputs are the real pipelines and golden
 * cases, mutated the ways hands and editors break files (characters and tokens deleted,
 * duplicated, swapped, inserted; files cut short), plus plain random text.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { incompleteDeclarations } from "../../src/ast/build.js";
import { compileText, type CompileResult } from "../../src/compile.js";
import { renderDiagnostics } from "../../src/diagnostics/render.js";
import { printPlanDot, printPlanJson, printPlanMermaid } from "../../src/plan/print.js";

const root = path.resolve(import.meta.dirname, "../..");
/** `DTS_FUZZ_SCALE=20 npx vitest run test/property` for a longer hunt; 1 keeps the suite fast. */
const scale = Math.max(1, Number(process.env.DTS_FUZZ_SCALE ?? 1) || 1);
const runs = (n: number) => ({ numRuns: n * scale });

function dtsFiles(folder: string): string[] {
  return readdirSync(folder)
    .filter((name) => name.endsWith(".dts"))
    .sort()
    .map((name) => readFileSync(path.join(folder, name), "utf8"));
}

const seeds = [
  ...dtsFiles(path.join(root, "pipelines")),
  ...dtsFiles(path.join(root, "test/golden/plans")),
  ...dtsFiles(path.join(root, "test/golden/errors")),
];

const fragments = [
  "pipeline", "source", "sink", "let", "flow", "filter", "map", "route", "validate", "and", "or", "not", "in",
  "is", "null", "true", "false", "matches", "env", "row", "source.table", "op", "key", "->", "|", "...", "??",
  "==", "!=", "<=", ">=", "<", ">", "=", "+", "-", "*", "/", "%", "(", ")", "{", "}", "[", "]", ",", ":", ".",
  '"', "'", "${", "}", "\\", "\\u{", "#", "//", "\n", "\r\n", "\t", " ", "@", "$", "`", "0", "-1", "1e999",
  "9223372036854775808", "0.1", '"${row.id}"', '"${"', '"\\q"', "é", "😀", "\u0000", "\u2028", "\uFEFF", "\uD800",
  'env("X")', "lower(", "postgres", "redis", "datagen {}", "jsonl { path: \"-\" }", "{ url: row.x }",
];

/** Token-ish pieces of a text: runs of word characters, runs of spaces, single other characters. */
function pieces(text: string): string[] {
  return text.match(/[A-Za-z0-9_]+|\s+|"(?:[^"\\\n]|\\.)*"|[^\sA-Za-z0-9_]/g) ?? [];
}

type Mutation =
  | { kind: "deleteChar" | "duplicateChar"; at: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "swapChars"; at: number }
  | { kind: "deleteToken" | "duplicateToken"; at: number }
  | { kind: "swapTokens"; at: number; other: number }
  | { kind: "truncate"; at: number }
  | { kind: "deleteLine"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constantFrom("deleteChar" as const, "duplicateChar" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...fragments), fc.string({ maxLength: 4 }), fc.string({ unit: "binary", maxLength: 3 })) }),
  fc.record({ kind: fc.constant("swapChars" as const), at: fc.nat() }),
  fc.record({ kind: fc.constantFrom("deleteToken" as const, "duplicateToken" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("swapTokens" as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("deleteLine" as const), at: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % (text.length + 1);
  switch (m.kind) {
    case "deleteChar":
      return text.slice(0, at) + text.slice(at + 1);
    case "duplicateChar":
      return text.slice(0, at) + text.slice(at, at + 1) + text.slice(at);
    case "insert":
      return text.slice(0, at) + m.text + text.slice(at);
    case "swapChars":
      return text.slice(0, at) + text.slice(at + 1, at + 2) + text.slice(at, at + 1) + text.slice(at + 2);
    case "truncate":
      return text.slice(0, at);
    case "deleteLine": {
      const lines = text.split("\n");
      lines.splice(m.at % Math.max(1, lines.length), 1);
      return lines.join("\n");
    }
    case "deleteToken":
    case "duplicateToken":
    case "swapTokens": {
      const parts = pieces(text);
      if (parts.length === 0) return text;
      const i = m.at % parts.length;
      if (m.kind === "deleteToken") parts.splice(i, 1);
      else if (m.kind === "duplicateToken") parts.splice(i, 0, parts[i]!);
      else if (m.kind === "swapTokens") {
        const j = m.other % parts.length;
        [parts[i], parts[j]] = [parts[j]!, parts[i]!];
      }
      return parts.join("");
    }
  }
}

/** Compiles `text` and checks the outcome; returns the result for further checks. */
function compilesCleanly(text: string): CompileResult {
  let result: CompileResult;
  try {
    result = compileText(text, "fuzz.dts");
  } catch (error) {
    throw new Error(`compileText threw on ${JSON.stringify(text)}: ${(error as Error).stack ?? String(error)}`);
  }
  const errors = result.diagnostics.filter((d) => d.severity === "error");
  if (result.plan !== undefined) {
    expect(errors, `a plan came with errors for ${JSON.stringify(text)}`).toEqual([]);
    // A declaration may be left out of the AST only for a reported error, never silently.
    expect(incompleteDeclarations(result.ast), `a declaration vanished from ${JSON.stringify(text)}`).toEqual([]);
    printPlanJson(result.plan);
    printPlanDot(result.plan);
    printPlanMermaid(result.plan);
  } else {
    expect(errors.length, `neither a plan nor an error for ${JSON.stringify(text)}`).toBeGreaterThan(0);
  }
  for (const d of result.diagnostics) {
    expect(d.code, `bad code for ${JSON.stringify(text)}`).toMatch(/^DTS\d{4}$/);
    // DTS1016 is the checker's safety net for a declaration dropped with no error said: a bug.
    expect(d.code, `a declaration was dropped without its error in ${JSON.stringify(text)}`).not.toBe("DTS1016");
    expect(d.span.start, `span before the text: ${d.code} for ${JSON.stringify(text)}`).toBeGreaterThanOrEqual(0);
    expect(d.span.end, `span past the text: ${d.code} for ${JSON.stringify(text)}`).toBeLessThanOrEqual(text.length + 1);
    expect(d.span.start, `span past its end: ${d.code} for ${JSON.stringify(text)}`).toBeLessThanOrEqual(d.span.end);
    expect(d.message, `a raw parser message for ${JSON.stringify(text)}`).not.toMatch(/Expecting|token of type|\{"kind"/);
  }
  renderDiagnostics(result.diagnostics, { path: "fuzz.dts", text });
  return result;
}

describe("the compiler never throws", () => {
  it("has seeds", () => {
    expect(seeds.length).toBeGreaterThan(20);
  });

  it("on mutated pipelines", () => {
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), (seedIndex, mutations) => {
        compilesCleanly(mutations.reduce(mutate, seeds[seedIndex]!));
      }),
      runs(1600),
    );
  });

  it("on pipelines cut short anywhere", () => {
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.nat(), (seedIndex, at) => {
        const seed = seeds[seedIndex]!;
        compilesCleanly(seed.slice(0, at % (seed.length + 1)));
      }),
      runs(500),
    );
  });

  it("on sequences of language fragments", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...fragments), { maxLength: 40 }), (parts) => {
        compilesCleanly(parts.join(" "));
        compilesCleanly(parts.join(""));
      }),
      runs(500),
    );
  });

  it("on random text and bytes", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: "grapheme", maxLength: 100 })), (text) => {
        compilesCleanly(text);
      }),
      runs(400),
    );
  });

  it("on deeply nested and very long expressions", () => {
    const head = 'source shop = datagen { workload: "shop" }\nsink out = jsonl { path: "-" }\nflow shop | map { a: ';
    const wrappers: [string, string][] = [["(", ")"], ["[", "]"], ["{ b: ", " }"], ["not ", ""], ["-", ""], ['"${', '}"'], ["lower(", ")"]];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...wrappers), { minLength: 1, maxLength: 3000 }), fc.boolean(), fc.nat(3000), (layers, closed, terms) => {
        const open = layers.map(([o]) => o).join("");
        const close = closed ? [...layers].reverse().map(([, c]) => c).join("") : "";
        compilesCleanly(`${head}${open}row.x${close}${" + 1".repeat(terms)} } -> out\n`);
      }),
      runs(40),
    );
  });

  it("on random bytes decoded as UTF-8", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        compilesCleanly(Buffer.from(bytes).toString("utf8"));
      }),
      runs(200),
    );
  });
});
