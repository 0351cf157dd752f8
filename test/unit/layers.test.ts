/**
 * The import rules of docs/architecture.md, enforced. The runtime runs a plan as it is stored:
 * it never sees syntax. So neither `src/runtime` nor `src/expr` (which the runtime compiles
 * plan expressions with) may import `src/ast`, not even for a type and not through another
 * module; spans and AST nodes stay on the compile side. The other rules: `src/model` (and
 * `src/diagnostics`) import nothing above them; the CLI and the runtime reach connectors only
 * through the connector layer's own modules (registry, capabilities, spec, options, compare),
 * never a connector's folder; and the compile side never loads the runtime.
 *
 * This scans the import and export-from statements (static and dynamic), resolves each
 * relative specifier and follows it, so a path through `src/plan/expr.ts` is caught too.
 * The compile-side rule follows only what is loaded when the module is: `import type` is
 * erased, and a dynamic `import()` is the registry's lazy loading of an implementation.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

/** Which imports to follow: all of them, or only what is loaded with the module. */
type Follow = "all" | "loaded";

/** Relative module specifiers a TypeScript file imports or re-exports, resolved to paths from the root. */
function importsOf(file: string, follow: Follow = "all"): string[] {
  const text = readFileSync(file, "utf8");
  const statements = [...text.matchAll(/^\s*((?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["'])/gms)];
  const specifiers = [
    ...statements.filter((match) => follow === "all" || !/^\s*(?:import|export)\s+type\b/.test(match[1]!)).map((match) => match[2]!),
    ...[...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm)].map((match) => match[1]!),
    ...(follow === "all" ? [...text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)].map((match) => match[1]!) : []),
  ];
  return specifiers.filter((s) => s.startsWith(".")).map((s) => relative(root, resolve(dirname(file), s)).split("\\").join("/"));
}

/** The TypeScript files of a folder (recursively), or the one file named. */
function sourceFiles(folder: string): string[] {
  if (folder.endsWith(".ts")) return [join(root, folder)];
  return readdirSync(join(root, folder), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(root, folder, name));
}

/** Each direct import of a file in `folders` that `allowed` refuses, as `file → import`. */
function directViolations(folders: readonly string[], allowed: (target: string) => boolean): string[] {
  const found: string[] = [];
  for (const file of folders.flatMap(sourceFiles)) {
    const from = relative(root, file).split("\\").join("/");
    for (const target of importsOf(file)) if (!allowed(target)) found.push(`${from} → ${target}`);
  }
  return found;
}

/** `src/connectors/NAME/...`: inside one connector's folder. */
const inConnectorFolder = (target: string): boolean => /^src\/connectors\/[^/]+\//.test(target);

/** For every file of `folders` that reaches `forbidden` through its imports, the chain that does. */
function violations(folders: readonly string[], forbidden: string, follow: Follow = "all"): string[] {
  const found: string[] = [];
  for (const file of folders.flatMap(sourceFiles)) {
    const start = relative(root, file);
    const via = new Map<string, string>([[start, ""]]);
    const queue = [start];
    while (queue.length > 0) {
      const current = queue.shift()!;
      const source = join(root, current.replace(/\.js$/, ".ts"));
      const reached = current === forbidden || current.startsWith(`${forbidden}/`);
      if (reached) {
        const chain = [current];
        for (let at = via.get(current)!; at !== ""; at = via.get(at)!) chain.unshift(at);
        found.push(chain.join(" → "));
        break;
      }
      if (!existsSync(source)) continue;
      for (const target of importsOf(source, follow)) {
        if (!via.has(target)) {
          via.set(target, current);
          queue.push(target);
        }
      }
    }
  }
  return found;
}

describe("layers", () => {
  it("src/runtime and src/expr do not import src/ast", () => {
    expect(violations(["src/runtime", "src/expr"], "src/ast")).toEqual([]);
  });

  it("src/model imports only src/model and the error hierarchy; src/diagnostics imports nothing above it", () => {
    expect(directViolations(["src/model"], (target) => target.startsWith("src/model/") || target === "src/diagnostics/errors.js")).toEqual([]);
    expect(directViolations(["src/diagnostics"], (target) => target.startsWith("src/diagnostics/"))).toEqual([]);
  });

  it("src/expr imports only the model, the plan's types and the error hierarchy", () => {
    const allowed = (target: string): boolean =>
      target.startsWith("src/expr/") || target.startsWith("src/model/") || target === "src/plan/types.js" || target === "src/diagnostics/errors.js";
    expect(directViolations(["src/expr"], allowed)).toEqual([]);
  });

  it("src/cli and src/runtime import no connector's folder, only the connector layer's own modules", () => {
    expect(directViolations(["src/cli", "src/runtime"], (target) => !inConnectorFolder(target))).toEqual([]);
  });

  it("the runtime reads the plan's types, never how a plan is compiled", () => {
    expect(directViolations(["src/runtime"], (target) => !target.startsWith("src/plan/") || target === "src/plan/types.js")).toEqual([]);
  });

  it("the compile side never loads the runtime", () => {
    const compileSide = ["src/syntax", "src/ast", "src/check", "src/plan", "src/compile.ts"];
    expect(violations(compileSide, "src/runtime", "loaded")).toEqual([]);
  });

  it("the scan sees imports of src/ast where they are allowed", () => {
    // Guards the test above against a scanner that finds nothing: the checker imports the AST.
    expect(violations(["src/check"], "src/ast")).toContain("src/check/expressions.ts → src/ast/nodes.js");
    // …and one that goes through other modules (the CLI reaches the AST through the compiler).
    expect(violations(["src/cli"], "src/ast").some((chain) => chain.split(" → ").length > 2)).toBe(true);
  });

  it("the rules above would see a crossing", () => {
    // Guards the new rules the same way: each finds the imports it is built to find where
    // they exist. The connector layer's registry imports every connector's folder…
    expect(directViolations(["src/connectors/registry.ts"], (target) => !inConnectorFolder(target))).toContain("src/connectors/registry.ts → src/connectors/postgres/index.js");
    // …a connector imports the runtime's contracts, statically…
    expect(violations(["src/connectors/jsonl/sink.ts"], "src/runtime", "loaded")[0]).toMatch(/^src\/connectors\/jsonl\/sink\.ts → src\/runtime\//);
    // …the registry reaches the runtime only through lazy imports and types, which "loaded" does not follow…
    expect(violations(["src/connectors/registry.ts"], "src/runtime", "all")).not.toEqual([]);
    expect(violations(["src/connectors/registry.ts"], "src/runtime", "loaded")).toEqual([]);
    // …and the model rule sees an import outside the model.
    expect(directViolations(["src/model"], (target) => target.startsWith("src/model/"))).toContain("src/model/json.ts → src/diagnostics/errors.js");
  });
});
