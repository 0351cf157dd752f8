/**
 * The Debezium envelope: the fields Debezium consumers read, positions named as Debezium's
 * connectors name them, and values exact (no 64-bit integer or decimal through a double).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DTS_VERSION, encodeDebezium } from "../../src/model/debezium.js";
import { Decimal } from "../../src/model/decimal.js";
import type { ChangeEvent } from "../../src/model/event.js";
import { binlogPosition, pgLsnPosition, position } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";

const base: ChangeEvent = {
  op: "insert",
  before: null,
  after: { id: 18446744073709551615n, price: new Decimal("0.10"), blob: Buffer.from([1, 2, 3]), tags: [Buffer.from("a")] },
  key: { id: 18446744073709551615n },
  source: {
    connector: "postgres",
    db: "shop",
    schema: "public",
    table: "orders",
    position: pgLsnPosition("0/16B3748"),
    ts: Timestamp.parse("2024-03-01T10:00:00.123456Z"),
    txid: "741",
  },
};

const envelope = (event: ChangeEvent) => encodeDebezium(event, { name: "shop_cdc", processedAtMs: 1_709_287_200_500 });

describe("Debezium envelope", () => {
  it("writes before, after, source, op and ts_ms, exactly", () => {
    expect(envelope(base)).toBe(
      '{"before":null,"after":{"id":18446744073709551615,"price":0.10,"blob":"AQID","tags":["YQ=="]},' +
        '"source":{"version":"' + DTS_VERSION + '","connector":"postgres","name":"shop_cdc","ts_ms":1709287200123,"ts_us":1709287200123456,' +
        '"snapshot":"false","db":"shop","schema":"public","table":"orders","txId":741,"lsn":23803720},' +
        '"op":"c","ts_ms":1709287200500}',
    );
  });

  it("maps the ops to c, u, d, r and marks snapshot reads", () => {
    const ops = (["insert", "update", "delete", "read"] as const).map((op) => JSON.parse(envelope({ ...base, op })) as { op: string; source: { snapshot: string } });
    expect(ops.map((e) => e.op)).toEqual(["c", "u", "d", "r"]);
    expect(ops.map((e) => e.source.snapshot)).toEqual(["false", "false", "false", "true"]);
  });

  it("names positions as Debezium's connectors do", () => {
    const mysql = envelope({ ...base, source: { ...base.source, position: binlogPosition("mysql-bin.000003", 4567), txid: undefined } });
    expect(mysql).toContain('"txId":null,"file":"mysql-bin.000003","pos":4567,"gtid":null}');
    const withGtid = envelope({ ...base, source: { ...base.source, position: position("mysql-binlog", "mysql-bin.000003:4567;3E11FA47-71CA-11E1-9E33-C80AA9429562:23") } });
    expect(withGtid).toContain('"pos":4567,"gtid":"3E11FA47-71CA-11E1-9E33-C80AA9429562:23"}');
    expect(envelope({ ...base, source: { ...base.source, position: position("seq", "42"), txid: "t-1" } })).toContain('"txId":"t-1","seq":42}');
    expect(envelope({ ...base, source: { ...base.source, position: position("kafka", "p0@17") } })).toContain('"position":"p0@17"}');
  });

  it("source.version is the package's version", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect(DTS_VERSION).toBe(pkg.version);
  });
});
