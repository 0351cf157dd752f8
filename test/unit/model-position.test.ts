import { describe, expect, it } from "vitest";
import {
  bigIntToLsn,
  binlogPosition,
  comparePositions,
  lsnToBigInt,
  maxPosition,
  parseBinlogToken,
  pgLsnPosition,
  position,
  seqPosition,
} from "../../src/model/position.js";

describe("PostgreSQL LSNs", () => {
  it("convert to and from 64-bit numbers", () => {
    expect(lsnToBigInt("0/16B3748")).toBe(0x16b3748n);
    expect(lsnToBigInt("1/0")).toBe(1n << 32n);
    expect(bigIntToLsn(0x16b3748n)).toBe("0/16B3748");
    expect(bigIntToLsn((0xabn << 32n) | 0xffn)).toBe("AB/FF");
    expect(bigIntToLsn(lsnToBigInt("FFFFFFFF/FFFFFFFF"))).toBe("FFFFFFFF/FFFFFFFF");
    expect(pgLsnPosition("0/016b3748").token).toBe("0/16B3748");
    expect(() => lsnToBigInt("16B3748")).toThrow(SyntaxError);
    expect(() => bigIntToLsn(-1n)).toThrow(RangeError);
  });

  it("order numerically, not as text", () => {
    const small = pgLsnPosition("0/9FFFFF");
    const large = pgLsnPosition("0/16B3748");
    expect("0/9FFFFF" > "0/16B3748").toBe(true); // as text the order would be wrong
    expect(comparePositions(small, large)).toBe(-1);
    expect(comparePositions(large, small)).toBe(1);
    expect(comparePositions(pgLsnPosition("1/0"), pgLsnPosition("0/FFFFFFFF"))).toBe(1);
    expect(comparePositions(pgLsnPosition("0/A"), position("pg-lsn", "0/a"))).toBe(0);
  });
});

describe("MySQL binlog positions", () => {
  it("order by file sequence, then offset", () => {
    const sorted = [
      binlogPosition("mysql-bin.000010", 4),
      binlogPosition("mysql-bin.000003", 4567),
      binlogPosition("mysql-bin.000003", 999),
      binlogPosition("mysql-bin.000009", 120000),
    ].sort(comparePositions);
    expect(sorted.map((p) => p.token)).toEqual([
      "mysql-bin.000003:999",
      "mysql-bin.000003:4567",
      "mysql-bin.000009:120000",
      "mysql-bin.000010:4",
    ]);
  });

  it("parse tokens", () => {
    expect(parseBinlogToken("mysql-bin.000003:4567")).toEqual({ base: "mysql-bin", sequence: 3n, offset: 4567n, rest: "" });
    expect(parseBinlogToken("host.example-bin.000012:4;gtid=a:1-5")).toEqual({
      base: "host.example-bin",
      sequence: 12n,
      offset: 4n,
      rest: ";gtid=a:1-5",
    });
    expect(() => parseBinlogToken("mysql-bin:4")).toThrow(SyntaxError);
  });
});

describe("other kinds", () => {
  it("order seq numerically", () => {
    expect(comparePositions(seqPosition(9), seqPosition(10))).toBe(-1);
    expect(comparePositions(seqPosition(2n ** 70n), seqPosition(2n ** 70n))).toBe(0);
    expect(() => comparePositions(position("seq", "x"), seqPosition(1))).toThrow(SyntaxError);
  });

  it("order unknown kinds as text and refuse mixed kinds", () => {
    expect(comparePositions(position("kafka", "a"), position("kafka", "b"))).toBe(-1);
    expect(() => comparePositions(seqPosition(1), pgLsnPosition("0/1"))).toThrow(TypeError);
    expect(maxPosition(seqPosition(3), seqPosition(20)).token).toBe("20");
  });
});
