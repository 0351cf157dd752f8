/**
 * The spool: records come back in order and whole, across segments; space comes back as
 * segments are read; a record is readable only after its fsync; what a crash tore off the
 * tail is cut away; and a spooled item (typed JSON) reads back with every value's type.
 */
import { appendFile, mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Decimal } from "../../src/model/decimal.js";
import { JSON_NULL } from "../../src/model/value.js";
import { seqPosition } from "../../src/model/position.js";
import { Timestamp } from "../../src/model/timestamp.js";
import { fromTagged, toTagged } from "../../src/model/typed-json.js";
import type { Value } from "../../src/model/value.js";
import type { LaneItem } from "../../src/runtime/sink-lane.js";
import { recoverSpool, SinkSpool } from "../../src/runtime/sink-spool.js";
import { decodeItem, encodeItem } from "../../src/runtime/spooled-item.js";
import { orderEvent } from "./runtime-fixtures.js";

async function folder(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), "dts-spool-test-")), "sink");
}

const record = (n: number, size = 100): Buffer => Buffer.from(`${n}:`.padEnd(size, "x"));

describe("sink spool", () => {
  it("gives records back in order across segments, and frees a segment once it is read", async () => {
    const dir = await folder();
    const { spool } = await SinkSpool.open({ dir, segmentBytes: 1000 });
    for (let n = 0; n < 50; n++) {
      spool.append(record(n));
      await spool.settled();
    }
    // 50 records of 108 bytes in segments of at most 1000: several files.
    const files = (await readdir(dir)).filter((name) => name.endsWith(".seg"));
    expect(files.length).toBeGreaterThan(4);
    expect(spool.bytes).toBe(50 * 108);
    expect(spool.backlogRecords).toBe(50);
    const read: string[] = [];
    for (let n = 0; n < 25; n++) read.push((await spool.next())!.toString().split(":")[0]!);
    // The first segments were read to their end: their space is back.
    expect(spool.bytes).toBeLessThan(50 * 108 - 1000);
    for (let n = 25; n < 50; n++) read.push((await spool.next())!.toString().split(":")[0]!);
    expect(read).toEqual(Array.from({ length: 50 }, (_, n) => String(n)));
    expect(await spool.next()).toBeUndefined();
    expect(spool.empty).toBe(true);
    await spool.reset();
    expect(spool.bytes).toBe(0);
    expect((await readdir(dir)).length).toBe(0);
    // It takes records again after being emptied.
    spool.append(record(99));
    expect((await spool.next())!.toString().startsWith("99:")).toBe(true);
    await spool.close();
  });

  it("counts appends not yet written towards its size, for the cap", async () => {
    const dir = await folder();
    const { spool } = await SinkSpool.open({ dir });
    spool.append(record(1, 1000));
    // Before the write: already counted.
    expect(spool.bytes).toBe(1008);
    expect(spool.empty).toBe(false);
    await spool.settled();
    expect(spool.bytes).toBe(1008);
    expect((await stat(join(dir, (await readdir(dir))[0]!))).size).toBe(1008);
    await spool.close();
  });

  it("fsyncs a new segment's folder entry before its records, and each write before they can be read", async () => {
    const dir = await folder();
    const events: string[] = [];
    const { spool } = await SinkSpool.open({
      dir,
      segmentBytes: 250,
      onSync: (what, _path, records) => events.push(`${what}:${records}`),
      onFlushed: () => events.push("readable"),
    });
    spool.append(record(1));
    spool.append(record(2));
    await spool.settled();
    spool.append(record(3));
    spool.append(record(4));
    await spool.settled();
    // Two records fit a segment of 250 bytes: the second write starts a new one.
    expect(events).toEqual(["folder:0", "segment:2", "readable", "folder:0", "segment:2", "readable"]);
    await spool.close();
  });

  it("after a crash, keeps the whole records and cuts off a torn or damaged tail", async () => {
    const dir = await folder();
    const { spool } = await SinkSpool.open({ dir, segmentBytes: 10_000 });
    for (let n = 0; n < 5; n++) spool.append(record(n));
    await spool.settled();
    await spool.abandon();
    const [file] = (await readdir(dir)).filter((name) => name.endsWith(".seg"));
    const path = join(dir, file!);
    // A write cut short: a header announcing 100 bytes, and only 10 of them.
    const header = Buffer.alloc(8);
    header.writeUInt32LE(100, 0);
    await appendFile(path, Buffer.concat([header, Buffer.alloc(10, 1)]));
    const torn = await recoverSpool(dir, { payloads: true });
    expect(torn.records).toBe(5);
    expect(torn.tornBytes).toBe(18);
    expect(torn.payloads!.map((p) => p.toString().split(":")[0])).toEqual(["0", "1", "2", "3", "4"]);
    expect((await stat(path)).size).toBe(5 * 108);
    // A damaged record (a flipped byte in the third): it and what follows are cut off.
    const bytes = await readFile(path);
    bytes[2 * 108 + 20] ^= 0xff;
    await writeFile(path, bytes);
    const damaged = await recoverSpool(dir);
    expect(damaged.records).toBe(2);
    expect(damaged.tornBytes).toBe(3 * 108);
    // A new run finds the leftover, says what it held, and starts empty.
    const reopened = await SinkSpool.open({ dir });
    expect(reopened.leftover).toMatchObject({ records: 2 });
    expect(reopened.spool.bytes).toBe(0);
    expect((await readdir(dir)).length).toBe(0);
    await reopened.spool.close();
  });
});

describe("spooled items", () => {
  it("typed JSON gives back every value with its type", () => {
    const values: Value[] = [
      null,
      true,
      0,
      -0,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      9007199254740993n,
      -1n,
      new Decimal("12.30"),
      new Decimal("1500"),
      new Timestamp(1_700_000_000_123_456n, true),
      new Timestamp(-5n, false),
      Buffer.from([0, 255, 7]),
      "text",
      [1, "a", [null]],
      { $bytes: "not bytes", nested: { $r: 1, x: 2n } },
      JSON_NULL,
      [JSON_NULL, null],
    ];
    for (const value of values) {
      const back = fromTagged(JSON.parse(JSON.stringify(toTagged(value))));
      expect(back).toEqual(value);
      if (value === JSON_NULL) expect(back).toBe(JSON_NULL);
      expect(Object.is(back, -0)).toBe(Object.is(value, -0));
      if (value instanceof Decimal) expect((back as Decimal).scale).toBe(value.scale);
    }
  });

  it("an item reads back as it was: events, absent columns, checkpoint, transaction", () => {
    const event = orderEvent(7, {
      op: "update",
      row: { id: 7n, amount: new Decimal("10.50"), at: new Timestamp(1n, true), blob: Buffer.from("x"), doc: { a: [1, 2] } },
    });
    // `note` is absent from after: unchanged, not null.
    const item: LaneItem = {
      source: "s",
      seq: 3,
      at: 1234,
      checkpoint: { position: seqPosition(7), state: { tables: ["a"] } },
      checkpoints: { "s/db": { position: seqPosition(7) } },
      transaction: { source: "s", continues: true, open: false },
      events: [{ event, target: "public.orders" }, { event, target: "x", rejection: { reason: "r", where: "w" } }],
    };
    const back = decodeItem(encodeItem(item));
    expect(back).toEqual(item);
    expect(back.events[0]!.event.after).not.toHaveProperty("note");
    expect(typeof back.events[0]!.event.key["id"]).toBe("bigint");
  });
});
