/**
 * One `dts-run` per pipeline: a second run of a running pipeline exits 1 at once with a message
 * naming the holder and the fix, and the first goes on untouched (its output and checkpoint
 * are exactly those of a lone run); the lock goes with the first run's SIGTERM, and the lock
 * of a run killed with SIGKILL is taken over by the next.
 *
 * Needs the build (`npm test` builds first; see cli-process.ts).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeEvent } from "../../src/model/json.js";
import { requireBuild, runDtsRun, sleep, startDtsRun, tempFolder, waitFor } from "../cli-process.js";

const PIPELINE = `
pipeline lock_e2e

source shop = datagen {
  rows: 10000000
  changes_per_second: 5000
  seed: 5
}

sink out = jsonl { path: "out.jsonl" }

flow shop -> out
`;

function setUp(prefix: string): { folder: string; lock: string } {
  const folder = tempFolder(prefix);
  writeFileSync(join(folder, "p.dts"), PIPELINE);
  return { folder, lock: join(folder, ".dts-state.lock_e2e.lock") };
}

function writtenSeqs(folder: string): number[] {
  return readFileSync(join(folder, "out.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => Number(decodeEvent(line).source.position.token));
}

function savedPosition(folder: string): number {
  const state = JSON.parse(readFileSync(join(folder, ".dts-state"), "utf8")) as { pipelines: { lock_e2e: { sources: { shop: { position: { token: string } } } } } };
  return Number(state.pipelines.lock_e2e.sources.shop.position.token);
}

const inOrder = (seqs: readonly number[]): number[] => Array.from({ length: seqs.length }, (_, i) => i + 1);

describe("one dts-run per pipeline", () => {
  beforeAll(requireBuild);

  it("refuses a second run while the first runs, and leaves the first alone", async () => {
    const { folder, lock } = setUp("lock");
    const first = startDtsRun(["p.dts"], { cwd: folder });
    await first.stderrContains("source started");
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: first.child.pid, hostname: hostname() });

    const startedAt = performance.now();
    const second = await runDtsRun(["p.dts"], { cwd: folder });
    expect(performance.now() - startedAt, "refused at start, not after a while").toBeLessThan(10_000);
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain(
      `dts-run: error: pipeline "lock_e2e" is already running: dts-run pid ${first.child.pid} on host ${hostname()} holds its lock ${lock} (since `,
    );
    expect(second.stderr).toContain(`; stop the other dts-run (pid ${first.child.pid}) or, if it is gone, delete ${lock}\n`);
    expect(second.stderr, "the positions are the first run's, not this one's to report").not.toContain("last durable positions");
    expect(second.stderr).not.toContain("sink started");

    await sleep(500);
    expect(first.child.exitCode, "the first run goes on").toBeNull();
    expect(JSON.parse(readFileSync(lock, "utf8")).pid).toBe(first.child.pid);
    first.child.kill("SIGTERM");
    const firstDone = await first.done;
    expect(firstDone.code, firstDone.stderr).toBe(0);
    expect(existsSync(lock), "released on SIGTERM").toBe(false);
    // Untouched: its output is 1..N, nothing cut or repeated, and its checkpoint is where it ends.
    const seqs = writtenSeqs(folder);
    expect(seqs.length).toBeGreaterThan(500);
    expect(seqs).toEqual(inOrder(seqs));
    expect(savedPosition(folder)).toBe(seqs.at(-1));

    const third = startDtsRun(["p.dts"], { cwd: folder });
    await third.stderrContains("source started");
    // Until it has written something: a fixed wait lost the race on a loaded machine.
    const lines = (): number => readFileSync(join(folder, "out.jsonl"), "utf8").split("\n").length - 1;
    await waitFor("the resumed run to write", () => lines() > seqs.length, 30_000, 50);
    third.child.kill("SIGTERM");
    const thirdDone = await third.done;
    expect(thirdDone.code, thirdDone.stderr).toBe(0);
    expect(thirdDone.stderr).not.toContain("took over");
    expect(existsSync(lock)).toBe(false);
    const resumed = writtenSeqs(folder);
    expect(resumed.length).toBeGreaterThan(seqs.length);
    expect(resumed).toEqual(inOrder(resumed));
  });

  it("takes over the lock of a run killed with SIGKILL", async () => {
    const { folder, lock } = setUp("lock-killed");
    const first = startDtsRun(["p.dts"], { cwd: folder });
    await first.stderrContains("source started");
    await sleep(200);
    first.child.kill("SIGKILL");
    const killed = await first.done;
    expect(killed.signal).toBe("SIGKILL");
    expect(JSON.parse(readFileSync(lock, "utf8")).pid, "a killed run cannot remove its lock").toBe(first.child.pid);

    const next = startDtsRun(["p.dts"], { cwd: folder });
    await next.stderrContains("source started");
    next.child.kill("SIGTERM");
    const done = await next.done;
    expect(done.code, done.stderr).toBe(0);
    const takeover = done.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((record) => record.msg === "took over the pipeline's lock: the run that held it no longer exists");
    expect(takeover).toMatchObject({ level: "warn", pipeline: "lock_e2e", lock, pid: first.child.pid });
    expect(existsSync(lock)).toBe(false);
  });
});
