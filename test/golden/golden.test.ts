/**
 * The compiler's specification, as files: every `plans/*.dts` compiles to the plan beside
 * it, every `errors/*.dts` produces exactly the diagnostics beside it (what the user sees),
 * and every pipeline in pipelines/ has its plan pinned. `UPDATE_GOLDEN=1 npm test` rewrites
 * the expected files; a reviewer reads the diff. An expected file with no case fails.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { compileText } from "../../src/compile.js";
import { printPlanJson } from "../../src/plan/print.js";

const update = process.env.UPDATE_GOLDEN === "1";
const root = path.resolve(import.meta.dirname, "../..");

function expectGolden(file: string, actual: string): void {
  if (update) {
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`${path.relative(root, file)} is missing: run UPDATE_GOLDEN=1 npm test`);
  expect(actual, `${path.relative(root, file)} differs: run UPDATE_GOLDEN=1 npm test and review the diff`).toBe(readFileSync(file, "utf8"));
}

function list(folder: string, suffix: string): string[] {
  return readdirSync(folder).filter((name) => name.endsWith(suffix)).sort();
}

/** Compiles as `dts check` would from inside the folder, so printed paths are the bare file name. */
function compileIn(folder: string, name: string) {
  const text = readFileSync(path.join(folder, name), "utf8");
  const previous = process.cwd();
  process.chdir(folder);
  try {
    return compileText(text, name);
  } finally {
    process.chdir(previous);
  }
}

function orphans(folder: string, expectedSuffix: string, inputs: (name: string) => boolean): string[] {
  return list(folder, expectedSuffix).filter((name) => !inputs(name.slice(0, -expectedSuffix.length)));
}

describe("golden plans", () => {
  const folder = path.join(root, "test/golden/plans");
  for (const name of list(folder, ".dts")) {
    it(name, () => {
      const result = compileIn(folder, name);
      expect(result.rendered, "a plan case must compile without errors").not.toMatch(/: error /);
      expectGolden(path.join(folder, name.replace(/\.dts$/, ".plan.json")), printPlanJson(result.plan!));
    });
  }
  const pipelines = path.join(root, "pipelines");
  for (const name of list(pipelines, ".dts")) {
    it(`pipelines/${name}`, () => {
      const result = compileIn(pipelines, name);
      expect(result.diagnostics).toEqual([]);
      expectGolden(path.join(folder, `pipelines.${name.replace(/\.dts$/, ".plan.json")}`), printPlanJson(result.plan!));
    });
  }
  it("has no expected plan without its case", () => {
    const stale = orphans(folder, ".plan.json", (base) =>
      base.startsWith("pipelines.") ? existsSync(path.join(pipelines, `${base.slice(10)}.dts`)) : existsSync(path.join(folder, `${base}.dts`)),
    );
    expect(stale, "delete these or restore their .dts").toEqual([]);
  });
});

describe("golden errors", () => {
  const folder = path.join(root, "test/golden/errors");
  for (const name of list(folder, ".dts")) {
    it(name, () => {
      const result = compileIn(folder, name);
      expect(result.diagnostics.length, "an error case must produce a diagnostic").toBeGreaterThan(0);
      expectGolden(path.join(folder, name.replace(/\.dts$/, ".errors.txt")), `${result.rendered}\n`);
    });
  }
  it("has no expected output without its case", () => {
    expect(orphans(folder, ".errors.txt", (base) => existsSync(path.join(folder, `${base}.dts`))), "delete these or restore their .dts").toEqual([]);
  });
});
