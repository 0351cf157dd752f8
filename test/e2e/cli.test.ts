/**
 * `dts-run` as a user meets it: its exit codes (0 ok, 1 invalid pipeline, 2 bad usage,
 * 3 connector failed or not built, 4 rejected without a dead_letter sink), one-line errors
 * with the last durable positions, JSON log lines on a non-terminal stderr, and output on
 * stdout with `path: "-"`.
 *
 * Needs the build (`npm test` builds first; see cli-process.ts).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { sinkSpecs } from "../../src/connectors/registry.js";
import { decodeJson } from "../../src/model/json.js";
import { requireBuild, runDtsRun, tempFolder } from "../cli-process.js";

function pipeline(text: string): string {
  const folder = tempFolder("cli");
  writeFileSync(join(folder, "p.dts"), text);
  return folder;
}

describe("dts-run", () => {
  beforeAll(requireBuild);

  it("runs to the end: rows on stdout, JSON logs on stderr, exit 0", async () => {
    const folder = pipeline(`
      source shop = datagen { rows: 300, seed: 42 }
      sink out = jsonl { path: "-", format: "row" }
      flow shop | filter table == "shop.customers" | map { id: row.id, email: row.email } -> out
    `);
    const result = await runDtsRun(["p.dts", "--until-caught-up"], { cwd: folder });
    expect(result.code, result.stderr).toBe(0);
    const rows = result.stdout.trim().split("\n").map((line) => JSON.parse(line) as { id: number });
    expect(rows.map((row) => row.id)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const logs = result.stderr.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logs.every((log) => typeof log["level"] === "string" && typeof log["time"] === "string" && typeof log["msg"] === "string")).toBe(true);
    const done = logs.find((log) => log["msg"] === "done")!;
    expect(done).toMatchObject({ level: "info", stopped_by: "caught-up", read: { shop: 300 }, written: { out: 15 }, positions: { shop: { kind: "seq", token: "300" } } });
    expect(existsSync(join(folder, ".dts-state"))).toBe(true);
  });

  it("bad usage exits 2", async () => {
    const folder = tempFolder("cli");
    expect((await runDtsRun([], { cwd: folder })).code).toBe(2);
    expect((await runDtsRun(["p.dts", "--fast"], { cwd: folder })).stderr).toContain("unknown option --fast");
    expect((await runDtsRun(["p.dts", "--log-level", "loud"], { cwd: folder })).code).toBe(2);
    const missing = await runDtsRun(["missing.dts"], { cwd: folder });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("dts-run: cannot read missing.dts: no such file\n");
  });

  it("--help and --version exit 0; the help lists every option", async () => {
    const folder = tempFolder("cli");
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    const [help, short, versioned] = await Promise.all([runDtsRun(["--help"], { cwd: folder }), runDtsRun(["-h"], { cwd: folder }), runDtsRun(["--version"], { cwd: folder })]);
    for (const result of [help, short]) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^usage: dts-run FILE\.dts/);
      for (const option of ["--until-caught-up", "--log-level", "--help", "--version"]) expect(result.stdout).toContain(option);
    }
    expect(versioned.code).toBe(0);
    expect(versioned.stdout).toBe(`dts-run ${version}\n`);
    const missing = await runDtsRun(["p.dts", "--log-level"], { cwd: folder });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("dts-run: --log-level needs a value");
  });

  it("an invalid pipeline exits 1 with its diagnostics", async () => {
    const folder = pipeline(`
      source shop = datagen { rows: 10 }
      sink out = jsonl { path: "-" }
      flow shop | filter row.id > -> out
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/p\.dts:4:\d+: error DTS\d{4}/);
  });

  it("an unset environment variable exits 1, naming it", async () => {
    const folder = pipeline(`
      source shop = datagen { rows: 10 }
      sink out = jsonl { path: env("DTS_SURELY_UNSET_PATH") }
      flow shop -> out
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder, env: {} });
    expect(result.code).toBe(1);
    expect(result.stderr.split("\n")[0]).toMatch(/^dts-run: error: .*environment variable "DTS_SURELY_UNSET_PATH" is not set/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("a connector that is specified but not built yet exits 3 with that message", async () => {
    const unbuilt = sinkSpecs.find((spec) => !existsSync(join("src/connectors", spec.name, "sink.ts")));
    if (unbuilt === undefined) return; // every sink is built: nothing left to check
    const required = Object.entries(unbuilt.options)
      .filter(([, option]) => option.required)
      .map(([name, option]) => `${name}: ${option.type === "string[]" ? '["x"]' : '"x"'}`);
    const folder = pipeline(`
      source shop = datagen { rows: 10 }
      sink later = ${unbuilt.name} { ${required.join(", ")} }
      flow shop -> later
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain(`dts-run: error: sink later: the ${unbuilt.name} sink is specified but not built yet`);
  });

  it("a connector failure exits 3 with the last durable positions", async () => {
    const folder = pipeline(`
      source recorded = jsonl { path: "recorded.jsonl" }
      sink out = jsonl { path: "out.jsonl" }
      flow recorded -> out
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code).toBe(3);
    const lines = result.stderr.trim().split("\n").filter((line) => line.startsWith("dts-run:"));
    expect(lines[0]).toMatch(/^dts-run: error: source recorded: jsonl: cannot open .*recorded\.jsonl: no such file$/);
    expect(lines[1]).toBe("dts-run: last durable positions: recorded at its beginning (the next run resumes there)");
    // The code that decided the exit code (src/diagnostics/errors.ts), for a supervisor to go by.
    expect(lines[2]).toMatch(/^dts-run: error code DTS7101, exit 3: a connector failed/);
  });

  it("a rejected event without a dead_letter sink exits 4, naming the event; the position stays before it", async () => {
    // Order 1000400 divides by zero, a few hundred events in; batches of ~250 events before it are checkpointed.
    const folder = pipeline(`
      source shop = datagen { rows: 3000, seed: 4, changes_per_second: 5000 }
      sink out = jsonl { path: "out.jsonl", format: "row" }
      flow shop | filter table == "shop.orders" | map { id: row.id, per: row.amount / (row.id - 1000400) } -> out
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code).toBe(4);
    const [error, positions] = result.stderr.trim().split("\n").filter((line) => line.startsWith("dts-run:"));
    expect(error).toMatch(
      /^dts-run: error: flow:1\/step:2: map \{ id: row\.id, per: row\.amount \/ \(row\.id - 1000400\) \} rejected the insert on shop\.orders key \{"id":1000400\} at seq (\d+): division by zero$/,
    );
    const rejectedSeq = Number(/at seq (\d+)/.exec(error!)![1]);
    const saved = Number(/at seq (\d+) \(/.exec(positions!)![1]);
    expect(saved).toBeGreaterThan(0);
    expect(saved).toBeLessThan(rejectedSeq);
    // Everything before the rejected event's batch was written; nothing of it or after.
    const written = readFileSync(join(folder, "out.jsonl"), "utf8").trim().split("\n").map((line) => (JSON.parse(line) as { id: number }).id);
    expect(Math.max(...written)).toBeLessThan(1000400);
    const state = JSON.parse(readFileSync(join(folder, ".dts-state"), "utf8")) as { pipelines: Record<string, { sources: { shop: { position: { token: string } } } }> };
    expect(Number(Object.values(state.pipelines)[0]!.sources.shop.position.token)).toBe(saved);
  });

  it("with a dead_letter sink the same events are kept aside and the run succeeds", async () => {
    const folder = pipeline(`
      pipeline p { dead_letter: rejected }
      source shop = datagen { rows: 500, seed: 4 }
      sink out = jsonl { path: "out.jsonl", format: "row" }
      sink rejected = jsonl { path: "rejected.jsonl" }
      flow shop | filter table == "shop.orders" | map { id: row.id, per: row.amount / (row.customer_id % 3) } -> out
    `);
    const result = await runDtsRun(["p.dts"], { cwd: folder });
    expect(result.code, result.stderr).toBe(0);
    const rejected = readFileSync(join(folder, "rejected.jsonl"), "utf8").trim().split("\n");
    expect(rejected.length).toBeGreaterThan(0);
    const first = decodeJson(rejected[0]!) as { rejection: { reason: string } };
    expect(first.rejection.reason).toBe("division by zero");
  });
});
