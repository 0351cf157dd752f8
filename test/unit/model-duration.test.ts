/**
 * Durations as written in a pipeline (`retry_for`): the text the checker accepts is exactly
 * the text the runtime reads, with the same meaning.
 */
import { describe, expect, it } from "vitest";
import { DURATION_PATTERN, formatDuration, parseDuration } from "../../src/model/duration.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["1d2h3m4s5ms", 93_784_005],
    ["0s", 0],
    ["forever", Infinity],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(true);
  });

  it.each([
    ["10 minutes", "10m"],
    ["10min", "10m"],
    ["2 hours", "2h"],
    ["30", "30s"],
    ["infinite", "forever"],
  ])("%s is refused, with %s suggested", (text, suggestion) => {
    expect(parseDuration(text)).toMatchObject({ ok: false, suggestion });
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(false);
  });

  it.each(["", "1m1m", "30m1h", "1.5h", "-1s", "m", "Forever"])("%j is refused", (text) => {
    expect(parseDuration(text).ok).toBe(false);
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(false);
  });

  it("refuses a duration too long to count in milliseconds", () => {
    expect(parseDuration("99999999999999999999d")).toMatchObject({ ok: false, problem: expect.stringContaining("forever") });
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0ms"],
    [850, "850ms"],
    [1000, "1s"],
    [1050, "1.0s"],
    [12_345, "12.3s"],
    [59_999, "59.9s"],
    [60_000, "1m00s"],
    [245_000, "4m05s"],
    [3_600_000, "1h00m"],
    [7_260_000, "2h01m"],
    [Infinity, "forever"],
  ])("%d ms is %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
