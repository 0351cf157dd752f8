/**
 * COPY as the wire carries it. A snapshot chunk leaves the source server as CopyData messages
 * (`d`, a 4-byte length, one row of COPY text) and enters the target server as CopyData
 * messages of the same form: so a chunk is kept as the bytes of its messages, framing
 * included, cut at message boundaries, and sent on to the target as they are. Nothing is
 * parsed but the 5-byte headers (to count rows and find where to cut), nothing is copied, and
 * no object is made per row — a COPY through node-postgres and pg-copy-streams takes every
 * message apart into its own Buffer and frames it again on the way out, which for a million
 * rows was most of the garbage the collector had to clear.
 *
 * A message of a large row (`LARGE_MESSAGE_BYTES` or more: a 50 MB bytea is 100 MB of hex
 * text) that does not end in the socket read it starts in is copied, as it arrives, into one
 * buffer of its exact size, rather than kept as hundreds of views that hold their socket reads
 * alive: its row can then be read in place (`rowsOf`), with no concatenation of it ever made.
 * Everything that reads a row reads only the part it needs (`lastRow` gives a view, whose
 * key fields alone become text).
 *
 * Both sides are node-postgres "submittables" (objects `client.query()` runs in its queue):
 *   - `CopyOut` takes the socket from node-postgres while the COPY runs (as pg-copy-streams'
 *     copy-to does), reads it only when asked for the next chunk — so a chunk nobody asks for
 *     leaves the socket paused and the server waiting — and hands the socket back, with the
 *     bytes after the last CopyData, for node-postgres to read the command's completion;
 *   - `CopyIn` sends a `COPY … FROM STDIN`, then the framed bytes, then CopyDone, and
 *     resolves when the server is ready for the next query.
 *
 * A logical replication stream is CopyData too, of any size (a row of a 50 MB bytea is a 100
 * MB message). node-postgres assembles a message larger than its read buffer by doubling the
 * buffer, holding up to four times the message at once; `takeCopyData` takes the CopyData
 * messages of a connection off it and hands them over whole, each large one in a buffer of
 * its exact size, and passes every other message on to node-postgres.
 */
import type pg from "pg";

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const ERROR_RESPONSE = 0x45; // E
const HEADER = 5;
const EMPTY = Buffer.alloc(0);

/** A message this large is assembled into one buffer of its size when it spans socket reads. */
export const LARGE_MESSAGE_BYTES = 1 << 20;

/** The text of COPY rows framed as CopyData messages, each message exactly one row. */
export interface CopyFrames {
  /** The messages' bytes, split anywhere between buffers; together, whole messages. */
  readonly data: Buffer[];
  /** Messages (rows) in `data`. */
  readonly count: number;
  /** Their length in bytes, framing included. */
  readonly bytes: number;
}

/**
 * The row of COPY text in the last message of `frames`, without its newline: a view of the
 * message when it lies in one buffer (a large one always does), else a copy of it.
 */
export function lastRow(frames: CopyFrames): Buffer {
  if (frames.count === 0) return EMPTY;
  // Walk the headers from the start: a message may span buffers, so lengths are read across them.
  let last = 0;
  let at = 0;
  const total = frames.bytes;
  const byteAt = byteReader(frames.data);
  while (at < total) {
    last = at;
    at += 1 + readLength(byteAt, at + 1);
  }
  const payload = slice(frames.data, last + HEADER, at);
  return payload[payload.length - 1] === 0x0a ? payload.subarray(0, payload.length - 1) : payload;
}

export function lastRowOf(frames: CopyFrames): string {
  return lastRow(frames).toString("utf8");
}

/** Whether a message of `frames` is `LARGE_MESSAGE_BYTES` or more: its rows are best read one by one (`rowsOf`). */
export function holdsLargeRow(frames: CopyFrames): boolean {
  return frames.data.some((piece) => piece.length >= LARGE_MESSAGE_BYTES);
}

/** Each row's COPY text, without its newline: views where a message lies in one buffer. */
export function rowsOf(frames: CopyFrames): Buffer[] {
  const rows: Buffer[] = [];
  const byteAt = byteReader(frames.data);
  for (let at = 0; at < frames.bytes; ) {
    const end = at + 1 + readLength(byteAt, at + 1);
    const payload = slice(frames.data, at + HEADER, end);
    rows.push(payload[payload.length - 1] === 0x0a ? payload.subarray(0, payload.length - 1) : payload);
    at = end;
  }
  return rows;
}

/** The rows' COPY text, framing removed: one line per row, each ending with its newline. */
export function rowsText(frames: CopyFrames): string {
  const whole = frames.data.length === 1 ? frames.data[0]! : Buffer.concat(frames.data, frames.bytes);
  const parts: Buffer[] = [];
  for (let at = 0; at < whole.length; ) {
    const end = at + 1 + whole.readUInt32BE(at + 1);
    parts.push(whole.subarray(at + HEADER, end));
    at = end;
  }
  return Buffer.concat(parts).toString("utf8");
}

/** COPY text (whole lines, each ending in a newline) framed as one CopyData message per line. */
export function framesOf(text: string): CopyFrames {
  const data: Buffer[] = [];
  let count = 0;
  let bytes = 0;
  for (let start = 0; start < text.length; ) {
    const end = text.indexOf("\n", start) + 1;
    if (end === 0) throw new Error("COPY text must end with a newline");
    const row = Buffer.from(text.slice(start, end), "utf8");
    const header = Buffer.allocUnsafe(HEADER);
    header[0] = COPY_DATA;
    header.writeUInt32BE(row.length + 4, 1);
    data.push(header, row);
    bytes += HEADER + row.length;
    count++;
    start = end;
  }
  return { data, count, bytes };
}

function byteReader(data: readonly Buffer[]): (offset: number) => number {
  let piece = 0;
  let base = 0;
  return (offset) => {
    while (offset >= base + data[piece]!.length) base += data[piece++]!.length;
    while (offset < base) base -= data[--piece]!.length;
    return data[piece]![offset - base]!;
  };
}

function readLength(byteAt: (offset: number) => number, offset: number): number {
  return ((byteAt(offset) << 24) | (byteAt(offset + 1) << 16) | (byteAt(offset + 2) << 8) | byteAt(offset + 3)) >>> 0;
}

/** Bytes [from, to) of the pieces taken together. */
function slice(data: readonly Buffer[], from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  let base = 0;
  for (const piece of data) {
    const start = Math.max(from, base);
    const end = Math.min(to, base + piece.length);
    if (start < end) parts.push(piece.subarray(start - base, end - base));
    base += piece.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** What node-postgres' Connection gives a submittable: its socket, and a way to send a query. */
interface Connection {
  readonly stream: NodeJS.ReadableStream & NodeJS.WritableStream;
  query(text: string): void;
}

/**
 * `COPY … TO STDOUT`, read in chunks of whole messages. `client.query(copyOut)` starts it;
 * `next(limit, maxBytes)` gives the next chunk of up to `limit` rows, fewer only at the end or
 * when they would pass `maxBytes` (a chunk always holds at least one row, however large).
 */
export class CopyOut {
  private connection: Connection | undefined;
  private pgDataHandler: ((chunk: Buffer) => void) | undefined;
  /** Bytes read off the socket and not yet given out. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The COPY's data ended (CopyDone seen), or it failed. */
  private ended = false;
  private failure: Error | undefined;
  /** Resolves when the socket may have more to read, the command completed, or it failed. */
  private wake: (() => void) | undefined;
  private readonly onReadable = (): void => this.wake?.();
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;

  /** A row message this large is copied into one buffer of its size (`LARGE_MESSAGE_BYTES`). */
  private readonly largeMessageBytes: number;

  constructor(
    readonly text: string,
    options: { readonly largeMessageBytes?: number } = {},
  ) {
    this.largeMessageBytes = options.largeMessageBytes ?? LARGE_MESSAGE_BYTES;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Awaited by next() only at the end; until then a failure must not count as unhandled.
    this.done.catch(() => {});
  }

  // ------------------------------------------------------------------ node-postgres' side

  submit(connection: Connection): void {
    this.connection = connection;
    const socket = connection.stream;
    const handlers = socket.listeners("data");
    if (handlers.length !== 1) throw new Error(`COPY: expected node-postgres' one data listener on its socket, found ${handlers.length}`);
    this.pgDataHandler = handlers[0] as (chunk: Buffer) => void;
    socket.removeListener("data", this.pgDataHandler);
    socket.pause();
    socket.on("readable", this.onReadable);
    connection.query(this.text);
  }

  handleError(error: Error): void {
    this.fail(error);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.resolveDone();
    this.wake?.();
  }

  // ------------------------------------------------------------------ the reader's side

  /** The next chunk: up to `limit` rows and about `maxBytes`, whole messages; `last` once the COPY's data ended. */
  async next(limit: number, maxBytes = Infinity): Promise<CopyFrames & { readonly last: boolean }> {
    const data: Buffer[] = [];
    let count = 0;
    let bytes = 0;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      // Give out whole messages from what was read, up to the limits.
      while (count < limit && bytes < maxBytes && this.pending.length > 0) {
        const taken = this.takeMessages(limit - count, maxBytes - bytes, count === 0);
        if (taken === null) break;
        data.push(...taken.data);
        count += taken.count;
        bytes += taken.bytes;
      }
      if (count >= limit || (count > 0 && bytes >= maxBytes) || (count > 0 && this.wouldPass(maxBytes - bytes))) return { data, count, bytes, last: false };
      if (this.ended && this.pendingBytes === 0) {
        await this.done;
        return { data, count, bytes, last: true };
      }
      if (!this.readSocket()) await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** Stops reading a COPY that is not finished: the connection is of no further use. */
  abandon(): void {
    if (this.ended && this.failure === undefined) return;
    this.fail(new Error("COPY abandoned"));
    (this.connection?.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
  }

  /**
   * Reads what the socket has into `pending`, up to the end of the CopyData; false when it had
   * nothing. At the end, the rest (CommandComplete, ReadyForQuery) goes back to node-postgres.
   */
  private readSocket(): boolean {
    if (this.ended) return false;
    const socket = this.connection!.stream;
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) return false;
    this.scan(chunk);
    return true;
  }

  /** Where the byte stream is: bytes left of the current message, whether it is a row, a split header. */
  private remaining = 0;
  private inRow = false;
  private carry: Buffer = EMPTY;
  /** A large row message being copied into a buffer of its size, and how much of it is in. */
  private assembling: { readonly message: Buffer; filled: number } | undefined;

  /**
   * Keeps the CopyData messages of a chunk of socket bytes (as views of the chunk, framing
   * included); skips the COPY's start and any notice; at CopyDone or an error, gives the socket
   * back to node-postgres with the bytes after CopyDone, or from the error on.
   */
  private scan(chunk: Buffer): void {
    let at = 0;
    let keepFrom = -1;
    const keep = (end: number): void => {
      if (keepFrom !== -1 && end > keepFrom) {
        this.pending.push(chunk.subarray(keepFrom, end));
        this.pendingBytes += end - keepFrom;
      }
      keepFrom = -1;
    };
    if (this.remaining > 0) {
      const n = Math.min(this.remaining, chunk.length);
      if (this.assembling !== undefined) this.assemble(chunk, 0, n);
      else if (this.inRow) keepFrom = 0;
      at = n;
      this.remaining -= n;
    }
    while (at < chunk.length) {
      const carried = this.carry.length;
      if (carried + chunk.length - at < HEADER) {
        keep(at);
        this.carry = Buffer.concat([this.carry, chunk.subarray(at)]);
        return;
      }
      let code: number;
      let body: number;
      if (carried === 0) {
        // Read in place: a view per message would be a million objects for a million rows.
        code = chunk[at]!;
        body = chunk.readUInt32BE(at + 1) - 4;
      } else {
        const header = Buffer.concat([this.carry, chunk.subarray(at, at + HEADER - carried)]);
        code = header[0]!;
        body = header.readUInt32BE(1) - 4;
      }
      if (code === COPY_DONE || code === ERROR_RESPONSE) {
        keep(at);
        this.ended = true;
        const rest = carried === 0 ? chunk.subarray(at) : Buffer.concat([this.carry, chunk.subarray(at)]);
        this.carry = EMPTY;
        // CopyDone is ours to consume; an error is node-postgres' to read.
        this.giveBack(code === COPY_DONE ? rest.subarray(HEADER + body) : rest);
        return;
      }
      this.inRow = code === COPY_DATA;
      if (this.inRow && body + HEADER >= this.largeMessageBytes && at + HEADER - carried + body > chunk.length) {
        // A large row that goes on in the next reads: into a buffer of its own size, from here.
        keep(at);
        const message = Buffer.allocUnsafe(HEADER + body);
        this.carry.copy(message, 0);
        chunk.copy(message, carried, at, at + HEADER - carried);
        this.carry = EMPTY;
        this.assembling = { message, filled: HEADER };
        at += HEADER - carried;
        const n = chunk.length - at;
        this.assemble(chunk, at, n);
        at += n;
        this.remaining = body - n;
        continue;
      }
      if (this.inRow) {
        if (carried > 0) {
          // The header began in the previous chunk: its first bytes go as a buffer of their own.
          keep(at);
          this.pending.push(this.carry);
          this.pendingBytes += carried;
          keepFrom = at;
        } else if (keepFrom === -1) {
          keepFrom = at;
        }
      } else {
        // CopyOutResponse, a notice, a parameter status: not rows.
        keep(at);
      }
      if (carried > 0) this.carry = EMPTY;
      at += HEADER - carried;
      const n = Math.min(body, chunk.length - at);
      at += n;
      this.remaining = body - n;
    }
    keep(chunk.length);
  }

  /** Copies `n` bytes of `chunk` from `from` into the message being assembled; a full one is pending. */
  private assemble(chunk: Buffer, from: number, n: number): void {
    const assembling = this.assembling!;
    chunk.copy(assembling.message, assembling.filled, from, from + n);
    assembling.filled += n;
    if (assembling.filled < assembling.message.length) return;
    this.pending.push(assembling.message);
    this.pendingBytes += assembling.message.length;
    this.assembling = undefined;
  }

  private giveBack(rest: Buffer): void {
    const connection = this.connection!;
    const socket = connection.stream;
    socket.removeListener("readable", this.onReadable);
    socket.on("data", this.pgDataHandler!);
    if (rest.length > 0) this.pgDataHandler!(rest);
    // Resuming inside a 'data' call could re-enter node-postgres' parser; the next tick is clear of it.
    process.nextTick(() => socket.resume());
  }

  /** The next message, whose header is read, is longer than `room`: the chunk ends before it. */
  private wouldPass(room: number): boolean {
    if (this.pendingBytes < HEADER) return this.assembling !== undefined && this.assembling.message.length > room;
    return 1 + readLength(byteReader(this.pending), 1) > room;
  }

  /**
   * Whole messages from `pending`, at most `rows` of them and `room` bytes (the first one
   * whatever its size, when `first`: a chunk's first row), as views; null when none.
   */
  private takeMessages(rows: number, room: number, first: boolean): CopyFrames | null {
    const byteAt = byteReader(this.pending);
    let at = 0;
    let count = 0;
    while (count < rows && at + HEADER <= this.pendingBytes) {
      const end = at + 1 + readLength(byteAt, at + 1);
      if (end > this.pendingBytes || (end > room && !(first && count === 0))) break;
      at = end;
      count++;
    }
    if (count === 0) return null;
    const data: Buffer[] = [];
    let taken = 0;
    while (taken < at) {
      const piece = this.pending[0]!;
      if (taken + piece.length <= at) {
        data.push(piece);
        taken += piece.length;
        this.pending.shift();
      } else {
        const cut = at - taken;
        data.push(piece.subarray(0, cut));
        this.pending[0] = piece.subarray(cut);
        taken = at;
      }
    }
    this.pendingBytes -= at;
    return { data, count, bytes: at };
  }

  private fail(error: Error): void {
    if (this.failure === undefined) this.failure = error;
    this.rejectDone(error);
    this.wake?.();
  }
}

/** Sends framed CopyData bytes into `COPY … FROM STDIN`; resolves when the rows are in. */
export class CopyIn {
  private connection: Connection | undefined;
  private failed = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;

  constructor(
    readonly text: string,
    private readonly data: readonly Buffer[],
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
  }

  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  handleCopyInResponse(): void {
    const socket = this.connection!.stream;
    let next = 0;
    const send = (): void => {
      while (next < this.data.length) {
        if (this.failed) return;
        if (!socket.write(this.data[next++]!)) {
          socket.once("drain", send);
          return;
        }
      }
      if (!this.failed) socket.write(Buffer.from([COPY_DONE, 0, 0, 0, 4]));
    };
    send();
  }

  handleError(error: Error): void {
    // The server ignores CopyData after an error, so what is still being sent does no harm.
    this.failed = true;
    this.rejectDone(error);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.resolveDone();
  }
}

/** Runs `COPY … FROM STDIN` with these framed rows. */
export async function copyFramesIn(client: pg.Client, sql: string, data: readonly Buffer[]): Promise<void> {
  const copy = new CopyIn(sql, data);
  client.query(copy as unknown as pg.Submittable);
  await copy.done;
}

/**
 * Takes the CopyData messages of a connection from node-postgres, from now on: `onCopyData`
 * gets each one's payload whole — a view of the socket read it came in when it lies in one,
 * else a buffer of its exact size — and every other message goes on to node-postgres, whole
 * and in order, as if it had read the socket itself. Called between two queries (node-postgres
 * holds no part of a message then), before the one that starts the COPY.
 */
export function takeCopyData(socket: NodeJS.ReadableStream, onCopyData: (payload: Buffer) => void): void {
  const handlers = socket.listeners("data");
  if (handlers.length !== 1) throw new Error(`COPY: expected node-postgres' one data listener on its socket, found ${handlers.length}`);
  const pgDataHandler = handlers[0] as (chunk: Buffer) => void;
  socket.removeListener("data", pgDataHandler);
  const splitter = new MessageSplitter((message) => {
    if (message[0] === COPY_DATA) onCopyData(message.subarray(HEADER));
    else pgDataHandler(message);
  });
  socket.on("data", (chunk: Buffer) => splitter.push(chunk));
}

/** Cuts a byte stream into whole protocol messages (code, length, body). */
export class MessageSplitter {
  /** The first bytes of a header split between reads. */
  private carry: Buffer = EMPTY;
  /** A message spanning reads, being copied into a buffer of its size. */
  private partial: { readonly message: Buffer; filled: number } | undefined;

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    if (this.partial !== undefined) {
      const partial = this.partial;
      const n = Math.min(partial.message.length - partial.filled, chunk.length);
      chunk.copy(partial.message, partial.filled, 0, n);
      partial.filled += n;
      at = n;
      if (partial.filled < partial.message.length) return;
      this.partial = undefined;
      this.onMessage(partial.message);
    }
    while (at < chunk.length) {
      const carried = this.carry.length;
      if (carried + chunk.length - at < HEADER) {
        this.carry = Buffer.concat([this.carry, chunk.subarray(at)]);
        return;
      }
      const length =
        1 + (carried === 0 ? chunk.readUInt32BE(at + 1) : Buffer.concat([this.carry, chunk.subarray(at, at + HEADER - carried)]).readUInt32BE(1));
      if (carried === 0 && at + length <= chunk.length) {
        this.onMessage(chunk.subarray(at, at + length));
        at += length;
        continue;
      }
      const message = Buffer.allocUnsafe(length);
      this.carry.copy(message, 0);
      const n = Math.min(length - carried, chunk.length - at);
      chunk.copy(message, carried, at, at + n);
      this.carry = EMPTY;
      at += n;
      if (carried + n < length) {
        this.partial = { message, filled: carried + n };
        return;
      }
      this.onMessage(message);
    }
  }
}
