/**
 * The mysql source against a MariaDB server of the test's own (private-mariadb.ts): a restart of
 * the server mid-stream is retried and loses nothing; a checkpoint whose binlog the server has
 * purged is a clear error that says to copy the tables again, never a silent jump to the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectorError } from "../../src/runtime/contracts.js";
import { createSource } from "../../src/connectors/mysql/source.js";
import { requireBuild, runDtsRun, startDtsRun, waitFor, type Running } from "../cli-process.js";
import { BatchPuller, sourceContext } from "./pg-helpers.js";
import { copyPipeline, unique } from "./postgres-e2e-helpers.js";
import { createDatabase, type TestDatabase } from "./postgres-sink-helpers.js";
import { createPrivateMariadb, type PrivateMariadb } from "./private-mariadb.js";

beforeAll(() => requireBuild());

let server: PrivateMariadb;

beforeAll(async () => {
  server = await createPrivateMariadb();
}, 60_000);

afterAll(async () => {
  await server?.remove();
});

describe("mysql source on a private MariaDB", () => {
  it("stops with a clear error when the checkpoint's binlog was purged", async () => {
    await server.sql("CREATE DATABASE purge_db; CREATE TABLE purge_db.t (id INT PRIMARY KEY, v INT); INSERT INTO purge_db.t VALUES (1, 1)");
    const options = { url: server.url("purge_db"), tables: ["purge_db.t"] };
    const first = createSource(sourceContext(options, { name: "purge" }));
    await first.start();
    const puller = new BatchPuller(first);
    await puller.until((batch) => batch.caughtUp === true);
    await first.close();
    const checkpoint = puller.lastCheckpoint!;
    for (let i = 0; i < 3; i++) await server.sql(`INSERT INTO purge_db.t VALUES (${10 + i}, ${i}); FLUSH BINARY LOGS`);
    const [last] = await server.sql("SHOW MASTER STATUS");
    // The server does not purge a file a replica still reads: wait until the first reader's dump thread is gone.
    await waitFor("the binlog dump thread to end", async () => (await server.sql("SHOW PROCESSLIST")).every((row) => row.Command !== "Binlog Dump"), 10_000);
    // A file is purged once the server no longer needs it for crash recovery (its binlog checkpoint).
    await waitFor("the old binlogs to be purged", async () => {
      await server.sql(`PURGE BINARY LOGS TO '${String(last!.File)}'`);
      return (await server.sql("SHOW BINARY LOGS")).length === 1;
    }, 20_000);

    const second = createSource(sourceContext(options, { name: "purge", resume: checkpoint }));
    await second.start();
    try {
      const error = await new BatchPuller(second).next().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ConnectorError);
      expect((error as ConnectorError).retriable).toBe(false);
      expect((error as Error).message).toMatch(/no longer on .*changes since the pipeline's checkpoint are lost.*Copy the tables again/s);
    } finally {
      await second.close();
    }
  }, 60_000);

  describe("a server restart mid-stream", () => {
    let target: TestDatabase;
    let pipeline: Awaited<ReturnType<typeof copyPipeline>>;
    let running: Running | undefined;

    beforeAll(async () => {
      target = await createDatabase("restart_target");
      await server.sql("CREATE DATABASE shop; USE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO shop.items SELECT seq, CONCAT('v', seq) FROM seq_1_to_1000");
      pipeline = await copyPipeline("zero-downtime-migration.dts", [["pipeline shop_migration", `pipeline ${unique("restart_migration")}`]]);
    });

    afterAll(async () => {
      running?.child.kill("SIGKILL");
      await running?.done;
      await target?.drop();
      await pipeline?.remove();
    });

    it("is retried, and the copy ends equal", async () => {
      const env = { LEGACY_URL: server.url("shop"), TARGET_URL: target.url };
      running = startDtsRun([pipeline.file], { env });
      const count = async (): Promise<number> => {
        try {
          return Number((await target.sql<{ n: number }>("SELECT count(*)::int AS n FROM shop.items"))[0]!.n);
        } catch {
          return -1;
        }
      };
      await waitFor("the snapshot", async () => (await count()) === 1000, 60_000);
      await server.sql("USE shop; INSERT INTO shop.items SELECT seq, 'before' FROM seq_1001_to_1100");
      await server.restart();
      await server.sql("USE shop; INSERT INTO shop.items SELECT seq, 'after' FROM seq_1101_to_1200; UPDATE shop.items SET v = 'changed' WHERE id <= 10");
      await waitFor("the changes after the restart", async () => (await count()) === 1200, 60_000);
      expect(running.child.exitCode).toBe(null);
      running.child.kill("SIGTERM");
      const stopped = await running.done;
      running = undefined;
      expect(stopped.code, stopped.stderr.slice(-3000)).toBe(0);
      expect(stopped.stderr).toMatch(/retr/i);
      const again = await runDtsRun([pipeline.file, "--until-caught-up"], { env });
      expect(again.code, again.stderr.slice(-3000)).toBe(0);
      const source = (await server.sql("SELECT id, v FROM shop.items ORDER BY id")).map((row) => `${String(row.id)}=${String(row.v)}`);
      const copy = (await target.sql<{ id: number; v: string }>("SELECT id, v FROM shop.items ORDER BY id")).map((row) => `${row.id}=${row.v}`);
      expect(copy).toEqual(source);
    }, 180_000);
  });
});
