/**
 * The jsonl connectors: the sink's three formats and dead-letter lines, its repair of a torn
 * last line; the source's replay (positions kept, batches at transaction ends, resume by line
 * number) and its errors, which name the file and the line.
 */
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createSink } from "../../src/connectors/jsonl/sink.js";
import { createSource } from "../../src/connectors/jsonl/source.js";
import { Decimal } from "../../src/model/decimal.js";
import { decodeEvent, encodeEvent } from "../../src/model/json.js";
import { Timestamp } from "../../src/model/timestamp.js";
import type { Value } from "../../src/model/value.js";
import type { SinkEvent, SourceBatch, SourceCheckpoint } from "../../src/runtime/contracts.js";
import { silentLogger } from "../../src/runtime/log.js";
import { orderEvent } from "./runtime-fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "dts-jsonl-"));

async function writeLines(file: string, format: string, events: readonly SinkEvent[]): Promise<string[]> {
  const sink = createSink({ pipeline: "pipe", name: "out", options: { path: file, format }, eventOptions: {}, log: silentLogger, baseDir: dir });
  await sink.start();
  await sink.write({ events });
  await sink.close();
  return readFileSync(join(dir, file), "utf8").trimEnd().split("\n");
}

async function read(file: string, resume: SourceCheckpoint | null = null): Promise<SourceBatch[]> {
  const source = createSource({ pipeline: "p", name: "in", options: { path: file }, resume, log: silentLogger, signal: new AbortController().signal, baseDir: dir });
  await source.start();
  const batches: SourceBatch[] = [];
  try {
    for await (const batch of source.batches()) batches.push(batch);
  } finally {
    await source.close();
  }
  return batches;
}

const exact = orderEvent(1, {
  op: "update",
  before: { id: 9007199254740993n, amount: new Decimal("10.50"), at: Timestamp.parse("2024-03-01T10:00:00.123456Z"), raw: Buffer.from("hi") },
  row: { id: 9007199254740993n, amount: new Decimal("12.30"), at: Timestamp.parse("2024-03-01T10:00:00.123456Z"), raw: Buffer.from("hi") },
});

describe("jsonl sink", () => {
  it('format "event" is the lossless event line, which decodes to the same event', async () => {
    const [line] = await writeLines("event.jsonl", "event", [{ event: exact, target: "shop.orders" }]);
    expect(line).toBe(encodeEvent(exact));
    expect(line).toContain('"id":9007199254740993');
    expect(line).toContain('"amount":12.30');
    expect(decodeEvent(line!).after!["id"]).toBe(9007199254740993n);
  });

  it('format "row" is the row after the steps, and the before image of a delete', async () => {
    const removed = orderEvent(2, { op: "delete", row: { id: 2, amount: new Decimal("1.00") } });
    const out = await writeLines("row.jsonl", "row", [
      { event: exact, target: "x" },
      { event: removed, target: "x" },
    ]);
    expect(out).toEqual([
      '{"id":9007199254740993,"amount":12.30,"at":"2024-03-01T10:00:00.123456Z","raw":{"$bytes":"aGk="}}',
      '{"id":2,"amount":1.00}',
    ]);
  });

  it('format "debezium" is the Debezium envelope, exact', async () => {
    const [line] = await writeLines("debezium.jsonl", "debezium", [{ event: exact, target: "x" }]);
    const envelope = JSON.parse(line!) as Record<string, Record<string, unknown>>;
    expect(Object.keys(envelope)).toEqual(["before", "after", "source", "op", "ts_ms"]);
    expect(envelope["op"]).toBe("u");
    expect(envelope["source"]).toMatchObject({ connector: "test", name: "pipe", db: "shop", schema: "shop", table: "orders", seq: 1, snapshot: "false" });
    expect(line).toContain('"after":{"id":9007199254740993,"amount":12.30,"at":"2024-03-01T10:00:00.123456Z","raw":"aGk="}');
  });

  it("a dead-lettered event's line carries the rejection", async () => {
    const rejection = { reason: "division by zero", where: "flow:1/step:2: map { x: 1 / row.qty }" };
    const [eventLine] = await writeLines("dlq-event.jsonl", "event", [{ event: exact, target: "x", rejection }]);
    expect(eventLine).toBe(`${encodeEvent(exact).slice(0, -1)},"rejection":${JSON.stringify(rejection)}}`);
    // The jsonl source can still read it back: a dead-letter file is replayable.
    expect(decodeEvent(eventLine!)).toEqual(decodeEvent(encodeEvent(exact)));
    const [rowLine] = await writeLines("dlq-row.jsonl", "row", [{ event: orderEvent(3, { row: { id: 3 } }), target: "x", rejection }]);
    expect(JSON.parse(rowLine!)).toEqual({ id: 3, rejection });
  });

  it("appends, and cuts a torn last line left by a crash before writing after it", async () => {
    const file = "torn.jsonl";
    await writeLines(file, "row", [{ event: orderEvent(1, { row: { id: 1 } }), target: "x" }]);
    appendFileSync(join(dir, file), '{"id":2,"amo');
    const out = await writeLines(file, "row", [{ event: orderEvent(3, { row: { id: 3 } }), target: "x" }]);
    expect(out).toEqual(['{"id":1}', '{"id":3}']);
  });
});

describe("jsonl source", () => {
  const recorded = [
    orderEvent(10, { txid: "a" }),
    orderEvent(11, { txid: "a" }),
    orderEvent(12, { txid: "b" }),
    orderEvent(13, { txid: undefined as never }),
    orderEvent(14, { txid: "c" }),
  ];

  it("replays events with their recorded positions, checkpoints at transaction ends", async () => {
    writeFileSync(join(dir, "in.jsonl"), recorded.map(encodeEvent).join("\n") + "\n");
    const batches = await read("in.jsonl");
    const events = batches.flatMap((b) => b.events);
    expect(events.map(encodeEvent)).toEqual(recorded.map(encodeEvent));
    const last = batches.at(-1)!;
    expect(last.caughtUp).toBe(true);
    expect(last.checkpoint).toEqual({ position: recorded[4]!.source.position, state: { line: 5 } });
  });

  it("resumes after the checkpoint's line, and checks it is the same file", async () => {
    writeFileSync(join(dir, "resume.jsonl"), recorded.map(encodeEvent).join("\n") + "\n");
    const batches = await read("resume.jsonl", { position: recorded[1]!.source.position, state: { line: 2 } });
    expect(batches.flatMap((b) => b.events.map((e) => e.source.position.token))).toEqual(["12", "13", "14"]);
    await expect(read("resume.jsonl", { position: recorded[0]!.source.position, state: { line: 2 } })).rejects.toThrow(
      /resume\.jsonl:2 holds position 11, but the checkpoint says 10; was the file replaced\?/,
    );
  });

  it("splits batches only at transaction ends", async () => {
    // 3000 events in transactions of 7: every batch must end where a txid changes.
    const events = Array.from({ length: 3000 }, (_, i) => orderEvent(i + 1, { txid: `t${Math.floor(i / 7)}` }));
    writeFileSync(join(dir, "big.jsonl"), events.map(encodeEvent).join("\n") + "\n");
    const batches = await read("big.jsonl");
    expect(batches.length).toBeGreaterThan(1);
    let total = 0;
    for (const batch of batches) {
      total += batch.events.length;
      expect(total % 7 === 0 || total === 3000).toBe(true);
      expect(batch.checkpoint!.state).toEqual({ line: total });
    }
    expect(total).toBe(3000);
  });

  it("a malformed line is an error naming the file and the line", async () => {
    writeFileSync(join(dir, "bad.jsonl"), `${encodeEvent(recorded[0]!)}\n{"op":"insert"\n`);
    await expect(read("bad.jsonl")).rejects.toThrow(/bad\.jsonl:2: not a change event/);
    writeFileSync(join(dir, "bad2.jsonl"), `${encodeEvent(recorded[0]!)}\n{"op":"upsert"}\n`);
    await expect(read("bad2.jsonl")).rejects.toThrow(/bad2\.jsonl:2: not a change event: "op" must be/);
  });

  it("a missing file is an error at start", async () => {
    await expect(read("missing.jsonl")).rejects.toThrow(/jsonl: cannot open .*missing\.jsonl/);
  });

  it("reads back exactly what the sink wrote (values of every kind)", async () => {
    const values: Value[] = [null, true, 1.5, -7, 9223372036854775807n, new Decimal("0.000100"), "ü€\u2028", Timestamp.parse("1999-12-31T23:59:59.999999Z"), Buffer.from([0, 255])];
    const event = orderEvent(1, { row: { id: 1, values, nested: { deep: [new Decimal("1.10")] } } });
    await writeLines("round.jsonl", "event", [{ event, target: "x" }]);
    const [batch] = await read("round.jsonl");
    expect(encodeEvent(batch!.events[0]!)).toBe(encodeEvent(event));
  });
});
