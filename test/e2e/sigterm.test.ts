/**
 * SIGTERM: `dts-run` on a rate-limited datagen stops on SIGTERM after draining — exit 0, the
 * checkpoint saved where the output ends — and a restart resumes right after it: across two
 * interrupted runs the output is exactly the sequence 1..N, nothing repeated, nothing lost.
 *
 * Needs the build (`npm test` builds first; see cli-process.ts).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeEvent } from "../../src/model/json.js";
import { requireBuild, startDtsRun, tempFolder, waitFor } from "../cli-process.js";

const PIPELINE = `
source shop = datagen {
  rows: 10000000
  changes_per_second: 5000
  seed: 3
}

sink out = jsonl { path: "out.jsonl" }

flow shop -> out
`;

/** Runs until out.jsonl holds more than `lines` lines, then sends SIGTERM. */
async function runUntilTerminated(folder: string, lines: number) {
  const run = startDtsRun(["p.dts"], { cwd: folder });
  await run.stderrContains("source started");
  // Waiting for output, not a fixed time: on a loaded machine a run may write nothing for a while.
  const written = (): number => (existsSync(join(folder, "out.jsonl")) ? readFileSync(join(folder, "out.jsonl"), "utf8").split("\n").length - 1 : 0);
  await waitFor(`more than ${lines} lines in out.jsonl`, () => run.child.exitCode !== null || written() > lines, 60_000, 50);
  run.child.kill("SIGTERM");
  return run.done;
}

function savedPosition(folder: string): number {
  const state = JSON.parse(readFileSync(join(folder, ".dts-state"), "utf8")) as { pipelines: Record<string, { sources: { shop: { position: { token: string } } } }> };
  return Number(Object.values(state.pipelines)[0]!.sources.shop.position.token);
}

function writtenSeqs(folder: string): number[] {
  return readFileSync(join(folder, "out.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => Number(decodeEvent(line).source.position.token));
}

describe("SIGTERM", () => {
  beforeAll(requireBuild);

  it("drains, checkpoints and exits 0; a restart resumes after the checkpoint", async () => {
    const folder = tempFolder("sigterm");
    writeFileSync(join(folder, "p.dts"), PIPELINE);

    const first = await runUntilTerminated(folder, 1000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain("SIGTERM: stopping after what was read is durable");
    const firstSeqs = writtenSeqs(folder);
    const checkpoint = savedPosition(folder);
    expect(firstSeqs.length).toBeGreaterThan(1000);
    // Drained: everything written is covered by the checkpoint, and nothing beyond it.
    expect(checkpoint).toBe(firstSeqs.at(-1));

    const second = await runUntilTerminated(folder, firstSeqs.length);
    expect(second.code, second.stderr).toBe(0);
    const seqs = writtenSeqs(folder);
    expect(seqs[firstSeqs.length], "the restart begins right after the checkpoint").toBe(checkpoint + 1);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(savedPosition(folder)).toBe(seqs.at(-1));
  });
});
