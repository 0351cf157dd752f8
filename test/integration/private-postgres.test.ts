/**
 * The private PostgreSQL that outage tests stop and restart (private-postgres.ts): it runs
 * on its own port with logical replication, stops and starts on demand keeping its data, and
 * leaves nothing behind once removed.
 */
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createPrivatePostgres, type PrivatePostgres } from "./private-postgres.js";

describe("a private PostgreSQL", () => {
  let cluster: PrivatePostgres | undefined;
  afterAll(async () => {
    await cluster?.remove();
  });

  it("runs on a port of its own, stops, restarts with its data, and is removed without a trace", async () => {
    cluster = await createPrivatePostgres();
    expect(cluster.port).not.toBe(5432);
    const [{ wal_level }] = await cluster.sql<{ wal_level: string }>("SHOW wal_level");
    expect(wal_level).toBe("logical");
    const url = await cluster.createDatabase("kept");
    expect(url).toBe(`postgres://postgres@127.0.0.1:${cluster.port}/kept`);
    await cluster.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)", [], "kept");

    await cluster.stop();
    expect(cluster.running).toBe(false);
    await expect(cluster.sql("SELECT 1")).rejects.toThrow(/ECONNREFUSED/);

    await cluster.restart({ mode: "immediate", downMs: 10 });
    expect(cluster.running).toBe(true);
    expect(await cluster.sql("SELECT count(*)::int AS n FROM t", [], "kept")).toEqual([{ n: 2 }]);

    const dataDir = cluster.dataDir;
    await cluster.remove();
    await cluster.remove();
    expect(existsSync(dataDir)).toBe(false);
    await expect(cluster.sql("SELECT 1")).rejects.toThrow(/ECONNREFUSED/);
  });
});
