/**
 * The mysql source's pure parts: binlog positions as checkpoint tokens, the repair of zongji's
 * negative TIME, single-precision floats, renames and DEFAULTs read from DDL, and the preflight
 * findings for a server's settings and grants.
 */
import { describe, expect, it } from "vitest";
import { comparePositions } from "../../src/model/position.js";
import { pointPosition, positionPoint } from "../../src/connectors/mysql/position.js";
import { decodeValue, fixBinlogNegativeTime, float32 } from "../../src/connectors/mysql/values.js";
import { droppedIn, existingFromDefault, renamesIn, stillCaptured } from "../../src/connectors/mysql/schema-changes.js";
import type { MysqlTable } from "../../src/connectors/mysql/tables.js";
import { serverFindings, type ServerDescription } from "../../src/connectors/mysql/preflight.js";
import { Timestamp } from "../../src/model/timestamp.js";

describe("binlog positions", () => {
  it("round-trip through a checkpoint token and order by file, then offset", () => {
    const point = { file: "mysql-bin.000012", offset: 4567, gtids: "0-1-99,1-2-7" };
    expect(pointPosition(point).token).toBe("mysql-bin.000012:4567;0-1-99,1-2-7");
    expect(positionPoint(pointPosition(point))).toEqual(point);
    const mysqlGtids = { file: "binlog.000003", offset: 10, gtids: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" };
    expect(positionPoint(pointPosition(mysqlGtids))).toEqual(mysqlGtids);
    expect(positionPoint(pointPosition({ file: "b.000001", offset: 4, gtids: "" }))).toEqual({ file: "b.000001", offset: 4, gtids: "" });
    expect(comparePositions(pointPosition({ file: "b.000002", offset: 4, gtids: "" }), pointPosition({ file: "b.000001", offset: 900, gtids: "" }))).toBe(1);
  });
});

describe("values", () => {
  it("repairs zongji's negative TIME with a zero fraction, carrying as the packing does", () => {
    expect(fixBinlogNegativeTime("-01:02:64")).toBe("-01:03:00");
    expect(fixBinlogNegativeTime("-01:02:64.000")).toBe("-01:03:00.000");
    expect(fixBinlogNegativeTime("-00:63:64")).toBe("-01:00:00");
    expect(fixBinlogNegativeTime("-838:59:59.000000")).toBe("-838:59:59.000000");
    expect(fixBinlogNegativeTime("-00:00:00.500")).toBe("-00:00:00.500");
  });

  it("gives a FLOAT its shortest single-precision text", () => {
    expect(float32(3.140000104904175)).toBe(3.14);
    expect(float32(26.33333396911621)).toBe(26.333334);
    expect(float32(0)).toBe(0);
  });

  it("decodes dates, zero dates and BIT", () => {
    let zero = 0;
    expect(decodeValue("datetime", "0000-00-00 00:00:00", () => zero++)).toBe(null);
    expect(decodeValue("date", "2024-00-10", () => zero++)).toBe(null);
    expect(zero).toBe(2);
    expect(decodeValue("timestamp", "2038-01-19 03:14:07.5")).toEqual(Timestamp.parse("2038-01-19T03:14:07.5Z"));
    expect(decodeValue("bit", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(18446744073709551615n);
    expect(decodeValue("integer", "18446744073709551615")).toBe(18446744073709551615n);
    expect(decodeValue("integer", "42")).toBe(42);
  });
});

describe("DDL", () => {
  it("reads renames from RENAME TABLE and ALTER TABLE … RENAME", () => {
    expect([...renamesIn("RENAME TABLE items TO goods, shop.a TO `other`.`b`", "shop")]).toEqual([
      ["shop.goods", "shop.items"],
      ["other.b", "shop.a"],
    ]);
    expect([...renamesIn("ALTER TABLE `items` RENAME TO goods", "shop")]).toEqual([["shop.goods", "shop.items"]]);
    expect([...renamesIn("ALTER TABLE items RENAME COLUMN a TO b", "shop")]).toEqual([]);
  });

  it("keeps a table captured that a later statement renamed or dropped: its rows until then are still to come", () => {
    expect([...droppedIn("DROP TABLE IF EXISTS items, `other`.`b` CASCADE", "shop")]).toEqual(["shop.items", "other.b"]);
    const table = (name: string): MysqlTable => ({ database: "shop", name, qualifiedName: `shop.${name}`, columns: [], primaryKey: ["id"], estimatedRows: -1 });
    const before = new Map([["shop.items", table("items")], ["shop.gone", table("gone")]]);
    // The stream is at a DROP COLUMN on items, and the catalog already shows items renamed to goods.
    expect(stillCaptured(before, [table("goods")], "ALTER TABLE items DROP COLUMN note", "shop").map((t) => t.qualifiedName)).toEqual(["shop.items", "shop.gone"]);
    // At the rename itself, or a DROP TABLE, the table leaves.
    expect(stillCaptured(before, [table("goods")], "RENAME TABLE items TO goods", "shop").map((t) => t.qualifiedName)).toEqual(["shop.gone"]);
    expect(stillCaptured(before, [table("goods")], "DROP TABLE gone", "shop").map((t) => t.qualifiedName)).toEqual(["shop.items"]);
  });

  it("says what existing rows hold in an added column", () => {
    expect(existingFromDefault("1.50", false)).toEqual({ value: "1.50" });
    expect(existingFromDefault("'it''s'", true)).toEqual({ value: "it's" });
    expect(existingFromDefault("NULL", true)).toBe(undefined);
    expect(existingFromDefault(null, true)).toBe(undefined);
    expect(existingFromDefault("current_timestamp()", false)).toBe("computed");
  });
});

describe("preflight", () => {
  const server = (settings: Record<string, string>, privileges: string[], mariadb = true): ServerDescription => ({
    version: mariadb ? "10.11.6-MariaDB" : "8.0.36",
    mariadb,
    user: "dts@%",
    settings: { log_bin: "ON", binlog_format: "ROW", binlog_row_image: "FULL", binlog_row_metadata: "FULL", ...settings },
    privileges: new Set(privileges),
  });

  it("finds nothing on a server set up as the docs say", () => {
    expect(serverFindings(server({}, ["SELECT", "RELOAD", "REPLICATION SLAVE", "BINLOG MONITOR"]), true)).toEqual([]);
    expect(serverFindings(server({}, ["ALL PRIVILEGES"]), true)).toEqual([]);
  });

  it("names each missing setting and privilege", () => {
    const findings = serverFindings(server({ binlog_format: "MIXED", binlog_row_metadata: "MINIMAL" }, ["SELECT"]), true);
    expect(findings.map((finding) => `${finding.code} ${Object.values(finding.args).join(" ")}`)).toEqual([
      "DTS6030 binlog_format MIXED ROW",
      "DTS6030 binlog_row_metadata MINIMAL FULL",
      "DTS6031 dts@% REPLICATION SLAVE read the binlog",
      "DTS6031 dts@% BINLOG MONITOR read the binlog position (SHOW MASTER STATUS)",
    ]);
    expect(serverFindings(server({}, ["SELECT", "REPLICATION SLAVE", "REPLICATION CLIENT"], false), true).map((f) => f.args.privilege)).toEqual(["RELOAD"]);
  });
});
