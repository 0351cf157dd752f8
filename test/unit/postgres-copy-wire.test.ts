/**
 * copy-wire.ts without a server: CopyData messages cut into socket reads at every possible
 * place — inside a header, inside a row, between messages — with the messages a server may
 * put around and between them, must come out as the same rows, in chunks of whole messages,
 * and the bytes after CopyDone (or from an error on) must go back to node-postgres intact.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { CopyOut, framesOf, lastRow, lastRowOf, MessageSplitter, rowsOf, rowsText, takeCopyData } from "../../src/connectors/postgres/copy-wire.js";

function message(code: string, body: Buffer | string = ""): Buffer {
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const header = Buffer.alloc(5);
  header.write(code, 0, "latin1");
  header.writeUInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

/** A socket as node-postgres' connection holds it, fed by hand, and what node-postgres was given back. */
class FakeSocket extends EventEmitter {
  private queue: Buffer[] = [];
  readonly givenBack: Buffer[] = [];
  resumed = false;
  destroyed = false;

  constructor() {
    super();
    this.on("data", (chunk: Buffer) => this.givenBack.push(chunk));
  }

  feed(chunk: Buffer): void {
    this.queue.push(chunk);
    this.emit("readable");
  }

  read(): Buffer | null {
    return this.queue.shift() ?? null;
  }

  pause(): this {
    return this;
  }

  resume(): this {
    this.resumed = true;
    return this;
  }

  destroy(): void {
    this.destroyed = true;
  }
}

function started(options: { largeMessageBytes?: number } = {}): { copy: CopyOut; socket: FakeSocket; queries: string[] } {
  const socket = new FakeSocket();
  const queries: string[] = [];
  const copy = new CopyOut("COPY (SELECT 1) TO STDOUT", options);
  copy.submit({ stream: socket as unknown as NodeJS.ReadableStream & NodeJS.WritableStream, query: (text) => queries.push(text) });
  return { copy, socket, queries };
}

const rows = Array.from({ length: 7 }, (_, i) => `${i + 1}\trow ${i + 1} é\t\\N\n`);
const stream = Buffer.concat([
  message("H", Buffer.from([0, 0, 3, 0, 0, 0, 0, 0, 0])),
  ...rows.slice(0, 3).map((row) => message("d", row)),
  message("N", "SNOTICE\0"),
  ...rows.slice(3).map((row) => message("d", row)),
  message("c"),
]);
const after = Buffer.concat([message("C", "COPY 7\0"), message("Z", "I")]);

async function readAll(copy: CopyOut, limit: number, maxBytes?: number): Promise<{ texts: string[]; counts: number[]; lasts: string[]; chunks: Buffer[][] }> {
  const texts: string[] = [];
  const counts: number[] = [];
  const lasts: string[] = [];
  const chunks: Buffer[][] = [];
  for (;;) {
    const frames = await copy.next(limit, maxBytes);
    chunks.push(frames.data);
    counts.push(frames.count);
    texts.push(rowsText(frames));
    if (frames.count > 0) lasts.push(lastRowOf(frames));
    if (frames.last) return { texts, counts, lasts, chunks };
  }
}

describe("copy-wire: COPY out", () => {
  it.each([
    ["small rows kept as views of the reads", undefined],
    ["every row assembled into a buffer of its own size", 8],
  ])("gives the same rows in chunks of whole messages, wherever the socket reads cut the bytes: %s", async (_, largeMessageBytes) => {
    const whole = Buffer.concat([stream, after]);
    for (let cut = 1; cut < whole.length; cut++) {
      for (const second of [Math.min(cut + 1, whole.length), Math.min(cut + 6, whole.length), whole.length]) {
        const { copy, socket, queries } = started({ largeMessageBytes });
        expect(queries).toEqual(["COPY (SELECT 1) TO STDOUT"]);
        const reading = readAll(copy, 3);
        socket.feed(whole.subarray(0, cut));
        socket.feed(whole.subarray(cut, second));
        if (second < whole.length) socket.feed(whole.subarray(second));
        // Once CopyDone is read, node-postgres reads the socket: what it still holds flows to it.
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
        for (let chunk = socket.read(); chunk !== null; chunk = socket.read()) socket.emit("data", chunk);
        copy.handleReadyForQuery();
        const { texts, counts, lasts } = await Promise.race([
          reading,
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`stuck: cut at ${cut}, ${second}`)), 500)),
        ]);
        expect(texts.join(""), `cut at ${cut}, ${second}`).toBe(rows.join(""));
        expect(counts.slice(0, -1).every((count) => count === 3)).toBe(true);
        expect(counts.reduce((a, b) => a + b, 0)).toBe(7);
        expect(lasts.at(-1)).toBe("7\trow 7 é\t\\N");
        // node-postgres reads the command's completion itself, byte for byte.
        expect(Buffer.concat(socket.givenBack).equals(after), `cut at ${cut}, ${second}`).toBe(true);
      }
    }
  });

  it("hands an error back to node-postgres from the error message on, and fails the read", async () => {
    const { copy, socket } = started();
    const error = message("E", "SERROR\0Mcanceled\0\0");
    const reading = readAll(copy, 100);
    // After the COPY's start and one row: a server sends an error between messages, never inside one.
    const boundary = 14 + message("d", rows[0]!).length;
    socket.feed(Buffer.concat([stream.subarray(0, boundary), error, message("Z", "I")]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(socket.givenBack).subarray(0, error.length).equals(error)).toBe(true);
    copy.handleError(new Error("canceled"));
    await expect(reading).rejects.toThrow("canceled");
  });

  it("reads the socket only when asked for a chunk, so an unread chunk holds the server back", async () => {
    const { copy, socket } = started();
    const boundary = 14 + message("d", rows[0]!).length;
    socket.feed(stream.subarray(0, boundary));
    socket.feed(stream.subarray(boundary, boundary + 3));
    socket.feed(stream.subarray(boundary + 3));
    await new Promise((resolve) => setImmediate(resolve));
    const first = await copy.next(1);
    expect(first.count).toBe(1);
    // The later socket reads are still queued: nothing asked for them.
    expect((socket as unknown as { queue: Buffer[] }).queue).toHaveLength(2);
  });

  it("abandons a COPY left unfinished by destroying the connection", () => {
    const { copy, socket } = started();
    copy.abandon();
    expect(socket.destroyed).toBe(true);
  });
});

describe("copy-wire: large rows", () => {
  const big = `1\t${"ab".repeat(5000)}\t\\N\n`;
  const bigStream = Buffer.concat([
    message("H", Buffer.from([0, 0, 3, 0, 0, 0, 0, 0, 0])),
    message("d", rows[0]!),
    message("d", big),
    message("d", rows[1]!),
    message("c"),
  ]);

  it("assembles a large row that spans socket reads into one buffer of its size, and bounds chunks by bytes", async () => {
    for (const read of [7, 1000, 4096]) {
      const { copy, socket } = started({ largeMessageBytes: 1024 });
      const reading = readAll(copy, 100, 2048);
      for (let at = 0; at < bigStream.length; at += read) socket.feed(bigStream.subarray(at, at + read));
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      copy.handleReadyForQuery();
      const { texts, counts, chunks } = await reading;
      expect(texts.join("")).toBe(rows[0]! + big + rows[1]!);
      // The large row is a chunk of its own: the rows before and after it would pass 2048 bytes with it.
      expect(counts.filter((count) => count > 0)).toEqual([1, 1, 1]);
      expect(chunks[1]!.length, `reads of ${read}`).toBe(1);
      expect(chunks[1]![0]!.length).toBe(5 + Buffer.byteLength(big));
      const frames = { data: chunks[1]!, count: 1, bytes: chunks[1]![0]!.length };
      expect(lastRow(frames).buffer).toBe(chunks[1]![0]!.buffer); // a view, not a copy
      expect(rowsOf(frames).map((row) => row.toString())).toEqual([big.slice(0, -1)]);
    }
  });
});

describe("copy-wire: CopyData taken from node-postgres", () => {
  const copyBoth = [
    message("W", Buffer.from([0, 0, 0])),
    message("d", "w small frame"),
    message("d", Buffer.alloc(3000, 7)),
    message("N", "SNOTICE\0"),
    message("d", "k keepalive"),
    message("c"),
    message("C", "COPY 0\0"),
    message("Z", "I"),
  ];
  const whole = Buffer.concat(copyBoth);

  it("hands over each CopyData payload whole and every other message to node-postgres, wherever the reads cut", () => {
    for (const read of [1, 3, 5, 6, 64, 1000, whole.length]) {
      // FakeSocket's one data listener stands for node-postgres': it records what it is given.
      const socket = new FakeSocket();
      const payloads: Buffer[] = [];
      takeCopyData(socket as unknown as NodeJS.ReadableStream, (payload) => payloads.push(Buffer.from(payload)));
      for (let at = 0; at < whole.length; at += read) socket.emit("data", whole.subarray(at, at + read));
      expect(payloads.map((p) => p.toString("latin1")), `reads of ${read}`).toEqual([
        "w small frame",
        Buffer.alloc(3000, 7).toString("latin1"),
        "k keepalive",
      ]);
      expect(Buffer.concat(socket.givenBack).equals(Buffer.concat([copyBoth[0]!, copyBoth[3]!, copyBoth[5]!, copyBoth[6]!, copyBoth[7]!])), `reads of ${read}`).toBe(true);
    }
  });

  it("gives a message that spans reads in one buffer of exactly its size", () => {
    const messages: Buffer[] = [];
    const splitter = new MessageSplitter((m) => messages.push(m));
    const large = message("d", Buffer.alloc(10_000, 1));
    for (let at = 0; at < large.length; at += 999) splitter.push(large.subarray(at, at + 999));
    expect(messages).toHaveLength(1);
    expect(messages[0]!.buffer.byteLength).toBe(large.length);
    expect(messages[0]!.equals(large)).toBe(true);
  });
});

describe("copy-wire: frames", () => {
  it("frames COPY text one message per line, and takes it apart again", () => {
    const frames = framesOf(rows.join(""));
    expect(frames.count).toBe(7);
    expect(frames.bytes).toBe(Buffer.concat(frames.data).length);
    expect(rowsText(frames)).toBe(rows.join(""));
    expect(lastRowOf(frames)).toBe("7\trow 7 é\t\\N");
    expect(framesOf("")).toEqual({ data: [], count: 0, bytes: 0 });
    expect(() => framesOf("no newline")).toThrow("newline");
  });
});
