/**
 * The mysql sink through `dts-run` and `dts verify`, as processes: with `checkpoint: "mysql"` the
 * position commits with the data, so `kill -9` in the snapshot and while streaming (with changes
 * going on) ends, after a resume, with the MySQL copy equal to PostgreSQL value by value; `dts
 * verify` finds it equal across the two engines, and then finds a difference planted in MySQL.
 *
 * The PostgreSQL schema is named after the MySQL database, so that the flow needs no route (a
 * route that depends on the event cannot be verified).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runDts, runDtsRun, sleep, startDtsRun, tempFolder, waitFor } from "../cli-process.js";
import { decodeJson, encodeJson } from "../../src/model/json.js";
import { unique } from "./postgres-e2e-helpers.js";
import { createDatabase, requireLogicalReplication, type ThrowawayDatabase } from "./pg-helpers.js";
import { createMysqlDatabase, type MysqlDatabase } from "./mysql-sink-helpers.js";

let pg: ThrowawayDatabase;
let my: MysqlDatabase;
let file: string;
let table: string;

const ROWS = 20_000;

beforeAll(async () => {
  requireBuild();
  await requireLogicalReplication();
  pg = await createDatabase("mysink_crash");
  my = await createMysqlDatabase("crash");
  table = `"${my.name}".items`;
  await pg.sql(`CREATE SCHEMA "${my.name}"`);
  await pg.sql(
    `CREATE TABLE ${table} (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz, doc jsonb, tags text[], bin bytea, f float8, ok boolean, code char(3))`,
  );
  await pg.sql(
    `INSERT INTO ${table} SELECT g, 'item ' || g, g * 1.10, timestamptz '2024-01-01 00:00:00+00' + g * interval '1.5 s', jsonb_build_object('k', g, 'd', 1.50),
            ARRAY['a', NULL, 'x"y'], decode(md5(g::text), 'hex'), g / 3.0, g % 2 = 0, 'c' || (g % 10)
       FROM generate_series(1, ${ROWS}) AS g`,
  );
  const dir = tempFolder("dts-mysink-crash-");
  file = join(dir, "crash.dts");
  await writeFile(
    file,
    `pipeline ${unique("mysink_crash")} { checkpoint: "mysql" }
source src = postgres {
  url: "${pg.url}"
  tables: ["${my.name}.items"]
  slot: "${unique("dts_mysink_crash")}"
  heartbeat_seconds: 1
}
sink dst = mysql {
  url: "${my.url}"
  create_tables: true
  batch_size: 500
}
flow src -> dst
`,
  );
});

afterAll(async () => {
  await pg?.drop();
  await my?.drop();
});

async function mysqlCount(): Promise<number> {
  const rows = await my.sql<{ n: string }>("SELECT COUNT(*) AS n FROM items").catch(() => [{ n: "0" }]);
  return Number(rows[0]!.n);
}

/** Both sides' rows, each as one comparable text, in key order. */
async function bothSides(): Promise<{ source: string[]; copy: string[] }> {
  const source = await pg.sql<Record<string, unknown>>(
    `SELECT id, name, price::text AS price, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, doc::text AS doc, to_jsonb(tags)::text AS tags,
            encode(bin, 'hex') AS bin, f::text AS f, CASE WHEN ok THEN 1 WHEN NOT ok THEN 0 END AS ok, format('%s', code) AS code
       FROM ${table} ORDER BY id`,
  );
  const copy = await my.sql<Record<string, unknown>>(
    "SELECT id, name, CAST(price AS CHAR) AS price, CAST(at AS CHAR) AS at, CAST(doc AS CHAR) AS doc, CAST(tags AS CHAR) AS tags, LOWER(HEX(bin)) AS bin, CAST(f AS CHAR) AS f, ok, code FROM items ORDER BY id",
  );
  const json = (text: unknown): string | null => (text === null ? null : encodeJson(decodeJson(String(text))));
  const line = (row: Record<string, unknown>): string =>
    JSON.stringify([Number(row.id), row.name, row.price, row.at, json(row.doc), json(row.tags), row.bin, row.f === null ? null : Number(row.f), row.ok === null ? null : Number(row.ok), row.code === "" ? null : row.code]);
  return { source: source.map(line), copy: copy.map(line) };
}

describe("checkpoint \"mysql\": kill -9 and resume", () => {
  it("ends with the copy equal to the source, after kills in the snapshot and while streaming", async () => {
    // Killed in the middle of the snapshot.
    const first = startDtsRun([file]);
    await waitFor("part of the snapshot in MySQL", async () => (await mysqlCount()) >= 2_000 || first.child.exitCode !== null, 120_000, 20);
    first.child.kill("SIGKILL");
    await first.done;
    expect(await mysqlCount()).toBeLessThan(ROWS);

    // Streaming, with changes going on; killed in the middle.
    const second = startDtsRun([file]);
    let changing = true;
    const changes = (async () => {
      for (let round = 1; changing; round++) {
        await pg.sql(
          `BEGIN;
           UPDATE ${table} SET name = name || '+', price = price + 1, f = f * 2 WHERE id % 97 = ${round % 97};
           DELETE FROM ${table} WHERE id = ${round * 7};
           INSERT INTO ${table} (id, name, price, tags, ok) VALUES (${ROWS + round}, 'new ${round}', ${round}.25, '{}', true);
           UPDATE ${table} SET id = ${ROWS * 2 + round} WHERE id = ${round * 7 + 1};
           COMMIT`,
        );
        await sleep(5);
      }
    })();
    await waitFor("the snapshot done and streaming", async () => (await mysqlCount()) >= ROWS - 100 || second.child.exitCode !== null, 120_000, 50);
    await sleep(1_500);
    second.child.kill("SIGKILL");
    await second.done;
    await sleep(500);
    changing = false;
    await changes;

    // The rest, to the end.
    const last = await runDtsRun([file, "--until-caught-up"], { timeoutMs: 180_000 });
    expect(last.code, last.stderr.slice(-3000)).toBe(0);
    const { source, copy } = await bothSides();
    expect(copy.length).toBe(source.length);
    for (let i = 0; i < source.length; i++) if (copy[i] !== source[i]) expect(copy[i]).toBe(source[i]);
    const stored = await my.sql<{ pipeline: string; source: string }>("SELECT pipeline, source FROM dts_checkpoints");
    expect(stored.map((row) => row.source)).toEqual(["src"]);
  }, 420_000);

  it("dts verify finds the copies equal across the two engines, then a planted difference", async () => {
    const equal = await runDts(["verify", file], { timeoutMs: 120_000 });
    expect(equal.code, equal.stdout + equal.stderr).toBe(0);
    expect(equal.stdout).toContain(`src ${my.name}.items -> dst ${my.name}.items`);
    expect(equal.stdout).toMatch(/ok: 1 equal, 0 different/);

    await my.sql("UPDATE items SET price = price + 0.01 WHERE id = 10");
    await my.sql("DELETE FROM items WHERE id = 11");
    await my.sql("UPDATE items SET doc = JSON_OBJECT('k', 0) WHERE id = 12");
    const different = await runDts(["verify", file], { timeoutMs: 120_000 });
    expect(different.code, different.stdout + different.stderr).toBe(1);
    expect(different.stdout).toMatch(/DIFFERENT: 3 differing keys\n\s+id=10\s+differs\n\s+id=11\s+missing in target\n\s+id=12\s+differs/);
  }, 300_000);
});
