/**
 * The registry and the connectors' declarations (src/connectors/*\/index.ts): every connector
 * folder is declared and listed once; a role is "built" exactly when its implementation file
 * exists; every capability a connector declares loads; and the compile side (`dts check`,
 * `dts plan`, the library's compile()) reaches no database driver through its static imports —
 * implementations and tool capabilities are dynamic imports, loaded on use.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { connectors, isBuilt } from "../../src/connectors/registry.js";

const root = resolve(import.meta.dirname, "../..");
const folders = readdirSync(join(root, "src/connectors")).filter((name) => statSync(join(root, "src/connectors", name)).isDirectory());

describe("the registry", () => {
  it("lists every connector folder once, each declared in its index.ts", () => {
    expect(connectors.map((connector) => connector.name).sort()).toEqual(folders.sort());
    for (const name of folders) expect(existsSync(join(root, "src/connectors", name, "index.ts")), name).toBe(true);
  });

  it("says a role is built exactly when its implementation exists", () => {
    for (const connector of connectors) {
      for (const role of ["source", "sink"] as const) {
        if (connector[role] === undefined) continue;
        expect(isBuilt(role, connector.name), `${connector.name} ${role}`).toBe(existsSync(join(root, "src/connectors", connector.name, `${role}.ts`)));
      }
    }
  });

  it("loads every capability a connector declares", async () => {
    for (const connector of connectors) {
      for (const role of [connector.source, connector.sink]) {
        if (role === undefined) continue;
        for (const [name, load] of Object.entries(role)) {
          if (name === "spec") continue;
          expect(typeof (await (load as () => Promise<unknown>)()), `${connector.name} ${role.spec.role} ${name}`).toBe("function");
        }
      }
    }
  });
});

/** The relative modules a TypeScript file imports statically (type-only imports and dynamic import() left out). */
function staticImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\sfrom\s+"([^"]+)";/gms)) found.push(match[1]!);
  for (const match of text.matchAll(/^import\s+"([^"]+)";/gm)) found.push(match[1]!);
  return found;
}

function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const specifier of staticImports(file)) {
      if (specifier.startsWith(".")) visit(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
      else packages.add(specifier);
    }
  };
  visit(entry);
  return { files: seen, packages };
}

describe("the compile side", () => {
  it.each(["src/cli/dts.ts", "src/compile.ts", "src/connectors/registry.ts"])("%s imports no database driver statically", (entry) => {
    const { files, packages } = reachable(join(root, entry));
    for (const driver of ["pg", "pg-copy-streams", "pg-logical-replication", "@duckdb/node-api", "@vlasky/zongji"]) expect([...packages], entry).not.toContain(driver);
    // The walk does follow the imports: every connector's spec is reached, and the parser.
    expect(files).toContain(join(root, "src/connectors/postgres/spec.ts"));
    if (entry !== "src/connectors/registry.ts") expect(files).toContain(join(root, "src/syntax/parser.ts"));
  });
});
