/**
 * Replay tests: a recorded change stream through example pipelines, each sink's output
 * compared with a golden file.
 *
 *   test/golden/replay/streams/shop.jsonl       the stream, recorded by record-shop.dts
 *   test/golden/replay/cases/NAME.dts           a pipeline reading "shop.jsonl"
 *   test/golden/replay/cases/NAME.SINK.jsonl    what its jsonl sink SINK wrote
 *
 * Each case runs in a fresh folder holding the pipeline, the stream and the schemas, so the
 * paths in it are the simple ones a user would write. The stream itself is checked too: the
 * recording pipeline is run again and must give the same bytes (datagen is deterministic).
 * `UPDATE_GOLDEN=1` rewrites the golden files (and the stream) instead; a golden file left
 * without its case or sink fails the run.
 *
 * `Date.now` is pinned, so the one wall-clock value in any output (the Debezium envelope's
 * processing time, `ts_ms`) is fixed.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { compileFile } from "../../src/compile.js";
import { createSource as datagenSource } from "../../src/connectors/datagen/source.js";
import { createSink as discardSink } from "../../src/connectors/discard/sink.js";
import { createSink as jsonlSink } from "../../src/connectors/jsonl/sink.js";
import { createSource as jsonlSource } from "../../src/connectors/jsonl/source.js";
import type { Plan } from "../../src/plan/types.js";
import { runPipeline } from "../../src/runtime/run.js";

const root = resolve("test/golden/replay");
const casesDir = join(root, "cases");
const streamsDir = join(root, "streams");
const update = process.env["UPDATE_GOLDEN"] === "1";
const PINNED_NOW = Date.UTC(2024, 0, 1, 12, 0, 0);

const cases = readdirSync(casesDir)
  .filter((file) => file.endsWith(".dts"))
  .map((file) => file.slice(0, -".dts".length))
  .sort();

/** The jsonl sinks of a plan that write a file, by sink name: their golden files. */
function fileSinks(plan: Plan): Map<string, string> {
  const sinks = new Map<string, string>();
  for (const sink of plan.sinks) {
    const path = sink.options["path"];
    if (sink.connector === "jsonl" && path !== undefined && "constant" in path && path.constant !== "-") sinks.set(sink.name, String(path.constant));
  }
  return sinks;
}

async function runIn(folder: string, pipeline: string): Promise<Plan> {
  const compiled = await compileFile(join(folder, pipeline));
  if (compiled.plan === undefined) throw new Error(`${pipeline} does not compile:\n${compiled.rendered}`);
  await runPipeline(compiled.plan, { baseDir: folder, connectors });
  return compiled.plan;
}

function freshFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "dts-replay-"));
  folders.push(folder);
  return folder;
}

const folders: string[] = [];

// The implementations are given directly: vitest cannot follow the registry's computed
// import() (see the report on registry.ts); the CLI tests in test/e2e go through the registry.
const connectors = {
  sources: { datagen: datagenSource, jsonl: jsonlSource },
  sinks: { jsonl: jsonlSink, discard: discardSink },
};

describe("replay", () => {
  beforeAll(() => {
    vi.spyOn(Date, "now").mockReturnValue(PINNED_NOW);
  });
  afterAll(() => {
    vi.restoreAllMocks();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  it("the recorded stream is what datagen makes", async () => {
    const folder = freshFolder();
    copyFileSync(join(streamsDir, "record-shop.dts"), join(folder, "record-shop.dts"));
    await runIn(folder, "record-shop.dts");
    const made = readFileSync(join(folder, "shop.jsonl"), "utf8");
    const golden = join(streamsDir, "shop.jsonl");
    if (update) writeFileSync(golden, made);
    expect(made, "datagen no longer makes the recorded stream (UPDATE_GOLDEN=1 records it again)").toBe(readFileSync(golden, "utf8"));
  });

  it.each(cases)("%s", async (name) => {
    const folder = freshFolder();
    copyFileSync(join(casesDir, `${name}.dts`), join(folder, `${name}.dts`));
    copyFileSync(join(streamsDir, "shop.jsonl"), join(folder, "shop.jsonl"));
    for (const file of readdirSync(casesDir).filter((f) => f.endsWith(".json"))) copyFileSync(join(casesDir, file), join(folder, file));
    const plan = await runIn(folder, `${name}.dts`);
    const sinks = fileSinks(plan);
    expect(sinks.size, `${name}.dts has no jsonl sink writing a file`).toBeGreaterThan(0);
    for (const [sink, path] of sinks) {
      const written = existsSync(join(folder, path)) ? readFileSync(join(folder, path), "utf8") : "";
      const golden = join(casesDir, `${name}.${sink}.jsonl`);
      if (update) writeFileSync(golden, written);
      expect(existsSync(golden), `${name}.${sink}.jsonl is missing (UPDATE_GOLDEN=1 writes it)`).toBe(true);
      expect(written, `sink ${sink} of ${name}.dts`).toBe(readFileSync(golden, "utf8"));
    }
  });

  it("every golden file belongs to a case and one of its sinks", async () => {
    const expected = new Set<string>();
    for (const name of cases) {
      const compiled = await compileFile(join(casesDir, `${name}.dts`));
      for (const sink of fileSinks(compiled.plan!).keys()) expected.add(`${name}.${sink}.jsonl`);
    }
    const orphans = readdirSync(casesDir).filter((file) => file.endsWith(".jsonl") && !expected.has(file));
    if (update) {
      for (const orphan of orphans) rmSync(join(casesDir, orphan));
      return;
    }
    expect(orphans, "golden files without a case (UPDATE_GOLDEN=1 removes them)").toEqual([]);
  });
});
