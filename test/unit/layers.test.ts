/**
 * The runtime runs a plan as it is stored: it never sees syntax. So neither `src/runtime` nor
 * `src/expr` (which the runtime compiles plan expressions with) may import `src/ast`, not
 * even for a type and not through another module; spans and AST nodes stay on the compile
 * side. This scans the import and export-from statements (static and dynamic), resolves each
 * relative specifier and follows it, so a path through `src/plan/expr.ts` is caught too.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

/** Relative module specifiers a TypeScript file imports or re-exports, resolved to paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms),
    ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1]!);
  return specifiers.filter((s) => s.startsWith(".")).map((s) => relative(root, resolve(dirname(file), s)).split("\\").join("/"));
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(root, folder, name));
}

/** For every file of `folders` that reaches `forbidden` through its imports, the chain that does. */
function violations(folders: readonly string[], forbidden: string): string[] {
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
      for (const target of importsOf(source)) {
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

  it("the scan sees imports of src/ast where they are allowed", () => {
    // Guards the test above against a scanner that finds nothing: the checker imports the AST.
    expect(violations(["src/check"], "src/ast")).toContain("src/check/expressions.ts → src/ast/nodes.js");
    // …and one that goes through other modules (the CLI reaches the AST through the compiler).
    expect(violations(["src/cli"], "src/ast").some((chain) => chain.split(" → ").length > 2)).toBe(true);
  });
});
