/**
 * `dts drop` against the real server, through the built CLI: what an abandoned pipeline
 * leaves (the replication slot, the publication, the checkpoint — in the checkpoint file or in
 * dts.checkpoints) is listed, removed only when confirmed, and gone afterwards; a second drop
 * finds nothing; a drop while the pipeline runs is refused by the pipeline's lock (the lock
 * file, or the advisory lock of checkpoint "postgres"). `dts status` points at `dts drop`
 * when an inactive slot retains WAL.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveName } from "../../src/connectors/postgres/slot.js";
import { requireBuild, ROOT, runDts, startDtsRun, waitFor } from "../cli-process.js";
import { unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";

let source: TestDatabase;
let target: TestDatabase;
let dir: string;

beforeAll(async () => {
  requireBuild();
  source = await createDatabase("drop_src");
  target = await createDatabase("drop_dst");
  dir = await mkdtemp(join(tmpdir(), "dts-drop-"));
  await source.sql("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i");
});

afterAll(async () => {
  await source?.drop();
  await target?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function slotExists(name: string): Promise<boolean> {
  return (await source.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [name])).length > 0;
}

async function publicationExists(name: string): Promise<boolean> {
  return (await source.sql("SELECT 1 FROM pg_publication WHERE pubname = $1", [name])).length > 0;
}

/** Runs `dts-run FILE` until its source has started reading the slot, for `body`; then stops it. */
async function whileRunning(file: string, body: () => Promise<void>): Promise<void> {
  const running = startDtsRun([file]);
  try {
    await waitFor("the pipeline to stream", async () => running.stderr().includes('"msg":"source started"'));
    await body();
  } finally {
    running.child.kill("SIGTERM");
    const finished = await running.done;
    expect(finished.code, finished.stderr.slice(-2000)).toBe(0);
  }
}

describe("dts drop, checkpoints in a file", () => {
  it("lists, refuses while running, removes slot, publication and checkpoint, then finds nothing", async () => {
    const pipeline = unique("drop_file");
    const names = deriveName(pipeline, "src");
    const file = join(dir, "file.dts");
    await writeFile(
      file,
      `pipeline ${pipeline}
source src = postgres { url: "${source.url}", tables: ["public.items"] }
sink out = jsonl { path: "out.jsonl" }
flow src -> out
`,
    );
    // One run: the drop is refused while it streams; stopped, it leaves its slot, publication and checkpoint.
    await whileRunning(file, async () => {
      const refused = await runDts(["drop", file, "--yes"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`^dts drop: refused: pipeline "${pipeline}" is already running: dts-run pid \\d+ on host .* holds its lock .*\\.dts-state\\.${pipeline}\\.lock`));
      expect(await slotExists(names)).toBe(true);
    });
    expect(await slotExists(names)).toBe(true);
    expect(await publicationExists(names)).toBe(true);
    expect(await readFile(join(dir, ".dts-state"), "utf8")).toContain(`"${pipeline}"`);

    // WAL written after the checkpoint is kept by the inactive slot: status says how to drop it.
    await source.sql("UPDATE items SET name = name || '!' WHERE id <= 10");
    const status = await runDts(["status", file]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`warning: source src: replication slot ${names} is inactive and makes the server keep \\d+(\\.\\d)? (B|kB|MB|GB) of WAL`));
    expect(status.stdout).toContain(`If the pipeline is abandoned, remove its slots, publications and checkpoint: dts drop ${file}`);

    // On a terminal it asks; "n" removes nothing (script(1) gives the command a terminal).
    const declined = spawnSync("script", ["-qec", `${process.execPath} ${join(ROOT, "dist/src/cli/dts.js")} drop ${file}`, "/dev/null"], { input: "n\n", encoding: "utf8", timeout: 60_000 });
    expect(declined.error, "script(1) runs the command on a terminal").toBeUndefined();
    expect(declined.stdout).toContain("Remove them? [y/N]");
    expect(declined.stdout).toContain("nothing removed");
    expect(declined.status).toBe(1);
    expect(await slotExists(names)).toBe(true);

    // Without --yes and without a terminal: listed, nothing removed.
    const unconfirmed = await runDts(["drop", file]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stdout).toContain(`pipeline "${pipeline}" keeps:`);
    expect(unconfirmed.stdout).toMatch(new RegExp(`source src: replication slot ${names} on postgres://postgres@127\\.0\\.0\\.1:5432/${source.name} \\(inactive, retains`));
    expect(unconfirmed.stdout).toContain(`source src: publication ${names} on postgres://postgres@127.0.0.1:5432/${source.name}`);
    expect(unconfirmed.stdout).toContain(`the checkpoint of pipeline "${pipeline}" in ${join(dir, ".dts-state")} (source src)`);
    expect(unconfirmed.stderr).toBe("dts drop: nothing removed; to remove these, run again with --yes\n");
    expect(await slotExists(names)).toBe(true);

    const dropped = await runDts(["drop", file, "--yes"]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toMatch(new RegExp(`removed source src: replication slot ${names} on `));
    expect(dropped.stdout).toMatch(new RegExp(`removed source src: publication ${names} on `));
    expect(dropped.stdout).toContain(`removed the checkpoint of pipeline "${pipeline}"`);
    expect(await slotExists(names)).toBe(false);
    expect(await publicationExists(names)).toBe(false);
    // The file held only this pipeline's entry; no lock file is left behind either.
    expect(existsSync(join(dir, ".dts-state"))).toBe(false);
    expect((await readdir(dir)).filter((name) => name.endsWith(".lock"))).toEqual([]);

    const again = await runDts(["drop", file, "--yes"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`nothing to remove: pipeline "${pipeline}" keeps no slot, publication or checkpoint\n`);
  });
});

describe('dts drop, checkpoint "postgres"', () => {
  it("removes the pipeline's dts.checkpoints rows (only its own), and is refused while the advisory lock is held", async () => {
    const pipeline = unique("drop_pg");
    const names = deriveName(pipeline, "src");
    const file = join(dir, "pg.dts");
    await writeFile(
      file,
      `pipeline ${pipeline} { checkpoint: "postgres" }
source src = postgres { url: "${source.url}", tables: ["public.items"] }
sink standby = postgres { url: "${target.url}", create_tables: true }
flow src -> standby
`,
    );
    await whileRunning(file, async () => {
      const refused = await runDts(["drop", file, "--yes"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`^dts drop: refused: pipeline "${pipeline}" is already running: dts-run pid \\d+ on host .* holds its lock in postgres://`));
    });
    await target.sql("INSERT INTO dts.checkpoints (pipeline, source, checkpoint) VALUES ('another_pipeline', 'src', '{\"position\": null}')");
    expect(await target.sql("SELECT source FROM dts.checkpoints WHERE pipeline = $1", [pipeline])).toEqual([{ source: "src" }]);

    const dropped = await runDts(["drop", file, "--yes"]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toContain(`removed the checkpoint of pipeline "${pipeline}" in dts.checkpoints of sink standby (source src)`);
    expect(await slotExists(names)).toBe(false);
    expect(await publicationExists(names)).toBe(false);
    expect(await target.sql("SELECT pipeline FROM dts.checkpoints ORDER BY pipeline")).toEqual([{ pipeline: "another_pipeline" }]);
    const again = await runDts(["drop", file, "--yes"]);
    expect(again.stdout).toContain("nothing to remove");
    expect(again.code).toBe(0);
  });
});
