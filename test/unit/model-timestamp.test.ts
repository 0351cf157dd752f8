import { describe, expect, it } from "vitest";
import { Timestamp } from "../../src/model/timestamp.js";

describe("Timestamp", () => {
  it("parses and prints microseconds", () => {
    const t = Timestamp.parse("2024-03-01T10:00:00.123456Z");
    expect(t.epochMicros).toBe(1709287200123456n);
    expect(t.withZone).toBe(true);
    expect(t.toISOString()).toBe("2024-03-01T10:00:00.123456Z");
  });

  it("keeps wall-clock timestamps without a zone", () => {
    const t = Timestamp.parse("2024-03-01 10:00:00.5");
    expect(t.withZone).toBe(false);
    expect(t.toISOString()).toBe("2024-03-01T10:00:00.500000");
  });

  it("converts offsets to UTC", () => {
    expect(Timestamp.parse("2024-03-01T12:30:00+02:30").toISOString()).toBe("2024-03-01T10:00:00.000000Z");
    expect(Timestamp.parse("2024-03-01T08:00:00-0200").toISOString()).toBe("2024-03-01T10:00:00.000000Z");
    expect(Timestamp.parse("2024-03-01T10:00:00+00").toISOString()).toBe("2024-03-01T10:00:00.000000Z");
  });

  it("reads a date alone as midnight and rounds nanoseconds", () => {
    expect(Timestamp.parse("2024-02-29").toISOString()).toBe("2024-02-29T00:00:00.000000");
    expect(Timestamp.parse("2024-03-01T10:00:00.1234565Z").toISOString()).toBe("2024-03-01T10:00:00.123457Z");
    expect(Timestamp.parse("2024-03-01T23:59:59.9999999Z").toISOString()).toBe("2024-03-02T00:00:00.000000Z");
  });

  it("handles dates before 1970 and outside 1..9999", () => {
    expect(Timestamp.parse("1969-12-31T23:59:59.999999Z").epochMicros).toBe(-1n);
    expect(new Timestamp(-1n).toISOString()).toBe("1969-12-31T23:59:59.999999Z");
    expect(Timestamp.parse("0001-01-01T00:00:00Z").toISOString()).toBe("0001-01-01T00:00:00.000000Z");
    expect(Timestamp.parse("-004713-11-24T00:00:00Z").toISOString()).toBe("-004713-11-24T00:00:00.000000Z");
    expect(Timestamp.parse("+294276-12-31T23:59:59.999999Z").toISOString()).toBe("+294276-12-31T23:59:59.999999Z");
  });

  it("agrees with Date where Date works", () => {
    for (const ms of [0, 1, -1, 951782400000, 1709287200123, -62135596800000, 253402300799999]) {
      const t = Timestamp.fromEpochMillis(ms);
      expect(t.toISOString()).toBe(new Date(ms).toISOString().replace("Z", "000Z"));
      expect(Timestamp.parse(t.toISOString()).epochMicros).toBe(t.epochMicros);
      expect(t.toDate().getTime()).toBe(ms);
    }
    expect(Timestamp.fromDate(new Date(5)).epochMicros).toBe(5000n);
    expect(new Timestamp(-1500n).toEpochMillis()).toBe(-2);
  });

  it("rejects malformed and impossible times", () => {
    for (const bad of ["", "2024-13-01", "2023-02-29", "2024-01-01T24:00:00", "2024-01-01T10:60", "01/02/2024", "2024-01-01T10:00:00+25:00", "2024-1-1"]) {
      expect(() => Timestamp.parse(bad), bad).toThrow();
    }
  });

  it("orders and compares", () => {
    const a = Timestamp.parse("2024-01-01T00:00:00Z");
    const b = Timestamp.parse("2024-01-01T00:00:00.000001Z");
    expect(a.compare(b)).toBe(-1);
    expect(b.compare(a)).toBe(1);
    expect(a.compare(Timestamp.parse("2024-01-01T01:00:00+01:00"))).toBe(0);
    expect(a.equals(new Timestamp(a.epochMicros, false))).toBe(false);
  });

  it("tells the time now", () => {
    const before = BigInt(Date.now()) * 1000n;
    const now = Timestamp.now();
    expect(now.withZone).toBe(true);
    expect(now.epochMicros >= before - 2000n && now.epochMicros <= before + 1_000_000n).toBe(true);
  });
});
