/**
 * `dts verify`, `dts status` and `dts check --live` against the real server, through the
 * built CLI: what each prints and the exit codes scripts rely on.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, runDtsRun } from "../cli-process.js";
import { unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";

let source: TestDatabase;
let target: TestDatabase;
let dir: string;

beforeAll(async () => {
  requireBuild();
  source = await createDatabase("verify_src");
  target = await createDatabase("verify_dst");
  dir = await mkdtemp(join(tmpdir(), "dts-verify-"));
  const schema = `
    CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], doc jsonb, at timestamptz, code char(4), ip inet);
    CREATE TABLE pairs (a int, b text, v float8, PRIMARY KEY (a, b));`;
  await source.sql(schema);
  await target.sql(schema.replace("price numeric(10,2)", "price numeric").replace("code char(4)", "code text"));
  const rows = `
    INSERT INTO items SELECT i, 'item ' || i, i * 1.10, ARRAY['a', NULL], jsonb_build_object('k', i), timestamptz '2024-01-01 00:00:00+00' + i * interval '1 s', 'c' || i % 10, ('10.1.0.' || i % 200)::inet
      FROM generate_series(1, 5000) i;
    INSERT INTO pairs SELECT i, 'x', i / 3.0 FROM generate_series(1, 100) i;`;
  await source.sql(rows);
  await target.sql(rows);
});

afterAll(async () => {
  await source?.drop();
  await target?.drop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function pipelineFile(name: string, flow: string, extra = "", sourceUrl = source.url, targetUrl = target.url): Promise<string> {
  const file = join(dir, `${name}.dts`);
  await writeFile(
    file,
    `pipeline ${unique("verify")}
source src = postgres {
  url: "${sourceUrl}"
  tables: ["public.items", "public.pairs"]
  slot: "${unique("dts_verify")}"
}
sink dst = postgres { url: "${targetUrl}" }
${extra}
${flow}
`,
  );
  return file;
}

describe("dts verify", () => {
  it("finds equal copies equal (exit 0), with a table per pair", async () => {
    const file = await pipelineFile("equal", "flow src -> dst");
    const result = await runDts(["verify", file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("src public.items -> dst public.items");
    expect(result.stdout).toMatch(/source\s+5000\s+-?\d+\n\s+target\s+5000\s+-?\d+\n\s+equal/);
    expect(result.stdout).toContain("ok: 2 equal, 0 different");
  });

  it("lists the differing keys, at most 20 (exit 1)", async () => {
    await target.sql("UPDATE items SET name = 'changed' WHERE id IN (7, 4000)");
    await target.sql("DELETE FROM items WHERE id = 42");
    await target.sql("INSERT INTO items (id, name) VALUES (9001, 'extra')");
    await target.sql("UPDATE pairs SET v = v + 1 WHERE a <= 30");
    const file = await pipelineFile("different", "flow src -> dst");
    const result = await runDts(["verify", file]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toMatch(/DIFFERENT: 4 differing keys\n\s+id=7\s+differs\n\s+id=42\s+missing in target\n\s+id=4000\s+differs\n\s+id=9001\s+extra in target/);
    expect(result.stdout).toMatch(/DIFFERENT: first 20 differing keys\n\s+a=1, b=x\s+differs/);
    expect(result.stdout).toContain("DIFFERENT: 0 equal, 2 different");
    await target.sql("UPDATE items SET name = 'item ' || id WHERE id IN (7, 4000); DELETE FROM items WHERE id = 9001; UPDATE pairs SET v = a / 3.0 WHERE a <= 30");
    await target.sql("INSERT INTO items SELECT * FROM (SELECT 42, 'item 42', 46.20, ARRAY['a', NULL], jsonb_build_object('k', 42), timestamptz '2024-01-01 00:00:42+00', 'c2', '10.1.0.42'::inet) AS r");
    expect((await runDts(["verify", file])).code).toBe(0);
  });

  it("compares one type exactly: a numeric(10,2) copied into a numeric that lost its scale differs", async () => {
    await source.sql("UPDATE items SET price = 12.30 WHERE id = 3");
    await target.sql("UPDATE items SET price = 12.3 WHERE id = 3");
    const file = await pipelineFile("scale", "flow src -> dst");
    const lost = await runDts(["verify", file]);
    expect(lost.code, lost.stderr).toBe(1);
    expect(lost.stdout).toMatch(/DIFFERENT: 1 differing key\n\s+id=3\s+differs\n/);
    // numeric(10,2) and numeric are one type, compared by their text: nothing normalised there.
    expect(lost.stdout).not.toMatch(/normalised: price/);
    // char(4) and text print one value differently: said.
    expect(lost.stdout).toContain("normalised: code: character(4) -> text: without trailing spaces (the char(n) padding)");
    await target.sql("UPDATE items SET price = 12.30 WHERE id = 3");
    expect((await runDts(["verify", file])).code).toBe(0);
    await source.sql("UPDATE items SET price = 3.30 WHERE id = 3");
    await target.sql("UPDATE items SET price = 3.30 WHERE id = 3");
  });

  it("says which flows it cannot verify, and follows a constant route", async () => {
    const filtered = await pipelineFile("filtered", 'flow src | filter row.price > 1 -> dst');
    const result = await runDts(["verify", filtered]);
    expect(result.stdout).toMatch(/src -> dst: not verifiable: the flow filters rows \(filter row.price > 1\)/);
    // Not verified is not "ok": exit 4, unless the user accepts it.
    expect(result.stdout).toMatch(/NOT VERIFIED: 0 equal, 0 different, 1 not verifiable: src -> dst; --skip-unverifiable accepts that/);
    expect(result.code).toBe(4);
    const skipped = await runDts(["verify", filtered, "--skip-unverifiable"]);
    expect(skipped.stdout).toContain("ok: 0 equal, 0 different, 1 not verifiable (skipped)");
    expect(skipped.code).toBe(0);
    const routed = await pipelineFile("routed", 'flow src | route "public.${source.table}_copy" -> dst');
    expect((await runDts(["verify", routed])).stdout).toMatch(/not verifiable: the route target depends on the event/);
    const constant = join(dir, "constant.dts");
    await writeFile(
      constant,
      `pipeline p
source src = postgres { url: "${source.url}", tables: ["public.items"] }
sink dst = postgres { url: "${target.url}" }
flow src | route "public.pairs" -> dst
`,
    );
    const mismatch = await runDts(["verify", constant]);
    expect(mismatch.stdout).toContain("src public.items -> dst public.pairs");
    expect(mismatch.stdout).toContain("DIFFERENT: the target lacks columns at, code, doc, id, ip, name, price, tags");
    expect(mismatch.code).toBe(1);
  });

  it("names a server it cannot reach (exit 3)", async () => {
    const file = await pipelineFile("unreachable", "flow src -> dst", "", source.url, "postgres://postgres@127.0.0.1:1/nowhere");
    const result = await runDts(["verify", file]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^dts verify: cannot connect to postgres:\/\/postgres@127\.0\.0\.1:1\/nowhere: .*ECONNREFUSED/);
  });
});

describe("dts status", () => {
  it("shows the checkpoint, the source's position and the lag", async () => {
    const file = await pipelineFile("status", "flow src -> dst");
    const before = await runDts(["status", file]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/checkpoint\s+none/);
    expect(before.stdout).toMatch(/source now\s+[0-9A-F]+\/[0-9A-F]+ \(pg_current_wal_lsn\)/);
    expect(before.stdout).toMatch(/lag\s+unknown: no checkpoint yet/);

    const run = await runDtsRun([file, "--until-caught-up"]);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const caughtUp = await runDts(["status", file]);
    expect(caughtUp.stdout).toMatch(/checkpoints in .*\.dts-state/);
    expect(caughtUp.stdout).toMatch(/checkpoint\s+[0-9A-F]+\/[0-9A-F]+ \(pg-lsn\), saved /);
    expect(caughtUp.stdout).toMatch(/slot\s+dts_verify_\w+: confirmed [0-9A-F]+\/[0-9A-F]+, inactive/);
    // Bytes count the whole server's WAL (other databases write too), so only the unit varies.
    expect(caughtUp.stdout).toMatch(/lag\s+\d+(\.\d)? (B|kB|MB|GB), 0 s \(no change after the checkpoint\)/);

    // Changes after the checkpoint, while the pipeline is stopped: lag in time from their commit.
    await source.sql("UPDATE items SET name = name || '!' WHERE id < 10");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const behind = await runDts(["status", file]);
    expect(behind.stdout).toMatch(/lag\s+\d+(\.\d)? (B|kB|MB|GB), \d+\.\d s \(stopped; the oldest change not applied committed at /);
  });
});

describe("dts check --live", () => {
  it("checks column names against the source's tables and warns about before images", async () => {
    const file = await pipelineFile("live", 'flow src | filter row.prise > 1 and before.name != "x" -> dst');
    const result = await runDts(["check", "--live", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown field "prise" of row (no column "prise" in public.items, public.pairs)');
    expect(result.stderr).toContain('did you mean "price"?');
    expect(result.stderr).toMatch(/live\.dts:9:\d+: warning DTS6008: source src: this flow reads before, but public\.items has REPLICA IDENTITY DEFAULT/);
    await source.sql("ALTER TABLE items REPLICA IDENTITY FULL; ALTER TABLE pairs REPLICA IDENTITY FULL");
    const fixed = await pipelineFile("live-fixed", 'flow src | filter row.price > 1 and before.name != "x" -> dst');
    const ok = await runDts(["check", "--live", fixed]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
  });

  it("reports the start's own checks, with the same codes: a user without REPLICATION, a table without a key", async () => {
    const role = unique("dts_norepl");
    await source.sql(`CREATE ROLE ${role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}; CREATE TABLE keyless (v int)`);
    try {
      const file = join(dir, "norepl.dts");
      await writeFile(
        file,
        `pipeline ${unique("norepl")}\nsource src = postgres { url: "${source.url.replace("postgres@", `${role}@`)}", tables: ["public.items", "public.keyless"] }\nsink out = discard {}\nflow src -> out\n`,
      );
      const live = await runDts(["check", "--live", file]);
      expect(live.code).toBe(1);
      expect(live.stderr).toMatch(new RegExp(`norepl\\.dts:2:\\d+: error DTS6002: source src: user ${role} may not open replication connections: it lacks the REPLICATION attribute\\n`));
      expect(live.stderr).toContain(`= help: ALTER ROLE ${role} REPLICATION`);
      expect(live.stderr).toMatch(/error DTS6006: source src: table public\.keyless has no primary key, and dts applies changes by key\n/);
      expect(live.stdout).toMatch(/norepl\.dts: failed \(2 errors, 0 warnings; checked live: source src \(postgres\); not checked live: sink out \(discard\)\)/);
      const run = await runDtsRun([file, "--until-caught-up"]);
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`user ${role} may not open replication connections: it lacks the REPLICATION attribute (DTS6002): ALTER ROLE ${role} REPLICATION`);
    } finally {
      await source.sql(`DROP TABLE keyless; DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it("reports a missing table as an error, and an unreachable server with exit 3", async () => {
    const file = join(dir, "missing.dts");
    await writeFile(file, `pipeline p\nsource src = postgres { url: "${source.url}", tables: ["public.itemz"] }\nsink out = discard {}\nflow src -> out\n`);
    const missing = await runDts(["check", "--live", file]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing\.dts:2:\d+: error DTS6004: source src: table public\.itemz does not exist in database \w+ at 127\.0\.0\.1:5432\n/);
    expect(missing.stderr).toContain("= help: did you mean public.items?");
    const down = join(dir, "down.dts");
    await writeFile(down, `pipeline p\nsource src = postgres { url: "postgres://postgres@127.0.0.1:1/x", tables: ["public.items"] }\nsink out = discard {}\nflow src -> out\n`);
    const unreachable = await runDts(["check", "--live", down]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
    expect(unreachable.stderr).toMatch(/^dts check --live: source src: cannot connect to PostgreSQL at 127\.0\.0\.1:1/);
  });
});
