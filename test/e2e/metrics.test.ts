/**
 * `dts-run --metrics PORT` during a real run: /healthz answers, /readyz turns ready once the
 * source delivered, /metrics counters move between two scrapes and never run ahead of the
 * run's own summary; every log record names the pipeline, the run and the connector.
 *
 * Needs the build (`npm test` builds first; see cli-process.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, startDtsRun, tempFolder, waitFor } from "../cli-process.js";

const PIPELINE = `
pipeline watched

source shop = datagen {
  rows: 10000000
  changes_per_second: 4000
  seed: 5
}

sink out = jsonl { path: "out.jsonl" }

flow shop -> out
`;

beforeAll(requireBuild);

/** The value of one sample of the Prometheus text, e.g. `dts_sink_events_total{...sink="out"...}`. */
function sample(text: string, name: string, label: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(label));
  if (line === undefined) throw new Error(`no ${name} with ${label} in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("dts-run --metrics", () => {
  it("serves probes and counters that move with the run and agree with its summary", async () => {
    const folder = tempFolder("dts-metrics-");
    writeFileSync(join(folder, "p.dts"), PIPELINE);
    const run = startDtsRun(["p.dts", "--metrics", "0"], { cwd: folder });
    await run.stderrContains("serving metrics");
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)\/metrics"/.exec(run.stderr())![1]!;

    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    await waitFor("ready", async () => (await fetch(`${url}/readyz`)).status === 200, 30_000, 50);
    expect(await (await fetch(`${url}/nowhere`)).text()).toMatch(/\/metrics, \/healthz and \/readyz/);

    const first = await (await fetch(`${url}/metrics`)).text();
    await waitFor("more events written", async () => sample(await (await fetch(`${url}/metrics`)).text(), "dts_sink_events_total", 'sink="out"') > sample(first, "dts_sink_events_total", 'sink="out"') + 500, 30_000, 100);
    const second = await (await fetch(`${url}/metrics`)).text();
    for (const text of [first, second]) {
      expect(text).toContain('pipeline="watched"');
      expect(text).toMatch(/dts_sink_batch_seconds_bucket\{[^}]*sink="out"/);
      expect(sample(text, "dts_source_caught_up", 'source="shop"')).toBe(0);
      expect(sample(text, "dts_sink_failing", 'sink="out"')).toBe(0);
    }
    expect(first).toMatch(/dts_source_events_total\{[^}]*connector="datagen"/);
    expect(sample(second, "dts_source_events_total", 'source="shop"')).toBeGreaterThan(sample(first, "dts_source_events_total", 'source="shop"'));
    expect(sample(second, "dts_sink_writes_total", 'sink="out"')).toBeGreaterThan(sample(first, "dts_sink_writes_total", 'sink="out"'));

    // dts status reads the same figures from the run's report beside the pipeline.
    await waitFor("a run report", async () => /running: run [0-9a-f]{12}/.test((await runDts(["status", "p.dts"], { cwd: folder })).stdout), 30_000, 500);
    const running = await runDts(["status", "p.dts"], { cwd: folder });
    expect(running.stdout).toMatch(/source shop\s+datagen\s+\d+\s+reading/);
    expect(running.stdout).toMatch(/sink out\s+jsonl\s+\d+ written\s+writing/);

    run.child.kill("SIGTERM");
    const done = await run.done;
    expect(done.code).toBe(0);
    const after = await runDts(["status", "p.dts"], { cwd: folder });
    expect(after.stdout).toMatch(/run: last run [0-9a-f]{12} \(pid \d+\) stopped normally \(signal\)/);
    const records = done.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = records.find((r) => r["msg"] === "done")!;
    const written = (summary["written"] as Record<string, number>)["out"]!;
    const read = (summary["read"] as Record<string, number>)["shop"]!;
    expect(sample(second, "dts_sink_events_total", 'sink="out"')).toBeLessThanOrEqual(written);
    expect(sample(second, "dts_source_events_total", 'source="shop"')).toBeLessThanOrEqual(read);

    const runIds = new Set(records.map((r) => r["run_id"]));
    expect(runIds.size).toBe(1);
    expect([...runIds][0]).toMatch(/^[0-9a-f]{12}$/);
    expect(records.every((r) => r["pipeline"] === "watched")).toBe(true);
    const started = records.find((r) => r["msg"] === "source started")!;
    expect(started).toMatchObject({ source: "shop", connector: "datagen" });
  });

  it("refuses a port that is not one", async () => {
    const folder = tempFolder("dts-metrics-");
    writeFileSync(join(folder, "p.dts"), PIPELINE);
    const done = await startDtsRun(["p.dts", "--metrics", "http"], { cwd: folder }).done;
    expect(done.code).toBe(2);
    expect(done.stderr).toMatch(/--metrics takes a port number/);
  });
});
