/**
 * kill -9 and resume: `dts-run` on datagen → jsonl (format "event") with the default file
 * checkpoint is SIGKILLed at random moments, restarted each time, and finally run with
 * --until-caught-up. Reduced by (table, key) in file order — last write wins, a delete
 * removes — the output must equal an uninterrupted run's, and every event of the
 * uninterrupted run must be there at least once: at-least-once delivery, nothing lost, and a
 * torn last line (a write cut by the kill) repaired rather than left to corrupt the file.
 *
 * Needs the build (`npm test` builds first; see cli-process.ts).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeEvent, encodeJson } from "../../src/model/json.js";
import { requireBuild, runDtsRun, sleep, startDtsRun, tempFolder } from "../cli-process.js";

const PIPELINE = `
pipeline kill_resume

source shop = datagen {
  rows: 60000
  changes_per_second: 30000
  seed: 11
  transaction_size: 5
}

sink out = jsonl { path: "out.jsonl", format: "event" }

flow shop -> out
`;

/** The table's final state: key → row, in file order, deletes removing. */
function reduce(lines: readonly string[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const line of lines) {
    const event = decodeEvent(line);
    const id = `${event.source.schema}.${event.source.table} ${encodeJson(event.key)}`;
    if (event.op === "delete") state.delete(id);
    else state.set(id, encodeJson(event.after!));
  }
  return state;
}

function readLines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line !== "");
}

describe("kill -9 and resume", () => {
  beforeAll(requireBuild);

  it("ends in the same state as an uninterrupted run, with nothing lost", async () => {
    // The uninterrupted run goes on beside the interrupted ones.
    const reference = tempFolder("reference");
    writeFileSync(join(reference, "p.dts"), PIPELINE);
    const clean = runDtsRun(["p.dts"], { cwd: reference });

    const folder = tempFolder("killed");
    writeFileSync(join(folder, "p.dts"), PIPELINE);
    const seed = Math.floor(Math.random() * 2 ** 31);
    let random = seed;
    const next = (): number => (random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const kills: number[] = [];
    let killed = 0;
    for (let i = 0; i < 6; i++) {
      const run = startDtsRun(["p.dts"], { cwd: folder });
      // Kill anywhere in the first 300 ms of the source's run: six of them cannot add up to
      // the 2 s the whole stream takes, so every run is cut short.
      await run.stderrContains("source started");
      const delay = Math.floor(next() * 300);
      await sleep(delay);
      run.child.kill("SIGKILL");
      const result = await run.done;
      kills.push(delay);
      if (result.signal === "SIGKILL") killed++;
      // A run may finish before its kill; otherwise it must have died of it.
      expect(result.signal === "SIGKILL" || result.code === 0, `run ${i} (seed ${seed}): ${result.stderr}`).toBe(true);
    }
    const last = await runDtsRun(["p.dts", "--until-caught-up"], { cwd: folder });
    expect(last.code, last.stderr).toBe(0);

    const cleanResult = await clean;
    expect(cleanResult.code, cleanResult.stderr).toBe(0);
    const referenceLines = readLines(join(reference, "out.jsonl"));
    expect(referenceLines).toHaveLength(60000);

    const lines = readLines(join(folder, "out.jsonl"));
    const context = `seed ${seed}, kills after ${kills.join(", ")} ms, ${lines.length} lines`;
    // Every line is a whole event (a torn one was cut before appending).
    expect(reduce(lines), context).toEqual(reduce(referenceLines));
    const seen = new Set(lines.map((line) => decodeEvent(line).source.position.token));
    const missing = referenceLines.map((line) => decodeEvent(line).source.position.token).filter((token) => !seen.has(token));
    expect(missing, context).toEqual([]);
    // The test tested something: runs were cut short.
    expect(killed, context).toBeGreaterThanOrEqual(5);
    // Eight dts-run processes, one after another: about 12 s on an idle 2-core machine, 47 s
    // and once past 60 s at load 15 (other suites running beside it).
  }, 180_000);
});
