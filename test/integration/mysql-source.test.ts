/**
 * The mysql source against the real MariaDB: a snapshot and the binlog give the same values for
 * every type, value by value; the stream starts exactly at the snapshot's point; a restart from
 * a checkpoint neither repeats nor skips a transaction; a crash mid-snapshot resumes after the
 * last chunk.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { SourceCheckpoint } from "../../src/runtime/contracts.js";
import { createSource, MysqlSource } from "../../src/connectors/mysql/source.js";
import { BatchPuller, recordingLogger, sourceContext } from "./pg-helpers.js";
import { createMysqlDatabase, type MysqlDatabase } from "./mysql-source-helpers.js";

const TYPES_TABLE = `CREATE TABLE types (
  id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, b1 TINYINT(1), si SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d DECIMAL(65,30), d2 DECIMAL(10,2), f FLOAT, db DOUBLE, bt BIT(10), bt64 BIT(64),
  dt DATE, dtt DATETIME(6), dt0 DATETIME, ts TIMESTAMP(6) NULL, tm TIME(6), tm0 TIME, y YEAR,
  c CHAR(5), vc VARCHAR(20), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1, bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('a','b,c','x'), s SET('p','q','r'), j JSON, g BIGINT AS (i * 2) VIRTUAL, gs BIGINT AS (i + 1) STORED, n INT NULL
) CHARSET utf8mb4`;

const COLUMNS = "ti,tiu,b1,si,mi,miu,i,iu,bi,biu,d,d2,f,db,bt,bt64,dt,dtt,dt0,ts,tm,tm0,y,c,vc,tx,l1,bn,vb,bl,e,s,j";
const ROW_A =
  "-128,255,1,65535,-8388608,16777215,-2147483648,4294967295,-9223372036854775808,18446744073709551615," +
  "'-12345678901234567890123456789012345.123456789012345678901234567891',-1.05,26.333334,2.718281828459045,b'1010101010'," +
  "b'1111111111111111111111111111111111111111111111111111111111111111','2024-02-29','2024-02-29 13:14:15.123456','1000-01-01 00:00:00'," +
  "'2038-01-19 03:14:07.999999','-838:59:59.000000','123:00:01',2155,'ab','héllo 😀','text 😀','café',x'01020000',x'00ff',x'deadbeef'," +
  "'b,c','p,r','{\"a\": [1, 2.5, \"x\"], \"b\": null, \"big\": 12345678901234567890, \"dec\": 0.1000000000000000000001}'";
const ROW_B = "127,0,0,0,8388607,0,2147483647,0,9223372036854775807,0,'0.000000000000000000000000000001',99999999.99,-1.5e-10,-1e308,b'0',b'0'," +
  "'0000-00-00','0000-00-00 00:00:00.000000','9999-12-31 23:59:59','1970-01-01 00:00:01.000000','00:00:00.000001','-00:00:01',1901,'','','','',x'00000000',x'',x''," +
  "'a','','[]'";
const ROW_NULL = Array.from({ length: 33 }, () => "NULL").join(",");

let db: MysqlDatabase;

beforeAll(async () => {
  db = await createMysqlDatabase("dts_msrc");
});

afterAll(async () => {
  await db?.drop();
});

function valuesOf(event: ChangeEvent): Record<string, unknown> {
  const { id: _id, ...rest } = event.after!;
  return rest;
}

describe("mysql source", () => {
  it("reads every type the same from the snapshot and from the binlog", async () => {
    await db.sql(TYPES_TABLE);
    await db.sql("SET SESSION sql_mode = ''");
    await db.sql(`INSERT INTO types (id,${COLUMNS}) VALUES (1,${ROW_A}), (2,${ROW_B}), (3,${ROW_NULL})`);
    const log = recordingLogger();
    const source = createSource(sourceContext({ url: db.url, tables: [`${db.name}.types`], snapshot: "initial", chunk_size: 2 }, { log, name: "types" }));
    await source.start();
    const puller = new BatchPuller(source);
    try {
      await puller.until((batch) => batch.caughtUp === true);
      const reads = puller.events.filter((event) => event.op === "read");
      expect(reads.map((event) => event.after!.id)).toEqual([1, 2, 3]);
      await db.sql(`INSERT INTO types (id,${COLUMNS}) VALUES (11,${ROW_A}), (12,${ROW_B}), (13,${ROW_NULL})`);
      await puller.until(() => puller.events.filter((event) => event.op === "insert").length >= 3);
      const inserts = puller.events.filter((event) => event.op === "insert");
      expect(inserts.map((event) => event.after!.id)).toEqual([11, 12, 13]);
      for (let i = 0; i < 3; i++) expect(valuesOf(inserts[i]!)).toEqual(valuesOf(reads[i]!));

      const a = reads[0]!.after!;
      expect(a.ti).toBe(-128);
      expect(a.biu).toBe(18446744073709551615n);
      expect(a.bi).toBe(-9223372036854775808n);
      expect(a.d).toEqual(new Decimal("-12345678901234567890123456789012345.123456789012345678901234567891"));
      expect((a.d as Decimal).scale).toBe(30);
      expect(a.f).toBe(26.333334);
      expect(a.db).toBe(2.718281828459045);
      expect(a.bt).toBe(0b1010101010);
      expect(a.bt64).toBe(18446744073709551615n);
      expect(a.dt).toEqual(Timestamp.parse("2024-02-29"));
      expect(a.dtt).toEqual(Timestamp.parse("2024-02-29T13:14:15.123456"));
      expect(a.ts).toEqual(Timestamp.parse("2038-01-19T03:14:07.999999Z"));
      expect(a.tm).toBe("-838:59:59.000000");
      expect(a.tm0).toBe("123:00:01");
      expect(a.y).toBe(2155);
      expect(a.vc).toBe("héllo 😀");
      expect(a.l1).toBe("café");
      expect(a.bn).toEqual(Buffer.from([1, 2, 0, 0]));
      expect(a.e).toBe("b,c");
      expect(a.s).toBe("p,r");
      expect(a.j).toEqual({ a: [1, new Decimal("2.5"), "x"], b: null, big: 12345678901234567890n, dec: new Decimal("0.1000000000000000000001") });
      expect(a.g).toBe(-4294967296);
      expect(a.gs).toBe(-2147483647);
      expect(a.n).toBe(null);
      const b = reads[1]!.after!;
      expect(b.dt).toBe(null);
      expect(b.dtt).toBe(null);
      expect(b.f).toBe(-1.5e-10);
      expect(b.tm0).toBe("-00:00:01");
      expect(b.j).toEqual([]);
      expect(log.lines.some((line) => line.message.startsWith("a zero date"))).toBe(true);
      const nulls = reads[2]!.after!;
      for (const name of COLUMNS.split(",")) expect(nulls[name], name).toBe(null);

      // Updates and deletes, with the before image.
      await db.sql("UPDATE types SET vc = 'x' WHERE id = 11");
      await db.sql("DELETE FROM types WHERE id = 12");
      await puller.until(() => puller.events.some((event) => event.op === "delete"));
      const update = puller.events.find((event) => event.op === "update")!;
      expect(update.before!.vc).toBe("héllo 😀");
      expect(update.after!.vc).toBe("x");
      expect(update.key).toEqual({ id: 11 });
      const del = puller.events.find((event) => event.op === "delete")!;
      expect(del.key).toEqual({ id: 12 });
      expect(del.before!.d2).toEqual(new Decimal("99999999.99"));
    } finally {
      await source.close();
    }
  }, 60_000);

  it("reads negative and long TIME values the same from the snapshot and from the binlog", async () => {
    await db.sql("CREATE TABLE times (id INT PRIMARY KEY, t0 TIME, t3 TIME(3), t6 TIME(6))");
    const values = ["-01:03:00", "-00:01:00", "-01:00:00", "-838:59:59", "838:59:59", "-00:00:00.5", "-00:00:01.000001", "-01:03:00.25", "-100:00:00", "00:00:00", "-00:00:00.000001"];
    const insert = (base: number): string => `INSERT INTO times VALUES ${values.map((v, i) => `(${base + i}, '${v}', '${v}', '${v}')`).join(", ")}`;
    await db.sql(insert(1));
    const source = createSource(sourceContext({ url: db.url, tables: [`${db.name}.times`] }, { name: "times" }));
    await source.start();
    const puller = new BatchPuller(source);
    try {
      await puller.until((batch) => batch.caughtUp === true);
      await db.sql(insert(101));
      await puller.until(() => puller.events.filter((event) => event.op === "insert").length >= values.length);
      const reads = puller.events.filter((event) => event.op === "read");
      const inserts = puller.events.filter((event) => event.op === "insert");
      expect(reads).toHaveLength(values.length);
      for (let i = 0; i < values.length; i++) expect(valuesOf(inserts[i]!), values[i]).toEqual(valuesOf(reads[i]!));
      expect(reads[0]!.after!.t0).toBe("-01:03:00");
      expect(reads[0]!.after!.t6).toBe("-01:03:00.000000");
    } finally {
      await source.close();
    }
  }, 60_000);

  it("resumes a crashed snapshot after its last chunk, and the stream after its last transaction, with nothing lost or repeated", async () => {
    await db.sql("CREATE TABLE resume (id INT PRIMARY KEY, v VARCHAR(10))");
    await db.sql("INSERT INTO resume SELECT seq, CONCAT('v', seq) FROM seq_1_to_50");
    const options = { url: db.url, tables: [`${db.name}.resume`], chunk_size: 10 };
    const first = createSource(sourceContext(options, { name: "resume" }));
    await first.start();
    const one = new BatchPuller(first);
    await one.next();
    await one.next();
    // Rows change while the pipeline is down, in the copied range and after it.
    await first.close();
    const checkpoint = one.lastCheckpoint!;
    expect((checkpoint.state as { snapshot: { lastKey: unknown } }).snapshot.lastKey).toEqual([20]);
    await db.sql("UPDATE resume SET v = 'changed' WHERE id IN (5, 30)");
    await db.sql("DELETE FROM resume WHERE id = 40");
    await db.sql("INSERT INTO resume VALUES (51, 'new')");

    const second = createSource(sourceContext(options, { name: "resume", resume: checkpoint }));
    await second.start();
    const two = new BatchPuller(second);
    try {
      await two.until((batch) => batch.caughtUp === true);
      const reads = two.events.filter((event) => event.op === "read").map((event) => event.after!.id);
      // After the last chunk, in a new snapshot: 21..50 without 40, with 51.
      expect(reads).toEqual([...Array.from({ length: 30 }, (_, i) => 21 + i).filter((id) => id !== 40), 51]);
      // Then the stream from the first snapshot's point: every change since, in order.
      const streamed = two.events.filter((event) => event.op !== "read").map((event) => `${event.op} ${String(event.key.id)}`);
      expect(streamed).toEqual(["update 5", "update 30", "delete 40", "insert 51"]);
    } finally {
      await second.close();
    }
    const streaming = two.lastCheckpoint!;
    await db.sql("INSERT INTO resume VALUES (60, 'a')");
    await db.sql("START TRANSACTION");
    await db.sql("INSERT INTO resume VALUES (61, 'b')");
    await db.sql("UPDATE resume SET v = 'c' WHERE id = 60");
    await db.sql("COMMIT");
    // One transaction per batch, so that there is a checkpoint between the two.
    const third = new MysqlSource(sourceContext(options, { name: "resume", resume: streaming }), { stream: { batchEvents: 1 } });
    await third.start();
    const three = new BatchPuller(third, { keepBatches: true });
    try {
      await three.until(() => three.events.length >= 3);
      await three.until((batch) => batch.caughtUp === true);
      expect(three.events.map((event) => `${event.op} ${String(event.key.id)}`)).toEqual(["insert 60", "insert 61", "update 60"]);
    } finally {
      await third.close();
    }
    const middle = three.batches.find((batch) => batch.events.some((event) => event.key.id === 60 && event.op === "insert"))!.checkpoint!;
    const fourth = createSource(sourceContext(options, { name: "resume", resume: middle }));
    await fourth.start();
    const four = new BatchPuller(fourth);
    try {
      await four.until(() => four.events.length >= 2);
      await four.until((batch) => batch.caughtUp === true);
      expect(four.events.map((event) => `${event.op} ${String(event.key.id)}`)).toEqual(["insert 61", "update 60"]);
    } finally {
      await fourth.close();
    }
  }, 60_000);
});
